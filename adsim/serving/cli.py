"""``adsim serve``, ``adsim predict`` and ``adsim export`` (registered in adsim/cli.py).

Heavy imports (FastAPI, torch, uvicorn, onnxruntime) happen inside the commands; bad input
raises :class:`~adsim.errors.AdsimError` (exit 2, one line).
"""

from __future__ import annotations

from pathlib import Path

import click

from adsim.errors import AdsimError, ConfigError

__all__ = ["serve_command", "predict_command", "export_command", "build_serve_config"]


def _parse_weights(text: str | None, n: int) -> list[float]:
    if text is None:
        return [1.0] * n
    try:
        w = [float(x) for x in text.split(",")]
    except ValueError:
        raise ConfigError(f"--weights must be comma-separated numbers (e.g. 0.9,0.1), got {text!r}") from None
    if len(w) != n:
        raise ConfigError(f"--weights has {len(w)} numbers but {n} run folders were given; give one per folder")
    if any(x < 0 for x in w) or sum(w) <= 0:
        raise ConfigError(f"--weights must be >= 0 with a positive sum, got {text!r}")
    return w


def check_output_file(path: Path, flag: str) -> Path:
    """Before any work: ``path`` is a regular file or absent, and a file can be created beside it
    (probed in the nearest existing folder: permissions, read-only and pseudo file systems)."""
    import os
    import tempfile

    if path.exists() and not path.is_file():
        raise ConfigError(f"{flag} {path}: exists and is not a regular file; choose another path")
    probe = path.absolute().parent
    while not probe.exists():
        probe = probe.parent
    try:
        if not probe.is_dir():
            raise OSError(f"{probe} is not a folder")
        fd, tmp = tempfile.mkstemp(prefix=".adsim-probe-", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot write there ({exc}); choose another path") from None
    return path


def build_serve_config(run_dirs: tuple[str, ...], config: Path | None, weights: str | None,
                       default: str | None, backend: str | None, groups: tuple[str, ...],
                       user_features: Path | None, threads: int | None) -> object:
    """A :class:`ServeConfig` from ``--config`` and/or the command line (flags win)."""
    from adsim.config import load_config, parse_config
    from adsim.serving.config import ServeConfig

    data: dict[str, object] = {}
    if config is not None:
        data = load_config(config, ServeConfig).model_dump(mode="json", exclude_unset=True)
    if run_dirs:
        w = _parse_weights(weights, len(run_dirs))
        models = []
        for spec, wt in zip(run_dirs, w):
            version, _, path = spec.partition("=") if "=" in spec else (None, "", spec)
            models.append({"path": path, "weight": wt, **({"version": version} if version else {})})
        data["models"] = models
    elif weights is not None:
        raise ConfigError("--weights needs RUN_DIR arguments (one weight per run folder)")
    if not data.get("models"):
        raise ConfigError("give at least one RUN_DIR (or --config with a models list)")
    for d in data["models"]:  # type: ignore[union-attr]
        if not Path(d["path"]).is_dir():  # type: ignore[index]
            raise ConfigError(f"run folder {d['path']} not found; train one with `adsim train CONFIG`")  # type: ignore[index]
    if default is not None:
        data["default"] = default
    if backend is not None:
        data["backend"] = backend
    if threads is not None:
        data["threads"] = threads
    if user_features is not None:
        data["user_features"] = str(user_features)
    if groups:
        fg: dict[str, list[str]] = {}
        for g in groups:
            name, sep, cols = g.partition("=")
            if not sep or not name or not cols:
                raise ConfigError(f"--feature-group must look like NAME=col1,col2, got {g!r}")
            fg[name] = [c for c in cols.split(",") if c]
        data["feature_groups"] = fg
    return parse_config(data, ServeConfig, source="adsim serve options")


_common = [
    click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help="Serving YAML (models, weights, default, feature_groups, backend …)."),
    click.option("--weights", default=None, help="A/B traffic weights, one per RUN_DIR, e.g. 0.9,0.1."),
    click.option("--default", "default", default=None,
                 help="Cold-start default version (default: the first RUN_DIR)."),
    click.option("--backend", type=click.Choice(["torch", "onnx"]), default=None,
                 help="Inference engine (default torch)."),
    click.option("--feature-group", "groups", multiple=True,
                 help="NAME=col1,col2: a feature group; a request without any of its features is served"
                      " by the default model. Repeatable."),
    click.option("--user-features", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help="Parquet table of user features keyed by user_id (feature store)."),
    click.option("--threads", type=int, default=None, help="Inference threads (default 1)."),
]


