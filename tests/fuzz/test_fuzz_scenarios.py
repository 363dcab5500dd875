"""Fuzzing the scenario door: malformed YAML, values and flags through ``adsim validate`` / ``run``.

Every case must end with exit status 2 (or 0 when the input is valid), one ``error: …`` line
family on stderr and never a traceback, within a bounded time and memory, and a failed
``adsim run`` must leave no output folder (nor a ``.partial-`` folder) behind.

* table-driven cases for the YAML door (alias bombs, deep nesting, duplicate keys, FIFOs,
  devices, size limit, binary garbage), for values (``.inf``/``.nan``, booleans for numbers,
  unsafe names, memory blow-ups) and for command-line flags;
* hypothesis: random mutations of every shipped scenario (non-finite / huge / negative /
  wrong-type values at random paths, deleted and duplicated keys) through ``adsim validate``
  in-process, and shrunk valid mutants through ``adsim run``;
* subprocess cases under ``RLIMIT_AS`` (3 GiB) for the inputs that used to allocate tens of GiB;
* ``slow``: more examples, and a kill test — SIGKILL ``adsim run`` at ≥ 20 random moments and
  check that the output folder is either absent or complete (its manifest verifies).
"""

from __future__ import annotations

import copy
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adsim._io import MANIFEST, verify_manifest
from adsim.cli import main

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(
    p for p in (REPO / "scenarios").glob("*.yaml") if p.stem != "ope_validation"  # not a scenario
)
MAX_MESSAGE = 4_000  # characters on stderr for one failed command
GIB = 1 << 30

pytestmark = pytest.mark.timeout(60)  # per case; the slow tests set their own


# ------------------------------------------------------------------------------------ helpers
def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the CLI in-process; any exception escaping ``main`` fails the test (a traceback)."""
    capsys.readouterr()
    rc = main(argv)
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text
    return rc, text


def _assert_refused(rc: int, text: str, *needles: str) -> None:
    assert rc == 2, text
    assert "error" in text.lower(), text
    assert len(text) < MAX_MESSAGE, f"message of {len(text)} chars: {text[:300]}…"
    for needle in needles:
        assert needle in text, text


def _no_output(parent: Path, name: str = "out") -> None:
    """Neither the folder nor a leftover partial build of it."""
    assert not (parent / name).exists()
    leftovers = [p.name for p in parent.glob(f".{name}.partial-*")]
    assert not leftovers, leftovers


def _limit_memory(gib: float = 3.0) -> None:  # preexec_fn of the subprocess cases
    limit = int(gib * GIB)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _adsim(args: list[str], cwd: Path, timeout: float = 120, env: dict[str, str] | None = None,
           ) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "ADSIM_CACHE_DIR": str(cwd / ".cache"),
                **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", "import sys; from adsim.cli import main; sys.exit(main())", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env,
        preexec_fn=_limit_memory,
    )


GOOD = """\
name: fuzz
seed: 1
world:
  n_users: 200
  n_ads: 3
candidates:
  - {type: uniform}
evaluation: {n_rounds: 300, n_train_rounds: 300}
"""

AUCTION = """\
name: fuzz_auction
seed: 1
world: {n_users: 200, n_ads: 4}
auction:
  mechanism: second_price
  reserve: 0.01
  campaigns:
    - {name: a, budget: 5.0, value_per_click: 1.0}
    - {name: b, value_per_click: 2.0, bidder: {type: constant_pacing}}
  traffic: {n_requests: 2000, n_steps: 8, diurnal: [1.0, 2.0]}
"""

BIDDING = AUCTION.replace("name: fuzz_auction", "name: fuzz_bidding") + """\
bidding:
  n_seeds: 1
  candidates:
    - {type: truthful}
    - {type: dual_pacing}
