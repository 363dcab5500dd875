"""Closing the loop: data → world model → simulated logs → a CTR model learned from them → how close
it gets to the world.

``adsim world-loop configs/world_loop.yaml`` runs four stages (:func:`run_world_loop`) around the
scenario it names (``scenarios/world_model.yaml``: a normal scenario whose world's truth is
``{type: trained, train: …}`` or ``{type: trained, run: …}``; ``adsim run`` evaluates bandit
policies in it):

1. **World model** — with ``world.truth.train`` (a training config) the world model is taken from
   the build cache, trained into it on first use
   (:func:`adsim.experiments.world_models.cached_world_model`); with ``world.truth.run`` the run
   config ``world_model`` of this file (any zoo model, e.g. ESMM on CTR/CVR data) is trained with
   the pipeline into that folder and its feature distribution saved there
   (:func:`adsim.worldmodel.save_feature_distribution`). With ``generate`` the source table is
   first drawn from the synthetic CTR/CVR generator (:mod:`adsim.models.synthetic_ctcvr`) when the
   file does not exist.
2. **Simulate** — build the scenario's world (synthetic users, the trained network's calibrated
   probabilities as the truth) and log ``n_rounds`` impressions under its ``logging_policy``
   (propensities recorded, true click probabilities kept as ``p_click``).
3. **Retrain** — train ``retrain`` (a model + trainer + calibration) on the simulated impressions
   with the pipeline (random split), as a CTR model of P(click | user, ad).
4. **Report** — the learned model's test AUC / log-loss / ECE (raw and calibrated) next to the
   **Bayes-optimal** ones (the world's own probabilities: nothing can do better), and the
   simulation speed of this world against a parametric world of the same size.

Everything is seeded by the scenario's ``seed``; outputs go to ``--out`` (default ``runs/<name>``):
``impressions.parquet``, ``retrained/`` (a run folder) and ``report.json``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
from pydantic import Field

from adsim.config import StrictModel, TrainedTruthConfig, WorldConfig, load_config, load_scenario
from adsim.errors import ConfigError

__all__ = ["WorldLoopConfig", "run_world_loop", "world_loop_command"]


class GenerateConfig(StrictModel):
    """Draw the world model's source table from the synthetic CTR/CVR generator if it is missing."""

    n_rows: int = Field(default=200_000, ge=1000, le=50_000_000, description="Impressions to draw.")
    n_users: int = Field(default=20_000, ge=10, description="Users of the generator.")
    n_items: int = Field(default=500, ge=2, description="Items of the generator.")
    seed: int = Field(default=0, ge=0, description="Generator seed.")


class RetrainConfig(StrictModel):
    """The CTR model learned from simulated logs (model, trainer, calibration sections of a run)."""

    model: dict[str, Any] = Field(default_factory=lambda: {"name": "deepfm"}, description="model section")
    train: dict[str, Any] = Field(default_factory=dict, description="train section")
    calibration: dict[str, Any] = Field(default_factory=dict, description="calibration section")
    val_fraction: float = Field(default=0.1, gt=0.0, lt=0.5, description="Validation share.")
    test_fraction: float = Field(default=0.2, gt=0.0, lt=0.5, description="Test share.")


class WorldLoopConfig(StrictModel):
    """``configs/world_loop.yaml``: see the module docstring."""

    name: str = Field(default="world_model", min_length=1, description="Name (default output runs/<name>).")
    scenario: str = Field(
        min_length=1,
        description="Scenario YAML whose world (truth type 'trained'), logging_policy and seed are"
        " used. Its world.truth.train (a training config) is trained into the build cache; or its"
        " world.truth.run is where `world_model` is trained.",
    )
    generate: GenerateConfig | None = Field(default=None, description="Generate the source data if missing.")
    world_model: dict[str, Any] | None = Field(
        default=None,
        description="Run config (data, model, train, calibration) of the world model, trained into"
        " the scenario's world.truth.run (not used when the scenario names world.truth.train).",
    )
    retrain_world_model: bool = Field(default=False, description="Retrain even if world.truth.run exists.")
    n_rounds: int = Field(default=200_000, ge=1000, le=100_000_000, description="Simulated impressions.")
    retrain: RetrainConfig = Field(default_factory=RetrainConfig)


