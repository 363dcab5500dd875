"""``adsim prepare-data``, ``adsim train`` and ``adsim calibrate`` (registered in adsim/cli.py).

Heavy imports (torch, sklearn) happen inside the commands. Bad input raises AdsimError, which
the main group turns into one ``error: …`` line and exit status 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from adsim.errors import AdsimError

__all__ = ["prepare_data_command", "train_command", "calibrate_command"]


def _fmt(v: object) -> str:
    return f"{v:.5f}" if isinstance(v, float) else str(v)


@click.command("prepare-data")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
def prepare_data_command(config: Path) -> None:
    """Encode the data of a run CONFIG into data.processed_dir ({train,val,test}_data.parquet)."""
    from adsim.models.config import load_run_config
    from adsim.models.data import load_preprocessor, prepare_data

    cfg = load_run_config(config)
    out = prepare_data(cfg.data)
    pre, meta = load_preprocessor(out)
    schema = pre.schema()
    rows = ", ".join(f"{k} {meta['rows'][k]}" for k in ("train", "val", "test"))
    click.echo(
        f"wrote {out}/ ({rows} rows; {schema.n_dense} dense, {schema.n_sparse} sparse,"
        f" {len(schema.sequences)} sequence features; labels {', '.join(schema.tasks)})"
    )


@click.command("train")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run folder (default: runs/<name>).")
@click.option("--prepare-data", "prepare", is_flag=True,
              help="Re-run data preparation first (it also runs when no prepared data exists).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from OUT/resume.pt.")
@click.option("--seed", type=int, default=None, help="Override train.seed.")
@click.option("--epochs", type=int, default=None, help="Override train.epochs.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train_command(config: Path, out_dir: Path | None, prepare: bool, resume: bool,
                  seed: int | None, epochs: int | None, quiet: bool) -> None:
    """Train the model of a run CONFIG, calibrate it and write the run folder."""
    from adsim.config import parse_config
    from adsim.models.config import RunConfig, load_run_config
    from adsim.models.run import train_run

    cfg = load_run_config(config)
    updates = {k: v for k, v in (("seed", seed), ("epochs", epochs)) if v is not None}
    if updates:
        data = cfg.model_dump(mode="json")
        data["train"].update(updates)
        cfg = parse_config(data, RunConfig, source="command line (--seed/--epochs)")
    out = train_run(cfg, out_dir, resume=resume, prepare=prepare, progress=False if quiet else None)
    metrics = json.loads((out / "test_metrics.json").read_text(encoding="utf-8"))
    if not quiet:
        for task, m in metrics["calibrated"].items():
            raw = metrics["raw"][task]
            line = (f"{task}: test AUC {_fmt(raw['auc'])}, log-loss {_fmt(raw['logloss'])} → calibrated"
                    f" {_fmt(m['logloss'])}, ECE {_fmt(raw['ece'])} → {_fmt(m['ece'])}")
            click.echo(line)
        if "bayes_optimal" in metrics:
            b = next(iter(metrics["bayes_optimal"].values()))
            click.echo(f"Bayes-optimal (true probabilities): AUC {_fmt(b['auc'])}, log-loss {_fmt(b['logloss'])}")
        click.echo(f"wrote run folder {out}/")


@click.command("calibrate")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--method", type=click.Choice(["isotonic", "platt", "temperature", "none"]), default=None,
              help="Calibration method (default: the run config's).")
def calibrate_command(run_dir: Path, method: str | None) -> None:
    """Refit the calibrator of RUN_DIR on its validation split; rewrite calibrator.json and plots."""
    from adsim.models.run import calibrate_run

    if not run_dir.is_dir():
        raise AdsimError(f"{run_dir}: run folder not found")
    metrics = calibrate_run(run_dir, method)
    for task, m in metrics["calibrated"].items():
        click.echo(f"{task}: {metrics['calibration_method']} calibration, test ECE"
                   f" {_fmt(metrics['raw'][task]['ece'])} → {_fmt(m['ece'])}, log-loss {_fmt(m['logloss'])}")
