"""Dependencies point downwards: nothing below the transports imports ``api/`` or ``cli/``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "soundmark"
TRANSPORTS = ("soundmark.api", "soundmark.cli")
TOP = ("api", "cli", "__main__.py")  # the transports and the entry point
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
