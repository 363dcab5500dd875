"""Imports point one way: down the layers of docs/architecture.md, never in a circle.

Walks the AST of every module under ``adsim/`` and collects *every* import statement: top-level,
inside functions, and under ``if TYPE_CHECKING:``. TYPE_CHECKING imports count: they never run,
but they are dependencies all the same (a type from a higher layer is a back-edge in the design),
and ruling them in keeps the rule simple (an import is an import). Relative imports are resolved
against the file's package; ``from pkg import name`` is an edge to ``pkg.name`` when that is a
module, else to ``pkg``. Importing a module also runs its parent packages' ``__init__``; those
implicit edges are *not* counted (every module would otherwise depend on ``adsim/__init__``).

Layers, bottom to top (a module may import its own layer or any lower one):

1. ``adsim.errors``, ``adsim._io``, ``adsim._gym``, ``adsim._figures``, ``adsim.config`` —
   schemas and primitives;
2. ``adsim.env`` (simulator core: world, mechanisms, market, traffic, logs, oracles, and the bid
   and policy types in ``adsim.env.types``) and beside it ``adsim.models`` (CTR models);
3. ``adsim.worldmodel`` — the bridge, the only package that knows both ``env`` and ``models``;
4. ``adsim.policies`` and ``adsim.estimators``;
5. ``adsim.experiments`` — config → object builders, runners, run folders, plots, reports;
6. the doors: ``adsim.cli``, ``adsim.serving`` and every ``cli`` module of a sub-package
   (``adsim.models.cli``, ``adsim.estimators.cli`` …).

Rules:

(a) no import cycle between modules (a strongly connected component of more than one module);
(b) no edge from a lower layer to a higher one;
(c) packages that share a layer do not import each other: ``env`` ↮ ``models`` (layer 2) and
    ``policies`` ↮ ``estimators`` (layer 4), in either direction and for any module. What they
    share (contexts, logs, bid and policy types) lives in ``adsim.env``; what joins them (a
    policy built on a fitted reward model, an evaluation that builds policies) is a builder in
    ``adsim.experiments``;
(d) ``adsim/__init__.py`` imports only layer 1 (its public names are lazy strings).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: top-level name under ``adsim`` → layer (a new sub-package must be placed here)
LAYERS: dict[str, int] = {
    "errors": 1, "_io": 1, "_gym": 1, "config": 1,
    "_figures": 1,  # figure primitives (the report branch adds it; models and experiments use it)
    "env": 2, "models": 2,
    "worldmodel": 3,
    "policies": 4, "estimators": 4,
    "experiments": 5,
    "cli": 6, "serving": 6,
}
DOOR = 6
#: packages of one layer that must not import each other (rule c)
APART: list[frozenset[str]] = [frozenset({"env", "models"}), frozenset({"policies", "estimators"})]

Graph = dict[str, dict[str, int]]  # module -> {imported module: first line}


def module_files(root: Path) -> dict[str, tuple[Path, str]]:
    """``adsim.x.y`` → (file, package the file's relative imports resolve against)."""
    out = {}
    for f in sorted((root / "adsim").rglob("*.py")):
        parts = f.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            out[".".join(parts[:-1])] = (f, ".".join(parts[:-1]))
        else:
            out[".".join(parts)] = (f, ".".join(parts[:-1]))
    return out


def import_graph(root: Path) -> Graph:
    """Every ``adsim`` module's imports of other ``adsim`` modules (see the module docstring)."""
    mods = module_files(root)

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: Graph = {}
    for mod, (path, package) in mods.items():
        edges: dict[str, int] = {}
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    pkg = package.split(".")
                    base = ".".join(pkg[: len(pkg) - node.level + 1])
                    target = f"{base}.{node.module}" if node.module else base
                else:
                    target = node.module or ""
                # `from pkg import sub` is an edge to the module pkg.sub when there is one
                subs = [f"{target}.{a.name}" for a in node.names]
                names = [n if n in mods else target for n in subs]
            else:
                continue
            for name in names:
                if name == "adsim" or name.startswith("adsim."):
                    dep = resolve(name)
                    if dep and dep != mod:
                        edges.setdefault(dep, node.lineno)
        graph[mod] = edges
    return graph


def layer(mod: str) -> int:
    """Layer of module ``adsim.…`` (KeyError for a sub-package not placed in :data:`LAYERS`)."""
    parts = mod.split(".")
    if len(parts) > 2 and parts[-1] == "cli":
        return DOOR
    return LAYERS[parts[1]]


def cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return sorted(out)


def violations(graph: Graph) -> list[str]:
    """Every broken rule (b)–(d) as ``importer:line imports imported (why)``."""
    bad = []
    for mod in sorted(graph):
        for dep, line in sorted(graph[mod].items()):
            where = f"{mod}:{line} imports {dep}"
            if mod == "adsim":
                if layer(dep) != 1:
                    bad.append(f"{where} (adsim/__init__ may import only layer 1)")
                continue
            if dep == "adsim":
                continue
            lm, ld = layer(mod), layer(dep)
            if ld > lm:
                bad.append(f"{where} (layer {lm} -> higher layer {ld})")
            elif lm == ld < DOOR:
                pair = frozenset({mod.split(".")[1], dep.split(".")[1]})
                if len(pair) == 2 and pair in APART:
                    bad.append(f"{where} ({' and '.join(sorted(pair))} must not import each other)")
    return bad


# --------------------------------------------------------------------------------------- tests
@functools.cache
def _repo_graph() -> Graph:
    return import_graph(ROOT)


def test_every_subpackage_has_a_layer():
    """A new top-level module or sub-package fails until it is placed in :data:`LAYERS`."""
    unplaced = sorted({m.split(".")[1] for m in _repo_graph() if m != "adsim"} - set(LAYERS))
    assert unplaced == [], f"place these in LAYERS (tests/test_import_layers.py): {unplaced}"


def test_no_import_cycles():
    assert cycles(_repo_graph()) == []


def test_imports_point_down_the_layers():
    assert violations(_repo_graph()) == []


def test_the_checks_can_fail(tmp_path):
    """A synthetic package with a cycle, a back-edge, a sideways edge, a relative import, a
    function-level and a TYPE_CHECKING import: each is found."""
    files = {
        "adsim/__init__.py": "from adsim.errors import AdsimError\nfrom adsim import env\n",
        "adsim/errors.py": "",
        "adsim/env/__init__.py": "",
        "adsim/env/world.py": "def f():\n    from ..policies import base\n",
        "adsim/env/types.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from adsim.models.zoo import register\n",
        "adsim/models/__init__.py": "",
        "adsim/models/zoo.py": "",
        "adsim/policies/__init__.py": "",
        "adsim/policies/base.py": "from adsim.estimators import ope\n",
        "adsim/estimators/__init__.py": "",
        "adsim/estimators/ope.py": "import adsim.estimators.tuning\n",
        "adsim/estimators/tuning.py": "from . import ope\n",
        "adsim/experiments/__init__.py": "",
        "adsim/experiments/runner.py": "from adsim.policies.base import x\nfrom adsim.serving import y\n",
        "adsim/serving/__init__.py": "from adsim.errors import AdsimError\n",
        "adsim/estimators/cli.py": "from adsim.experiments import runner\n",
        "adsim/cli.py": "from adsim.estimators.cli import main\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path)
    assert cycles(graph) == [["adsim.estimators.ope", "adsim.estimators.tuning"]]
    assert violations(graph) == [
        "adsim:2 imports adsim.env (adsim/__init__ may import only layer 1)",
        "adsim.env.types:3 imports adsim.models.zoo (env and models must not import each other)",
        "adsim.env.world:2 imports adsim.policies.base (layer 2 -> higher layer 4)",
        "adsim.experiments.runner:2 imports adsim.serving (layer 5 -> higher layer 6)",
        "adsim.policies.base:1 imports adsim.estimators.ope"
        " (estimators and policies must not import each other)",
    ]
    # a door may import anything; doors may import each other
    assert "adsim.estimators.cli" in graph["adsim.cli"]
    # a cycle across layers is found too
    graph["adsim.errors"] = {"adsim.serving": 1}
    assert cycles(graph) == [
        ["adsim.errors", "adsim.serving"],
        ["adsim.estimators.ope", "adsim.estimators.tuning"],
    ]


def test_the_architecture_diagram_matches_the_layers():
    """docs/architecture.md's layer diagram puts every sub-package where :data:`LAYERS` does."""
    import re

    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = text.split("<!-- layers: kept equal to LAYERS in tests/test_import_layers.py -->")[1]
    block = block.split("```mermaid", 1)[1].split("```", 1)[0]
    drawn: dict[str, int] = {}
    current = None
    for line in block.splitlines():
        m = re.match(r"\s*subgraph L(\d)\[", line)
        if m:
            current = int(m.group(1))
        elif line.strip() == "end":
            current = None
        elif current is not None:
            for name in re.findall(r'\["adsim\.([\w*]+)', line):
                drawn[name] = current
    assert drawn.pop("*") == DOOR  # the sub-packages' cli modules
    assert drawn == LAYERS