def _train_world_model(cfg: WorldLoopConfig, truth: TrainedTruthConfig, progress: bool) -> Path:
    from adsim.config import parse_config
    from adsim.experiments.world_models import cached_world_model
    from adsim.models.config import RunConfig
    from adsim.models.run import train_run
    from adsim.worldmodel import save_feature_distribution

    if truth.train is not None:
        if cfg.world_model is not None:
            raise ConfigError(
                "world_model: the scenario names its world model's training config"
                f" (world.truth.train: {truth.train}); remove world_model from this file"
            )
        return cached_world_model(truth.train, progress=progress)
    assert truth.run is not None
    run_dir = Path(truth.run)
    if cfg.world_model is None:
        raise ConfigError(
            f"world_model: required, since the scenario's world.truth.run ({truth.run}) is where"
            " this loop trains the world model (or name a training config as world.truth.train)"
        )
    rc = parse_config(cfg.world_model, RunConfig, source="world_model")
    src = rc.data.source
    path = getattr(src, "path", None)
    if cfg.generate is not None and path is not None and not Path(path).exists():
        from adsim.models.synthetic_ctcvr import generate_ctr_cvr

        g = cfg.generate
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        df = generate_ctr_cvr(g.n_rows, g.seed, n_users=g.n_users, n_items=g.n_items)
        from adsim._io import write_with

        write_with(Path(path), lambda t: df.to_parquet(t, index=False))
    if cfg.retrain_world_model or not (run_dir / "checkpoint.pt").exists():
        train_run(rc, run_dir, prepare=True, progress=progress)
        save_feature_distribution(run_dir)
        from adsim.models.run import write_run_manifest

        write_run_manifest(run_dir)  # world_features.json is part of the finished run
    return run_dir


def _parametric_twin(world: Any, cfg: WorldConfig) -> WorldConfig:
    """A parametric world of the same size (users, ads, dense/sparse fields) for speed comparison."""
    from adsim.config import ParametricTruthConfig, SparseFieldConfig

    fields = [SparseFieldConfig(name=n, vocab_size=max(2, v), zipf=1.0)
              for n, v in zip(world.spec.sparse_names, world.spec.vocab_sizes)]
    return cfg.model_copy(update={"n_dense": world.spec.n_dense, "sparse_fields": fields,
                                  "truth": ParametricTruthConfig()})


