"""The simulator core and the CTR models do not import each other (only adsim.worldmodel knows
both). Walks every import statement, function-level ones included, of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "adsim"


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import in the file, wherever it is (absolute names)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(PKG.parent).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
    return out


def _violations(src: str, forbidden: str) -> list[str]:
    bad = []
    for f in sorted((PKG / src).rglob("*.py")):
        for line, mod in _imports(f):
            if mod == f"adsim.{forbidden}" or mod.startswith(f"adsim.{forbidden}."):
                bad.append(f"{f.relative_to(PKG.parent)}:{line} imports {mod}")
    return bad


@pytest.mark.parametrize(("src", "forbidden"), [("env", "models"), ("models", "env")])
def test_core_and_models_do_not_import_each_other(src, forbidden):
    assert _violations(src, forbidden) == []


def test_the_walker_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    """The check can fail: a function-level and a relative import are both found."""
    fake = tmp_path / "adsim"
    (fake / "env").mkdir(parents=True)
    (fake / "env" / "x.py").write_text(
        "def f():\n    from adsim.models.checkpoint import load_run\n"
        "def g():\n    from ..models import data\n"
    )
    monkeypatch.setattr(__import__(__name__), "PKG", fake)
    assert _violations("env", "models") == [
        "adsim/env/x.py:2 imports adsim.models.checkpoint",
        "adsim/env/x.py:2 imports adsim.models.checkpoint.load_run",
        "adsim/env/x.py:4 imports adsim.models",
        "adsim/env/x.py:4 imports adsim.models.data",
    ]
