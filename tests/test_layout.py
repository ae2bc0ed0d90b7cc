"""The house rules, checked statically: rooms of a readable size, no two modules importing each other, and
nothing that edits the import path (one installed package serves dags/, plugins/, scripts/ and bench/)."""

import ast
from pathlib import Path

import pytest

from tests.support import REPO

#: The longest a module may be, by folder.
LIMITS = {"ml": 450, "plugins": 450, "dags": 450, "scripts": 450, "bench": 500}


def _modules(folder: str) -> list[Path]:
    return sorted(p for p in (REPO / folder).rglob("*.py") if "__pycache__" not in p.parts)


def _name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts[1:] if rel.parts[0] == "plugins" else rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules) -> set[str]:
    """Every one of ``modules`` that ``path`` imports, at the top, inside a function or for type checking
    (``from package import submodule`` counts as the submodule)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            subs = {f"{node.module}.{a.name}" for a in node.names} & set(modules)
            found |= subs if len(subs) == len(node.names) else subs | {node.module}
    return found & set(modules)


@pytest.mark.parametrize("folder", sorted(LIMITS))
def test_no_module_is_longer_than_its_folders_limit(folder):
    long = {str(p.relative_to(REPO)): n for p in _modules(folder) if (n := len(p.read_text().splitlines())) > LIMITS[folder]}
    assert long == {}


def test_no_two_modules_import_each_other():
    paths = [p for folder in LIMITS for p in _modules(folder)]
    names = {_name(p): p for p in paths}
    graph = {name: _imports(p, names) - {name} for name, p in names.items()}
    mutual = sorted({tuple(sorted((a, b))) for a, deps in graph.items() for b in deps if a in graph.get(b, ())})
    assert mutual == []


def test_nothing_edits_the_import_path():
    offenders = []
    for folder in (*LIMITS, "tests"):
        for p in _modules(folder):
            text = p.read_text()
            if "sys.path.insert" in text or "sys.path.append" in text or '"PYTHONPATH":' in text:
                offenders.append(str(p.relative_to(REPO)))
    # the topology test hands a caller's PYTHONPATH in, to see it is passed on untouched
    offenders = [o for o in offenders if o not in ("tests/test_layout.py", "tests/scripts/distributed/test_topology.py")]
    assert offenders == []
