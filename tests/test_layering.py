"""The architecture: data flows one way (sources -> columns -> state/analyses -> outputs -> CLI).

Each package may import only the packages listed for it here; nothing imports the CLI; every
module says in a docstring what it owns.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "tracewatch"

ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "ctf": {"errors"},
    "live": {"ctf", "errors"},
    "kernel": {"ctf", "errors"},
    "analyses": {"ctf", "kernel", "errors"},
    "sync": {"ctf", "errors"},
    "sim": {"ctf", "errors"},
    "vm": {"ctf", "kernel", "sync", "analyses", "errors"},
    "critical": {"ctf", "kernel", "sync", "vm", "analyses", "errors"},
    "output": {"ctf", "kernel", "analyses", "sync", "vm", "critical", "errors"},
    "export": {"ctf", "kernel", "analyses", "sync", "vm", "output", "errors"},
    "fleet": {"ctf", "kernel", "analyses", "sync", "vm", "export", "errors"},
    "cli": {"*"},
}
TOP_LEVEL_MODULES = {"__init__", "__main__", "analysis_set", "demo"}  # the facade and the demo may use anything


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def _package(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    depth_of_file = len(path.relative_to(SRC).parts) - 1  # 0 for top-level modules
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module and node.module.startswith("tracewatch"):
                    parts = node.module.split(".")
                    if len(parts) > 1:
                        out.add(parts[1])
                    else:
                        out.update(a.name for a in node.names)
                continue
            up = node.level - 1  # levels above the file's own package
            if up < depth_of_file:
                continue  # inside the same package
            if node.module:
                out.add(node.module.split(".")[0])
            else:
                out.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "tracewatch" and len(parts) > 1:
                    out.add(parts[1])
    return out


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_follow_the_layers(path: Path) -> None:
    pkg = _package(path)
    if pkg in TOP_LEVEL_MODULES:
        return
    allowed = ALLOWED.get(pkg)
    assert allowed is not None, f"new package {pkg!r}: add its allowed imports to ALLOWED"
    if "*" in allowed:
        return
    bad = {p for p in _imported_packages(path) if p != pkg and p not in allowed}
    assert not bad, f"{path.relative_to(SRC)} ({pkg}) imports {sorted(bad)}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_every_module_has_a_docstring(path: Path) -> None:
    assert ast.get_docstring(ast.parse(path.read_text())), f"{path.relative_to(SRC)} has no module docstring"


def test_nothing_imports_the_cli() -> None:
    for path in _modules():
        if _package(path) in ("cli",) or path.stem in TOP_LEVEL_MODULES:
            continue
        assert "cli" not in _imported_packages(path), path