"""


# ------------------------------------------------------------------------- the YAML door (table)
def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * width)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "name: bomb\n" + "\n".join(lines) + "\n"


YAML_DOOR = [
    ("alias bomb", _alias_bomb(), "aliases"),
    ("wide alias bomb (few aliases, huge expansion)",
     "name: b\nx: &x [" + ", ".join(["1"] * 2000) + "]\ny: &y [" + ", ".join(["*x"] * 90) + "]\n"
     "z: [" + ", ".join(["*y"] * 9) + "]\n", "expands to more than 1,000,000 values"),
    ("recursive alias", "name: r\nworld: &w {n_users: 10, inner: *w}\n", "recursive alias"),
    ("deep nesting", "name: d\nworld: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper"),
    ("deep mapping", "name: d\n" + "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v: 1\n",
     "nested deeper"),
    ("duplicate key", GOOD.replace("seed: 1", "seed: 1\nseed: 2"), "duplicate key 'seed' (first at line 2)"),
    ("duplicate nested key", GOOD.replace("  n_ads: 3", "  n_ads: 3\n  n_ads: 4"),
     "duplicate key 'n_ads' (first at line 5)"),
    ("binary garbage", bytes(range(256)) * 4, "not UTF-8"),
    ("NUL in text", "name: a\x00b\n", "invalid YAML"),
    ("python tag", "name: !!python/object/apply:os.system ['true']\n", "invalid YAML"),
    ("5000-digit integer", "name: a\nseed: " + "9" * 5000 + "\n", "invalid YAML"),
    ("huge string", "name: " + "x" * 200_000 + "\n", "must be at most 100 characters"),
    ("huge value in a number field", GOOD.replace("n_ads: 3", "n_ads: " + "y" * 100_000), "must be an integer"),
    ("empty", "", "the file is empty"),
    ("only a comment", "# nothing\n", "the file is empty"),
    ("top-level list", "- a\n- b\n", "mapping of keys to values"),
    ("unclosed", "name: [unclosed\n", "invalid YAML"),
    ("tab indentation", "name: a\nworld:\n\tn_users: 3\n", "invalid YAML"),
]


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("label", "text", "needle"), YAML_DOOR, ids=[c[0] for c in YAML_DOOR])
def test_yaml_door_refuses(tmp_path: Path, capsys, label: str, text: str | bytes, needle: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    t0 = time.perf_counter()
    rc, out = _cli(["validate", str(path)], capsys)
    _assert_refused(rc, out, needle)
    assert time.perf_counter() - t0 < 5.0
    rc, out = _cli(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"], capsys)
    _assert_refused(rc, out, needle)
    _no_output(tmp_path)


@pytest.mark.timeout(20)
def test_special_files_are_refused_without_reading(tmp_path: Path, capsys) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # opening it for reading would block forever without a writer
    for path, needle in [
        (fifo, "not a regular file"),
        (Path("/dev/zero"), "not a regular file"),
        (Path("/dev/null"), "not a regular file"),
        (tmp_path, "is a folder"),
        (tmp_path / "missing.yaml", "file not found"),
    ]:
        rc, out = _cli(["validate", str(path)], capsys)
        _assert_refused(rc, out, needle)
    rc, out = _cli(["run", str(fifo), "--out", str(tmp_path / "out")], capsys)
    _assert_refused(rc, out, "not a regular file")
    _no_output(tmp_path)


def test_size_limit_and_how_to_raise_it(tmp_path: Path, capsys, monkeypatch) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(GOOD + "description: " + "z" * 3000 + "\n")
    monkeypatch.setenv("ADSIM_MAX_YAML_BYTES", "2000")
    rc, out = _cli(["validate", str(path)], capsys)
    _assert_refused(rc, out, "2,000-byte limit", "ADSIM_MAX_YAML_BYTES")
    monkeypatch.setenv("ADSIM_MAX_YAML_BYTES", "100000")
    rc, out = _cli(["validate", str(path)], capsys)
    assert rc == 0, out
    monkeypatch.setenv("ADSIM_MAX_YAML_BYTES", "lots")
    rc, out = _cli(["validate", str(path)], capsys)
    _assert_refused(rc, out, "ADSIM_MAX_YAML_BYTES")


def test_merge_keys_are_not_duplicates(tmp_path: Path, capsys) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: m\nworld: {n_users: 100, n_ads: 3}\ncandidates:\n"
        "  - &b {type: softmax, model: truth, temperature: 0.5, name: s1}\n"
        "  - {<<: *b, name: s2}\n"
    )
    rc, out = _cli(["validate", str(path)], capsys)
    assert rc == 0, out


# --------------------------------------------------------------------------- values (table)
def _set(text: str, path: tuple[Any, ...], value: Any) -> str:
    data = yaml.safe_load(text)
    node = data
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


INF, NAN = float("inf"), float("nan")
VALUES = [
    (AUCTION, ("auction", "campaigns", 0, "budget"), INF, "auction.campaigns[0].budget: must be a finite number"),
    (AUCTION, ("auction", "campaigns", 0, "budget"), 1e300, "auction.campaigns[0].budget: must be <= 1000000000"),
    (AUCTION, ("auction", "reserve"), NAN, "auction.reserve: must be a finite number"),
    (AUCTION, ("auction", "campaigns", 1, "value_per_click"), INF, "value_per_click: must be a finite number"),
    (AUCTION, ("auction", "traffic", "diurnal", 1), INF, "auction.traffic.diurnal[1]: must be a finite number"),
    (AUCTION, ("auction", "traffic", "diurnal", 1), True, "auction.traffic.diurnal[1]: must be a number, got True"),
    (AUCTION, ("auction", "traffic", "n_steps"), True, "auction.traffic.n_steps: must be an integer, got True"),
    (AUCTION, ("auction", "campaigns", 0, "name"), "a\nb", "control characters"),
    (GOOD, ("candidates", 0), {"type": "softmax", "temperature": True}, "candidates[0].temperature: must be a number, got True"),
    (GOOD, ("candidates", 0), {"type": "softmax", "temperature": INF}, "candidates[0].temperature: must be a finite number"),
    (GOOD, ("candidates", 0), {"type": "thompson", "prior_precision": NAN}, "prior_precision: must be a finite number"),
    (GOOD, ("candidates", 0), {"type": "softmax", "name": "logger (softmax)"}, "the leaderboard's label of the logging policy"),
    (GOOD, ("world", "n_ads"), "10", "world.n_ads: must be an integer, got '10'"),
    (GOOD, ("world", "n_ads"), True, "world.n_ads: must be an integer, got True"),
    (GOOD, ("seed",), 2**63, "seed: must be <= 9223372036854775807"),
    (GOOD, ("name",), "../../x", "folder name"),
    (GOOD, ("name",), "/abs/path", "folder name"),
    (GOOD, ("name",), "..", "folder name"),
    (GOOD, ("name",), "a\x00b", "NUL"),
    (GOOD, ("name",), "tab\there", "control characters"),
    (GOOD, ("evaluation",), {"n_rounds": 100_000_000, "n_train_rounds": 100}, "evaluation.n_rounds: the run would allocate"),
]
# sizes that are only too large together: refused by the memory estimate, naming a field
MEMORY = [
    (GOOD, {"world": {"n_users": 10_000_000, "n_ads": 100_000}, "evaluation": {"n_rounds": 100_000_000}},
     "evaluation.n_rounds: the run would allocate"),
    (GOOD, {"world": {"n_ads": 100, "sparse_fields": [{"name": "f", "vocab_size": 1_000_000}]},
            "candidates": [{"type": "softmax", "model": "fitted"}],
            "evaluation": {"n_rounds": 300, "n_train_rounds": 20_000}},
     "world.sparse_fields: the run would allocate"),
    (GOOD, {"world": {"n_ads": 1000, "sparse_fields": [{"name": "f", "vocab_size": 100_000}]},
            "candidates": [{"type": "linucb"}]},
     "world.sparse_fields: the run would allocate"),
    (AUCTION, {"auction": {"traffic": {"n_requests": 100_000_000, "n_steps": 1}},
               "world": {"n_ads": 100_000, "n_users": 100}},
     "auction.traffic.n_requests: the run would allocate"),
]


@pytest.mark.parametrize(("base", "path", "value", "needle"), VALUES,
                         ids=[f"{'.'.join(map(str, v[1]))}={str(v[2])[:20]}" for v in VALUES])
def test_bad_values_are_refused(tmp_path: Path, capsys, base: str, path: tuple, value: Any, needle: str) -> None:
    scn = tmp_path / "s.yaml"
    scn.write_text(_set(base, path, value))
    rc, out = _cli(["validate", str(scn)], capsys)
    _assert_refused(rc, out, needle)
    rc, out = _cli(["run", str(scn), "--out", str(tmp_path / "out"), "--quiet"], capsys)
    _assert_refused(rc, out, needle)
    _no_output(tmp_path)


def _merge(a: dict, b: dict) -> dict:
    out = copy.deepcopy(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("base", "override", "needle"), MEMORY, ids=[m[2].split(":")[0] for m in MEMORY])
def test_memory_blowups_are_refused_before_allocating(tmp_path: Path, base: str, override: dict,
                                                      needle: str) -> None:
    """Under a 3 GiB address-space limit: refused by the estimate (exit 2), never a MemoryError."""
    scn = tmp_path / "s.yaml"
    scn.write_text(yaml.safe_dump(_merge(yaml.safe_load(base), override), sort_keys=False))
    proc = _adsim(["run", str(scn), "--out", str(tmp_path / "out"), "--quiet"], tmp_path,
                  env={"ADSIM_MAX_MEMORY_GB": ""})
    text = proc.stdout + proc.stderr
    _assert_refused(proc.returncode, text, needle, "ADSIM_MAX_MEMORY_GB")
    assert "above the memory ceiling of" in text
    _no_output(tmp_path)


def test_memory_ceiling_is_configurable(tmp_path: Path, capsys, monkeypatch) -> None:
    scn = tmp_path / "s.yaml"
    scn.write_text(GOOD)
    monkeypatch.setenv("ADSIM_MAX_MEMORY_GB", "0.00001")  # ~10 KiB: even the tiny run is over
    rc, out = _cli(["validate", str(scn)], capsys)
    _assert_refused(rc, out, "above the memory ceiling of 10.5 KiB", "ADSIM_MAX_MEMORY_GB")
    monkeypatch.setenv("ADSIM_MAX_MEMORY_GB", "-3")
    rc, out = _cli(["validate", str(scn)], capsys)
    _assert_refused(rc, out, "ADSIM_MAX_MEMORY_GB='-3': must be a positive number")
    monkeypatch.setenv("ADSIM_MAX_MEMORY_GB", "4")
    rc, out = _cli(["validate", str(scn)], capsys)
    assert rc == 0, out


# ------------------------------------------------------------------------ command-line flags
FLAGS = [
    (["--seed", "-1"], "--seed"),
    (["--seed", str(2**63)], "--seed"),
    (["--seed", "1e3"], "--seed"),
    (["--seed", ""], "--seed"),
    (["--bogus"], "--bogus"),
    (["--out"], "--out"),  # (followed by --quiet: click would take it as the folder)
    (["--out", "FILE/sub"], "not a folder"),
    (["--out", "FILE"], "is a file"),
    (["--out", "."], "did not write"),
    (["--out", "/proc/adsim-x"], "cannot create"),
    (["--out", "/"], "--out"),
]


@pytest.mark.parametrize(("flags", "needle"), FLAGS, ids=[" ".join(f) or "none" for f, _ in FLAGS])
def test_bad_flags_fail_before_work(tmp_path: Path, capsys, monkeypatch, flags: list[str], needle: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(GOOD)
    (tmp_path / "FILE").write_text("not a folder")
    (tmp_path / "data.csv").write_text("precious\n")
    argv = ["run", "s.yaml", *[f.replace("FILE", str(tmp_path / "FILE")) for f in flags], "--quiet"]
    rc, out = _cli(argv, capsys)
    _assert_refused(rc, out, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["FILE", "data.csv", "s.yaml"]


def test_default_out_stays_inside_runs(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(GOOD)
    rc, out = _cli(["run", "s.yaml", "--quiet", "--seed", str(2**63 - 1)], capsys)
    assert rc == 0, out
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["fuzz"]
    verify_manifest(tmp_path / "runs" / "fuzz", kind="scenario")


# ----------------------------------------------------------------- hypothesis: random mutants
_BAD_VALUES = st.sampled_from([
    float("inf"), float("-inf"), float("nan"), 1e308, -1e308, 1e-320, -1, 0, 2**64, 10**30, True, False,
    "x", "", "1e9", None, [], {}, [1, 2], {"a": 1}, "../../x", "/abs", "a\x00b", "logger (softmax)",
    "y" * 5000,
])


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutants(draw: st.DrawFn) -> str:
    """A shipped scenario with 1–3 random mutations (as YAML text; sometimes a duplicated key)."""
    src = draw(st.sampled_from(SCENARIOS))
    data = yaml.safe_load(src.read_text())
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for p in path[:-1]:
            parent = parent[p]
        action = draw(st.sampled_from(["set", "set", "set", "delete"]))
        if action == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(_BAD_VALUES)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if draw(st.booleans()) and draw(st.booleans()):  # duplicate a top-level key
        first = text.splitlines()[0]
        text = text + first + "\n"
    return text


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=mutants())
def test_mutated_scenarios_validate_or_fail_cleanly(tmp_path_factory, text: str) -> None:
    path = tmp_path_factory.mktemp("m") / "s.yaml"
    path.write_text(text)
    import io
    from contextlib import redirect_stderr, redirect_stdout

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["validate", str(path)])  # an exception here is a traceback: the test fails
    assert rc in (0, 2), err.getvalue()
    if rc == 2:
        assert err.getvalue().startswith("error: ")
        assert len(err.getvalue()) < MAX_MESSAGE


def _validate_cleanly(path: Path) -> None:
    import io
    from contextlib import redirect_stderr, redirect_stdout

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["validate", str(path)])  # an exception here is a traceback: the test fails
    assert rc in (0, 2), err.getvalue()
    assert len(err.getvalue()) < MAX_MESSAGE


_YAMLISH = st.sampled_from([
    "name: x\n", "world:\n", "  n_users: ", "- ", "&a ", "*a ", "[", "]", "{", "}", ": ", ", ",
    "!!binary ", "!!python/name:os.system ", "<<: *a\n", "? ", "|\n", ">\n", "'", '"', "\t",
    ".inf", ".nan", "1e999", "~", "---\n", "...\n", "%YAML 1.1\n", "\n", "  ", "9" * 30,
])


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=st.one_of(st.binary(max_size=600), st.text(max_size=300).map(str.encode),
                     st.lists(_YAMLISH, max_size=40).map(lambda t: "".join(t).encode())))
def test_random_bytes_and_yaml_fragments_fail_cleanly(tmp_path_factory, raw: bytes) -> None:
    path = tmp_path_factory.mktemp("b") / "s.yaml"
    path.write_bytes(raw)
    _validate_cleanly(path)


_SHRINK = {  # (path, max) — keep mutants cheap enough to run
    ("world", "n_users"): 300, ("world", "n_ads"): 12, ("evaluation", "n_rounds"): 400,
    ("evaluation", "n_train_rounds"): 400, ("evaluation", "n_online_rounds"): 200,
    ("auction", "traffic", "n_requests"): 3000, ("auction", "traffic", "n_steps"): 8,
    ("bidding", "n_seeds"): 1,
}


def _shrunk(data: dict) -> dict | None:
    """A cheap version of a valid mutant, or None if it cannot run here (trained models)."""
    if isinstance(data.get("world"), dict) and isinstance(data["world"].get("truth"), dict) \
            and data["world"]["truth"].get("type") == "trained":
        return None
    bidding = data.get("bidding")
    if isinstance(bidding, dict) and isinstance(bidding.get("candidates"), list):
        bidding["candidates"] = [c for c in bidding["candidates"]
                                 if not (isinstance(c, dict) and c.get("type") == "rl")]
        if not bidding["candidates"]:
            return None
    for c in data.get("candidates") or []:
        if isinstance(c, dict) and c.get("type") == "ensemble_thompson":
            c["steps_per_update"] = 5
            c["n_members"] = 2
    for path, top in _SHRINK.items():
        node = data
        for p in path[:-1]:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(path[-1]), int) \
                and not isinstance(node.get(path[-1]), bool):
            node[path[-1]] = min(node[path[-1]], top)
    if isinstance(data.get("world"), dict):
        data["world"]["n_users"] = min(int(data["world"].get("n_users", 300)), 300)
    return data


def _run_mutant(tmp: Path, text: str, capsys) -> None:
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from adsim.config import load_scenario
    from adsim.errors import AdsimError

    path = tmp / "s.yaml"
    path.write_text(text)
    try:
        load_scenario(path)
    except AdsimError:
        return  # refused at the door: covered by the validate test
    data = _shrunk(yaml.safe_load(text))
    if data is None:
        return
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["run", str(path), "--out", str(tmp / "out"), "--quiet"])
    assert rc in (0, 2), err.getvalue()
    if rc == 0:
        verify_manifest(tmp / "out", kind="scenario")
    else:
        assert len(err.getvalue()) < MAX_MESSAGE
        _no_output(tmp)


@pytest.mark.timeout(120)
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=mutants())
def test_valid_mutants_run_or_fail_cleanly(tmp_path_factory, capsys, text: str) -> None:
    _run_mutant(tmp_path_factory.mktemp("r"), text, capsys)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=mutants())
def test_valid_mutants_run_or_fail_cleanly_many(tmp_path_factory, capsys, text: str) -> None:
    _run_mutant(tmp_path_factory.mktemp("r"), text, capsys)


@pytest.mark.slow
@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=mutants())
def test_mutated_scenarios_validate_or_fail_cleanly_many(tmp_path_factory, text: str) -> None:
    test_mutated_scenarios_validate_or_fail_cleanly.hypothesis.inner_test(tmp_path_factory, text)


# ------------------------------------------------------------------- all three runners, atomic
@pytest.mark.timeout(120)
@pytest.mark.parametrize("text", [GOOD, AUCTION, BIDDING], ids=["bandit", "auction", "bidding"])
def test_run_folder_is_whole_and_replaced_as_a_whole(tmp_path: Path, capsys, text: str) -> None:
    scn = tmp_path / "s.yaml"
    scn.write_text(text)
    out = tmp_path / "out"
    rc, msg = _cli(["run", str(scn), "--out", str(out), "--quiet"], capsys)
    assert rc == 0, msg
    body = verify_manifest(out, kind="scenario")
    assert "results.json" in body["files"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*body["files"], MANIFEST])
    first = json.loads((out / "results.json").read_text())
    (out / "stale.txt").write_text("from an older run")  # replaced as a whole, not merged
    rc, msg = _cli(["run", str(scn), "--out", str(out), "--quiet"], capsys)
    assert rc == 0, msg
    assert not (out / "stale.txt").exists()
    assert json.loads((out / "results.json").read_text()) == first
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# --------------------------------------------------------------------------------- kill test
KILL_SCENARIO = """\
name: kill
seed: 3
world: {n_users: 2000, n_ads: 8}
candidates:
  - {type: uniform}
  - {type: epsilon_greedy, epsilon: 0.1, model: fitted}
  - {type: softmax, temperature: 0.3, model: truth}
  - {type: thompson, n_samples: 50}
