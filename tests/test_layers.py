"""Dependencies point downwards: nothing below the transports imports ``api/`` or ``cli/``; no
module reaches an index backend except through ``index/factory.py``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "soundmark"
TRANSPORTS = ("soundmark.api", "soundmark.cli", "soundmark.web")
TOP = ("api", "cli", "web", "__main__.py")  # the transports and the entry point
LOWER = [p for p in sorted(PACKAGE.rglob("*.py")) if p.relative_to(PACKAGE).parts[0] not in TOP]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_lower_layers_are_found() -> None:
    found = {p.relative_to(PACKAGE).parts[0] for p in LOWER}
    assert {"streams", "match", "index", "fingerprint", "audd", "services", "jobs.py", "store.py"} <= found


@pytest.mark.parametrize("path", LOWER, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_lower_module_imports_a_transport(path: Path) -> None:
    bad = sorted(n for n in _imports(path) if n.startswith(TRANSPORTS))
    assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


SERVICES = sorted((PACKAGE / "services").rglob("*.py"))
WEB_FRAMEWORKS = ("starlette", "fastapi", "uvicorn", "click")


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_services_are_transport_agnostic(path: Path) -> None:
    """A use case knows no web framework nor CLI toolkit: transports call it, never the reverse."""
    bad = sorted(n for n in _imports(path) if n.split(".")[0] in WEB_FRAMEWORKS or n.startswith(TRANSPORTS))
    assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


# --- index backends are reached only through the factory ------------------------------------

# Backend module → the modules (besides tests) allowed to import it.
BACKEND_IMPORTERS = {
    "soundmark.index.segments": {"index/factory.py"},
    "soundmark.index.memory": {"index/factory.py"},
    "soundmark.index.manifest": {"index/segments.py"},  # the segment backend's own bookkeeping
    "soundmark.index.redis_cluster": {"index/factory.py"},
    "soundmark.index.redis_manifest": {"index/redis_cluster.py"},  # the Redis backend's own bookkeeping
    "soundmark.index.redis_nodes": {"index/redis_cluster.py"},
}
ALL_MODULES = sorted(PACKAGE.rglob("*.py"))


def _imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, ``from soundmark.index import segments`` counted as
    ``soundmark.index.segments``, relative imports resolved."""
    package = "soundmark." + ".".join(path.relative_to(PACKAGE).parent.parts)
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rstrip(".").split(".")
                parent = parent[: len(parent) - (node.level - 1)]
                base = ".".join([*parent, *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def test_the_import_scan_sees_every_form() -> None:
    found = _imported_modules(PACKAGE / "index" / "factory.py")
    assert {"soundmark.index.segments", "soundmark.index.memory"} <= found


@pytest.mark.parametrize("path", ALL_MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_factory_imports_an_index_backend(path: Path) -> None:
    rel = path.relative_to(PACKAGE).as_posix()
    bad = sorted(
        m
        for m in _imported_modules(path)
        for backend, allowed in BACKEND_IMPORTERS.items()
        if (m == backend or m.startswith(backend + ".")) and rel not in allowed and _module(rel) != backend
    )
    assert not bad, f"{rel} imports {bad}: use the ports of soundmark.index.base via soundmark.index.factory"


def _module(rel: str) -> str:
    return "soundmark." + rel.removesuffix(".py").replace("/", ".")