def _with_common(f):  # type: ignore[no-untyped-def]
    for opt in reversed(_common):
        f = opt(f)
    return f


@click.command("serve")
@click.argument("run_dirs", nargs=-1)
@_with_common
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", type=int, default=8000, show_default=True, help="TCP port.")
@click.option("--log-level", default="warning", show_default=True, help="uvicorn log level.")
def serve_command(run_dirs: tuple[str, ...], config: Path | None, weights: str | None, default: str | None,
                  backend: str | None, groups: tuple[str, ...], user_features: Path | None,
                  threads: int | None, host: str, port: int, log_level: str) -> None:
    """Serve RUN_DIR(s) over HTTP (FastAPI + uvicorn). Name versions with NAME=RUN_DIR.

    Endpoints: POST /v1/predict, POST /v1/predict/batch, GET /v1/feature-spec, GET /v1/models,
    GET /healthz, GET /metrics, GET /openapi.json.
    """
    import uvicorn

    from adsim.serving.app import create_app

    cfg = build_serve_config(run_dirs, config, weights, default, backend, groups, user_features, threads)
    if not 0 < port < 65536:
        raise AdsimError(f"--port must be in 1..65535, got {port}")
    app = create_app(cfg)  # type: ignore[arg-type]
    versions = ", ".join(f"{v} ({m.weight:g})" for v, m in app.state.service.registry.models.items())
    click.echo(f"serving {versions} on http://{host}:{port} (docs at /docs)", err=True)
    import gc

    gc.collect()
    gc.freeze()  # loaded models and vocabularies leave the GC's generations: shorter collection pauses
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)


@click.command("predict")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Parquet file of raw rows: the model's feature columns (ids, labels not needed).")
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Parquet file to write (atomically).")
@click.option("--chunk-size", type=int, default=65_536, show_default=True, help="Rows per chunk.")
@click.option("--columns", default=None, help="Comma-separated input columns to keep (default all).")
@click.option("--raw", is_flag=True, help="Also write uncalibrated probabilities pred_<task>_raw.")
@click.option("--allow-missing-features", is_flag=True,
              help="Score even if feature columns are absent (each takes its documented default).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def predict_command(run_dir: Path, input_path: Path, output_path: Path, chunk_size: int, columns: str | None,
                    raw: bool, allow_missing_features: bool, quiet: bool) -> None:
    """Score a parquet table with RUN_DIR's model, streaming in chunks; adds pred_<task> columns."""
    from adsim.serving.batch import predict_parquet

    if not run_dir.is_dir():
        raise AdsimError(f"{run_dir}: run folder not found; train one with `adsim train CONFIG`")
    check_output_file(output_path, "--output")
    cols = [c for c in columns.split(",") if c] if columns is not None else None
    out = predict_parquet(run_dir, input_path, output_path, chunk_size, cols, raw, progress=not quiet,
                          allow_missing_features=allow_missing_features)
    if not quiet:
        click.echo(f"wrote {out['rows']} rows with {', '.join('pred_' + t for t in out['tasks'])} to {output_path}")


@click.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="ONNX file (default RUN_DIR/model.onnx).")
@click.option("--compression", is_flag=True,
              help="Also report test AUC, size and latency of int8-quantised variants.")
def export_command(run_dir: Path, out: Path | None, compression: bool) -> None:
    """Export RUN_DIR's model to ONNX after checking ONNX Runtime against PyTorch (≤ 1e-5)."""
    from adsim.models.export import compression_report, export_run

    if not run_dir.is_dir():
        raise AdsimError(f"{run_dir}: run folder not found; train one with `adsim train CONFIG`")
    check_output_file(out if out is not None else run_dir / "model.onnx", "--out")
    meta = export_run(run_dir, out)
    click.echo(f"wrote {out or run_dir / 'model.onnx'} (opset {meta['opset']}; ONNX Runtime vs PyTorch max |Δp|"
               f" {meta['max_abs_diff_proba']:.2e}, max |Δlogit| {meta['max_abs_diff_logits']:.2e})")
    if compression:
        import torch

        torch.set_num_threads(1)
        click.echo(f"{'variant':<24}{'test AUC':>10}{'ΔAUC':>10}{'log-loss':>10}{'weights':>12}{'ms/100':>9}")
        for r in compression_report(run_dir):
            click.echo(f"{r['variant']:<24}{r['auc']:>10.5f}{r['delta_auc']:>+10.5f}{r['logloss']:>10.5f}"
                       f"{r['weights_bytes']:>12,d}{r['latency_ms_b100']:>9.3f}")
