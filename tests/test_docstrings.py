"""Every public module, class, function and method in ml/, plugins/ and dags/ has a docstring.

Public: a name without a leading underscore, at module level or in a public class (dunder methods such as
``__init__`` are documented by their class). Nested functions are private to their function.
"""

import ast
from pathlib import Path

from tests.support import REPO

TREES = ("ml", "plugins", "dags")


def undocumented(path: Path, root: Path = REPO) -> list[str]:
    """``file: qualname`` of each public object in the Python file ``path`` without a docstring (the file
    named relative to ``root``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    name = path.relative_to(root).as_posix()
    missing = [] if ast.get_docstring(tree) else [f"{name}: module"]

    def visit(body, prefix: str) -> None:
        for node in body:
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            if node.name.startswith("_"):
                continue
            if ast.get_docstring(node) is None:
                missing.append(f"{name}: {prefix}{node.name}")
            if isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}.")

    visit(tree.body, "")
    return missing


def python_files() -> list[Path]:
    """The project's own Python files under :data:`TREES` (no caches)."""
    return sorted(p for t in TREES for p in (REPO / t).rglob("*.py") if "__pycache__" not in p.parts)


def test_the_checker_finds_what_is_missing(tmp_path):
    src = tmp_path / "ml" / "m.py"
    src.parent.mkdir()
    src.write_text('def f():\n    pass\n\n\nclass C:\n    """C."""\n\n    def g(self):\n        pass\n\n'
                   '    def _h(self):\n        pass\n\n    def __init__(self):\n        pass\n\n\n'
                   'def _private():\n    pass\n')
    assert undocumented(src, tmp_path) == ["ml/m.py: module", "ml/m.py: f", "ml/m.py: C.g"]


def test_every_public_object_has_a_docstring():
    files = python_files()
    assert len(files) > 20  # the trees were found
    missing = [m for p in files for m in undocumented(p)]
    assert not missing, f"{len(missing)} public objects without a docstring:\n" + "\n".join(missing)
