"""Scenario files: every malformed file gives one clear, path-named message and exit code 2."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from adsim.cli import main
from adsim.config import Scenario, load_scenario, scenario_json_schema
from adsim.errors import ConfigError

GOOD = """\
name: t
seed: 1
world:
  n_users: 100
  n_ads: 3
candidates:
  - {type: uniform}
"""

# (file text, substring the message must contain)
BAD_SCENARIOS = [
    (GOOD.replace("n_ads: 3", "n_ads: 0"), "world.n_ads: must be >= 2, got 0"),
    (GOOD.replace("n_ads: 3", "n_ads: three"), "world.n_ads: must be an integer, got 'three'"),
    (GOOD.replace("n_ads: 3", "n_ads: 2.5"), "world.n_ads: must be a whole number, got 2.5"),
    (GOOD.replace("n_users: 100", "n_users: 5"), "world.n_users: must be >= 10, got 5"),
    (GOOD.replace("seed: 1", "seed: -3"), "seed: must be >= 0, got -3"),
    (GOOD + "colour: blue\n", "colour: unknown key"),
    (GOOD.replace("  n_ads: 3", "  n_ads: 3\n  n_adz: 4"), "world.n_adz: unknown key"),
    (GOOD.replace("name: t\n", ""), "name: is required but missing"),
    (GOOD.replace("  - {type: uniform}", "  - {type: bogus}"),
     "candidates[0]: unknown type 'bogus'"),
    (GOOD.replace("  - {type: uniform}", "  - {type: epsilon_greedy, epsilon: 2}"),
     "candidates[0].epsilon: must be <= 1, got 2"),
    (GOOD.replace("  - {type: uniform}", "  - {type: softmax, temperature: 0}"),
     "candidates[0].temperature: must be > 0, got 0"),
    (GOOD.replace("  - {type: uniform}", "  - {type: softmax, model: magic}"),
     "candidates[0].model: must be one of 'fitted', 'noisy_truth' or 'truth', got 'magic'"),
    (GOOD.replace("  - {type: uniform}", "  - {epsilon: 0.1}"), "candidates[0]: needs a 'type' key"),
    (GOOD.replace("  - {type: uniform}", "  []"), "candidates: must have at least 1 item(s)"),
    (GOOD.replace("  - {type: uniform}", "  - {type: uniform}\n  - {type: uniform}"),
     "candidates: candidate 1 has the same name 'uniform'"),
    (GOOD + "logging_policy: {type: thompson}\n", "logging_policy: type 'thompson' learns"),
    (GOOD + "logging_policy: {type: softmax, model: fitted}\n",
     "logging_policy: model 'fitted' learns from a training log"),
    (GOOD + "evaluation: {estimators: [ips, magic]}\n",
     "evaluation.estimators[1]: must be one of"),
    (GOOD + "evaluation: {confidence: 1.5}\n", "evaluation.confidence: must be < 1, got 1.5"),
    (GOOD.replace("world:\n  n_users: 100\n  n_ads: 3", "world: 3"), "world: must be a mapping"),
    (GOOD.replace("  n_ads: 3", "  n_ads: 3\n  sparse_fields: [{name: a, vocab_size: 2},"
                  " {name: a, vocab_size: 3}]"), "world.sparse_fields: duplicate field name 'a'"),
    (GOOD.replace("  n_ads: 3", "  n_ads: 3\n  truth: {type: parametric, base_ctr: 1.5}"),
     "world.truth.base_ctr: must be < 1, got 1.5"),
    ("name: [unclosed\n", "invalid YAML"),
    ("", "the file is empty"),
    ("- just\n- a list\n", "must contain a mapping of keys to values at the top level"),
]


@pytest.mark.parametrize(("text", "message"), BAD_SCENARIOS)
def test_bad_scenario_message_and_exit_code(tmp_path: Path, capsys, text: str, message: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_scenario(path)
    assert message in str(exc.value)
    capsys.readouterr()
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err


def test_message_has_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace("n_ads: 3", "n_ads: 0"))
    with pytest.raises(ConfigError, match=r"s\.yaml:5: world\.n_ads: must be >= 2, got 0"):
        load_scenario(path)


def test_missing_file_and_folder(tmp_path: Path, capsys) -> None:
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["run", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_good_scenario_and_defaults(tmp_path: Path, capsys) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(GOOD)
    scn = load_scenario(path)
    assert scn.world.n_ads == 3 and scn.candidates[0].type == "uniform"
    assert main(["validate", str(path)]) == 0
    assert "ok" in capsys.readouterr().out


def test_every_shipped_scenario_validates(repo_root: Path) -> None:
    files = sorted((repo_root / "scenarios").glob("*.yaml"))
    assert files, "no scenarios shipped"
    for f in files:
        if f.name.startswith("ope_validation"):  # `adsim ope-validate` files have their own schema
            from adsim.experiments.ope_validation import load_validation

            load_validation(f)
        else:
            load_scenario(f)


def test_json_schema_export(tmp_path: Path) -> None:
    schema = scenario_json_schema()
    assert schema["title"] == "adsim scenario"
    assert "world" in schema["properties"] and "candidates" in schema["properties"]
    assert "auction" in schema["properties"]  # candidates may be empty in auction scenarios
    out = tmp_path / "schema.json"
    assert main(["schema", "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == json.loads(json.dumps(schema))


def test_round_trip_model_dump() -> None:
    scn = Scenario.model_validate({"name": "x", "candidates": [{"type": "uniform"}]})
    again = Scenario.model_validate(scn.model_dump(mode="json"))
    assert again == scn


def test_validate_dedent_helper() -> None:
    # the table above must really hold >= 15 distinct malformed files (the issue asks for 15)
    assert len({t for t, _ in BAD_SCENARIOS}) >= 15
    assert textwrap.dedent(GOOD) == GOOD


def test_exponent_numbers_without_a_dot_are_numbers(tmp_path: Path) -> None:
    """PyYAML (YAML 1.1) reads `1e3` as a string; the door reads it as the number (YAML 1.2)."""
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace("n_users: 100", "n_users: 1e3").replace(
        "  - {type: uniform}", "  - {type: softmax, model: truth, temperature: 5e-1}"))
    scn = load_scenario(path)
    assert scn.world.n_users == 1000 and scn.candidates[0].temperature == 0.5


@pytest.mark.parametrize(("text", "message"), [
    (GOOD.replace("n_ads: 3", "n_ads: true"), "world.n_ads: must be an integer, got True"),
    (GOOD.replace("n_ads: 3", "n_ads: '3'"), "world.n_ads: must be an integer, got '3'"),
    (GOOD.replace("  - {type: uniform}", "  - {type: softmax, temperature: .inf}"),
     "candidates[0].temperature: must be a finite number"),
    (GOOD.replace("  - {type: uniform}", "  - {type: softmax, temperature: .nan}"),
     "candidates[0].temperature: must be a finite number"),
    (GOOD.replace("name: t", "name: ../../etc"), "name: is used as a folder name under runs/"),
    (GOOD.replace("seed: 1", "seed: 1\nseed: 2"), ":3: duplicate key 'seed' (first at line 2)"),
])
def test_strict_values_and_duplicate_keys(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_scenario(path)
    assert message in str(exc.value)