evaluation: {n_rounds: 20000, n_train_rounds: 5000, n_online_rounds: 5000}
"""


def _check_after_kill(parent: Path, name: str) -> str:
    """The folder is absent or complete; anything else is only a hidden partial without manifest."""
    final = parent / name
    state = "absent"
    if final.exists():
        verify_manifest(final, kind="scenario")  # raises DataError if incomplete or tampered
        state = "complete"
    for p in parent.iterdir():
        if p.name in (name, "s.yaml", ".cache"):
            continue
        assert p.name.startswith(f".{name}.partial-") and p.is_dir(), p.name
        assert not (p / MANIFEST).exists()
    return state


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_sigkill_adsim_run_leaves_no_folder_or_a_complete_one(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(KILL_SCENARIO)
    t0 = time.perf_counter()
    proc = _adsim(["run", "s.yaml", "--out", "out", "--quiet"], tmp_path, timeout=600)
    full = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    reference = (tmp_path / "out" / "results.json").read_bytes()
    import shutil

    shutil.rmtree(tmp_path / "out")
    rng = random.Random(13)
    states = []
    # moments spread over the whole run (start-up, work), then dense around its end (writing
    # the files, the manifest, the rename) and just after it
    delays = [full * (i + rng.random()) / 12 for i in range(12)]
    delays += [full * rng.uniform(0.8, 1.15) for _ in range(12)]
    for delay in delays:
        env = {**os.environ, "PYTHONPATH": str(REPO), "ADSIM_CACHE_DIR": str(tmp_path / ".cache")}
        p = subprocess.Popen(
            [sys.executable, "-c", "import sys; from adsim.cli import main; sys.exit(main())",
             "run", "s.yaml", "--out", "out", "--quiet"],
            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        state = _check_after_kill(tmp_path, "out")
        if state == "complete":
            assert (tmp_path / "out" / "results.json").read_bytes() == reference
            shutil.rmtree(tmp_path / "out")
        states.append(state)
    print(f"full run {full:.1f} s; after the kills: {states.count('absent')} absent,"
          f" {states.count('complete')} complete")
    assert len(states) >= 20
    assert "absent" in states  # some kills landed during the work


def test_schema_out_refuses_special_files(tmp_path: Path, capsys) -> None:
    """An atomic rename onto a FIFO or device would replace it: refused before writing."""
    import stat

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    rc, out = _cli(["schema", "--out", str(fifo)], capsys)
    _assert_refused(rc, out, "not a regular file")
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    rc, out = _cli(["schema", "--out", "/proc/adsim-x/schema.json"], capsys)
    _assert_refused(rc, out, "cannot create folders")
    rc, out = _cli(["schema", "--out", str(tmp_path / "new" / "schema.json")], capsys)
    assert rc == 0, out
    json.loads((tmp_path / "new" / "schema.json").read_text())


def test_run_does_not_replace_another_kind_of_adsim_folder(tmp_path: Path, capsys) -> None:
    from adsim._io import atomic_dir

    with atomic_dir(tmp_path / "model", "train") as tmp:
        (tmp / "weights.bin").write_bytes(b"\0" * 16)
    (tmp_path / "s.yaml").write_text(GOOD)
    rc, out = _cli(["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "model"), "--quiet"], capsys)
    _assert_refused(rc, out, "holds a 'train' folder, not a 'scenario' one")
    verify_manifest(tmp_path / "model", kind="train")
