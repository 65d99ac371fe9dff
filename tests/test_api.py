"""The public Python API (`sortition.__all__`): every name resolves, to the module that says it
defines it, and is documented; type checkers see the same names; `import sortition` stays cheap
and keeps its one side effect (one BLAS thread)."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import sortition

INIT = Path(sortition.__file__)


def test_every_public_name_resolves_and_is_documented():
    assert len(set(sortition.__all__)) == len(sortition.__all__)
    for name in sortition.__all__:
        value = getattr(sortition, name)
        module = f"sortition.{sortition._WHERE[name]}"
        assert value is getattr(importlib.import_module(module), name), name
        assert getattr(value, "__module__", module) == module, name
        doc = (value.__doc__ or "").strip()
        assert doc and not doc.startswith(f"{name}("), f"{name}: no docstring"


def test_the_type_checkers_see_the_same_names():
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    block = next(node for node in tree.body if isinstance(node, ast.If)
                 and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
    imported = {f"{node.module}": {a.name for a in node.names} for node in block.body
                if isinstance(node, ast.ImportFrom)}
    assert imported == {module: set(names) for module, names in sortition._MODULES.items()}
    assert set(sortition.__all__) == set(sortition._WHERE)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        sortition.nothing_here  # noqa: B018
    assert "draw_bundle" in dir(sortition)


def test_import_is_cheap_and_keeps_one_blas_thread():
    code = ("import os, sys; import sortition; "
            "print(sorted(m for m in sys.modules if m.startswith(('sortition.', 'numpy', "
            "'pyarrow', 'ortools', 'typer')))); print(os.environ['OPENBLAS_NUM_THREADS'])")
    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True).stdout.splitlines()
    assert out == ["[]", "1"]
