# soundmark — the two commands a newcomer needs:
#   make run    install, build the demo catalog into data/db, serve the API on 127.0.0.1:8080
#   make test   install (with test tools) and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
DB     ?= data/db
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: run test install dev lint coverage bench wheel clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

dev: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'

run: install
	$(BIN)/soundmark demo --db $(DB) --out data/demo
	$(BIN)/soundmark recognize --db $(DB) data/demo/demo-clip.wav
	$(BIN)/soundmark serve --db $(DB) --host $(HOST) --port $(PORT)

test: dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -q

coverage: dev
	$(BIN)/pytest -q --cov --cov-report=term:skip-covered

bench: install
	$(BIN)/python benchmarks/run_public.py

# dist/soundmark-<version>.tar.gz and dist/soundmark-<version>-py3-none-any.whl (built from the sdist)
wheel: dev
	$(BIN)/python -m build --outdir dist .

clean:
	rm -rf data .pytest_cache .ruff_cache .coverage .coverage.*