def run_world_loop(cfg: WorldLoopConfig, out_dir: str | Path | None = None, progress: bool = False) -> dict[str, Any]:
    """Run the four stages; returns (and writes) the report."""
    from adsim._io import write_json, write_with
    from adsim.config import parse_config
    from adsim.env.world import World
    from adsim.experiments.builders import PolicyBuilder
    from adsim.models.config import RunConfig
    from adsim.models.run import train_run
    from adsim.worldmodel import impressions_frame, trained_world

    scn = load_scenario(cfg.scenario)
    if not isinstance(scn.world.truth, TrainedTruthConfig):
        raise ConfigError(f"{cfg.scenario}: world.truth.type must be 'trained' (the world model this loop trains)")
    out = Path(out_dir) if out_dir is not None else Path("runs") / cfg.name
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"name": cfg.name, "scenario": cfg.scenario, "seed": scn.seed}

    t = time.perf_counter()
    run_dir = _train_world_model(cfg, scn.world.truth, progress)
    import json

    wm = json.loads((run_dir / "test_metrics.json").read_text(encoding="utf-8"))
    report["world_model"] = {"run": str(run_dir), "test_metrics": wm.get("calibrated"),
                             "seconds": time.perf_counter() - t}

    ss = np.random.SeedSequence(scn.seed).spawn(4)
    rng_world, rng_policy, rng_log, rng_twin = (np.random.default_rng(s) for s in ss)
    t = time.perf_counter()
    world = trained_world(scn.world, rng_world, run_dir)
    build_s = time.perf_counter() - t
    logger = PolicyBuilder(world, rng_policy).build(scn.logging_policy)
    t = time.perf_counter()
    log = world.collect(logger, cfg.n_rounds, rng_log)
    sim_s = time.perf_counter() - t
    frame = impressions_frame(world, log)
    frame["pscore"] = log.pscore
    write_with(out / "impressions.parquet", lambda p: frame.to_parquet(p, index=False))

    twin_cfg = _parametric_twin(world, scn.world)
    t = time.perf_counter()
    twin = World.from_config(twin_cfg, rng_twin)
    twin_build_s = time.perf_counter() - t
    twin_logger = PolicyBuilder(twin, np.random.default_rng(0)).build(scn.logging_policy)
    t = time.perf_counter()
    twin.collect(twin_logger, cfg.n_rounds, np.random.default_rng(1))
    twin_sim_s = time.perf_counter() - t
    report["simulation"] = {
        "n_rounds": cfg.n_rounds, "n_users": scn.world.n_users, "n_ads": scn.world.n_ads,
        "ctr": float(frame["click"].mean()), "mean_true_ctr": float(frame["p_click"].mean()),
        "trained_world": {"build_s": build_s, "collect_s": sim_s, "rounds_per_s": cfg.n_rounds / sim_s},
        "parametric_world": {"build_s": twin_build_s, "collect_s": twin_sim_s,
                             "rounds_per_s": cfg.n_rounds / twin_sim_s},
        "collect_slowdown": sim_s / twin_sim_s,
        "total_slowdown": (build_s + sim_s) / (twin_build_s + twin_sim_s),
    }

    cols = world.truth.user_columns
    ad_cols = list(world.truth.ad_table.columns)
    dense_all = set(world.truth.run.schema.dense)
    r = cfg.retrain
    run_cfg = parse_config({
        "name": f"{cfg.name}_retrained",
        "data": {
            "source": {"type": "table", "path": str(out / "impressions.parquet")},
            "labels": ["click"],
            "dense": [*cols["dense"], *[c for c in ad_cols if c in dense_all]],
            "sparse": [*cols["sparse"], *[c for c in ad_cols if c not in dense_all]],
            "truth_column": "p_click", "group_column": "user_id",
            "split": {"method": "random", "val_fraction": r.val_fraction,
                      "test_fraction": r.test_fraction, "seed": scn.seed},
            "processed_dir": str(out / "processed"),
        },
        "model": r.model, "train": r.train, "calibration": r.calibration,
    }, RunConfig, source="retrain")
    t = time.perf_counter()
    rdir = train_run(run_cfg, out / "retrained", prepare=True, progress=progress)

    m = json.loads((rdir / "test_metrics.json").read_text(encoding="utf-8"))
    bayes = m["bayes_optimal"]["click"]
    raw, cal = m["raw"]["click"], m["calibrated"]["click"]
    report["retrained"] = {
        "run": str(rdir), "seconds": time.perf_counter() - t,
        "auc": raw["auc"], "bayes_auc": bayes["auc"], "auc_gap": bayes["auc"] - raw["auc"],
        "logloss_raw": raw["logloss"], "logloss_calibrated": cal["logloss"], "bayes_logloss": bayes["logloss"],
        "ece_raw": raw["ece"], "ece_calibrated": cal["ece"], "bayes_ece": bayes["ece"],
    }
    write_json(out / "report.json", report)
    return report


def load_world_loop_config(path: str | os.PathLike[str]) -> WorldLoopConfig:
    """Read and validate a world-loop config file (``adsim world-loop FILE``)."""
    return load_config(path, WorldLoopConfig)


@click.command("world-loop")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default runs/<name>).")
@click.option("--n-rounds", type=int, default=None, help="Override n_rounds.")
def world_loop_command(config: Path, out_dir: Path | None, n_rounds: int | None) -> None:
    """Train a world model, simulate logs from it, retrain a CTR model on them, report the gap."""
    cfg = load_config(config, WorldLoopConfig)
    if n_rounds is not None:
        cfg = cfg.model_copy(update={"n_rounds": n_rounds})
    rep = run_world_loop(cfg, out_dir)
    s, r = rep["simulation"], rep["retrained"]
    click.echo(f"world model: {rep['world_model']['run']}")
    click.echo(f"simulated {s['n_rounds']} impressions (CTR {s['ctr']:.4f}) at"
               f" {s['trained_world']['rounds_per_s']:,.0f} rounds/s; parametric world of the same"
               f" size {s['parametric_world']['rounds_per_s']:,.0f} rounds/s"
               f" (collect slowdown ×{s['collect_slowdown']:.2f}, incl. build ×{s['total_slowdown']:.2f})")
    click.echo(f"retrained CTR model: test AUC {r['auc']:.4f} vs Bayes-optimal {r['bayes_auc']:.4f}"
               f" (gap {r['auc_gap']:.4f}); log-loss {r['logloss_calibrated']:.5f} vs {r['bayes_logloss']:.5f};"
               f" ECE {r['ece_raw']:.4f} → {r['ece_calibrated']:.4f} calibrated")
