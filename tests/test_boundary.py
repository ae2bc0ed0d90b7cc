"""The layer boundary: ``ml/`` is a plain library that never imports Airflow; only ``plugins/`` and ``dags/`` do.

Checked twice: statically (no ``import airflow``/``from airflow`` anywhere in ``ml/``, at any depth, lazy
imports inside functions included) and at run time (importing every ``ml`` module in a fresh interpreter
leaves no ``airflow`` module in ``sys.modules``, so no dependency pulls it in indirectly either).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from tests.support import REPO

ML = REPO / "ml"


def airflow_imports(root: Path, names_from: Path = REPO) -> list[str]:
    """``file:line`` (relative to ``names_from``) of every statement under ``root`` importing an ``airflow`` module."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            if any(n == "airflow" or n.startswith("airflow.") for n in names):
                found.append(f"{path.relative_to(names_from)}:{node.lineno}")
    return found


def test_no_ml_module_imports_airflow():
    assert airflow_imports(ML) == []


def test_the_checker_finds_an_airflow_import(tmp_path):
    (tmp_path / "a.py").write_text("def f():\n    from airflow.sdk import dag\n")
    (tmp_path / "b.py").write_text("import airflowish\nimport os\n")
    (tmp_path / "c.py").write_text("from .airflow import x\n")  # a relative import of our own module
    assert airflow_imports(tmp_path, names_from=tmp_path) == ["a.py:2"]


def test_importing_every_ml_module_loads_no_airflow():
    modules = sorted(
        ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__") for p in ML.rglob("*.py")
    )
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "print(json.dumps(sorted(k for k in sys.modules if k == 'airflow' or k.startswith('airflow.'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
