"""``adsim ope`` (estimate a target policy's value from your own log) and ``adsim ope-validate``.

Both raise :class:`~adsim.errors.AdsimError` for bad input; the main group turns that into one
line on stderr and exit code 2. Outputs are rendered in memory and written atomically, so a failed
run leaves no partial files.
"""

from __future__ import annotations

from pathlib import Path

import click

from adsim.errors import AdsimError

__all__ = ["ope_command", "ope_validate_command"]

_DEFAULT = "dm,ips,snips,dr,sndr"
_ESTIMATORS_HELP = (
    "Comma-separated estimators, each NAME or NAME:PARAM=VALUE[:PARAM=VALUE]: e.g."
    " 'switch_dr:lambda=5,dr_os:lambda=100,ips,ips:clip=10' or a SLOPE grid"
    " 'switch_dr_slope:lambdas=[inf,100,10,1]' (also 1|10|inf). SLOPE intervals ignore the"
    " λ selection and under-cover; they are marked * when asked for."
)


def parse_estimators_flag(text: str, flag: str = "--estimators") -> list[str]:
    """Split and check an ``--estimators`` value; AdsimError naming ``flag`` on a bad spec."""
    from adsim.estimators.registry import parse_estimator_spec, split_specs

    specs = split_specs(text)
    if not specs:
        raise AdsimError(f"{flag}: no estimator given; e.g. {flag} {_DEFAULT}")
    for spec in specs:
        try:
            parse_estimator_spec(spec)
        except ValueError as exc:
            raise AdsimError(f"{flag} {spec!r}: {exc}") from None
    return specs


def _check_common(confidence: float, n_bootstrap: int, folds: int, seed: int) -> None:
    if not 0.5 < confidence < 1.0:
        raise AdsimError(f"--confidence must be in (0.5, 1), got {confidence}")
    from adsim.estimators.base import MAX_BOOTSTRAP, MIN_BOOTSTRAP

    if not MIN_BOOTSTRAP <= n_bootstrap <= MAX_BOOTSTRAP:
        raise AdsimError(f"--n-bootstrap must be in [{MIN_BOOTSTRAP}, {MAX_BOOTSTRAP:,}], got {n_bootstrap}")
    if folds < 1:
        raise AdsimError(f"--folds must be >= 1, got {folds}")
    if seed < 0:
        raise AdsimError(f"--seed must be >= 0, got {seed}")


def _probe_writable(path: Path, flag: str) -> None:
    """Create and remove a temporary folder where ``path`` will go (catches read-only and pseudo
    file systems that ``os.access`` does not)."""
    import shutil
    import tempfile

    probe = path.absolute()
    while not probe.exists():
        probe = probe.parent
    if probe == path.absolute():
        probe = path.absolute().parent if not path.is_dir() else probe
    try:
        shutil.rmtree(tempfile.mkdtemp(prefix=".adsim-probe-", dir=probe))
    except OSError as exc:
        raise AdsimError(f"{flag} {path}: cannot write there ({exc}); choose another path") from None


@click.command("ope")
@click.option("--log", "log_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Logged bandit feedback (parquet or CSV): action, reward, pscore[, position, context…].")
@click.option("--target", required=True,
              help="Target policy: a table with pi_0..pi_{K-1} per logged row, or a long table"
                   " (row, action, prob[, position]), or SCENARIO.yaml:CANDIDATE.")
@click.option("--reward-model", default="auto", show_default=True,
              help="q̂ for DM/DR: auto, logistic, gbm, mean (fitted with cross-fitting), or a"
                   " predictions file with columns q_0..q_{K-1}.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder for estimates.csv, report.json and estimates.png.")
@click.option("--estimators", default=_DEFAULT, show_default=True, help=_ESTIMATORS_HELP)
@click.option("--confidence", type=float, default=0.95, show_default=True)
@click.option("--interval", type=click.Choice(["clt", "bootstrap", "bernstein"]), default="clt",
              show_default=True, help="Interval method.")
@click.option("--n-bootstrap", type=int, default=1000, show_default=True)
@click.option("--bootstrap-scheme", type=click.Choice(["multinomial", "half"]),
              default="half", show_default=True,
              help="Double-or-nothing weights 0/2 (default) or Efron's multinomial resampling; speed and coverage of both: benchmarks/ope_speed.py.")
@click.option("--folds", type=int, default=5, show_default=True, help="Cross-fitting folds.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of folds and bootstrap.")
def ope_command(
    log_path: Path, target: str, reward_model: str, out_dir: Path, estimators: str,
    confidence: float, interval: str, n_bootstrap: int, bootstrap_scheme: str, folds: int,
    seed: int,
) -> None:
    """Estimate what TARGET would have earned on LOG, with intervals and overlap diagnostics."""
    from adsim.estimators.bids.log import is_bid_log

    if is_bid_log(log_path):  # an auction exploration log: bid-rule OPE (adsim ope-bids)
        from adsim.experiments.bid_ope_cli import echo_bids, run_ope_bids

        _check_common(confidence, n_bootstrap, folds, seed)
        echo_bids(run_ope_bids(
            log_path, Path(target), out_dir,
            estimators=None if estimators == _DEFAULT else [e.strip() for e in estimators.split(",") if e.strip()],
            confidence=confidence, interval=interval, n_bootstrap=n_bootstrap,
            bootstrap_scheme=bootstrap_scheme, seed=seed,
        ), out_dir)
        return
    import warnings

    from adsim._io import check_output_dir
    from adsim.estimators.api import run_ope
    from adsim.estimators.diagnostics import OverlapWarning

    _check_common(confidence, n_bootstrap, folds, seed)
    from adsim.estimators.api import check_ope_out

    check_output_dir(out_dir, "--out")  # before any work
    check_ope_out(out_dir)
    _probe_writable(out_dir, "--out")
    names = parse_estimators_flag(estimators)
    tgt: object = target
    if ".yaml:" in target or ".yml:" in target:
        from adsim.experiments.scenario_target import scenario_target

        tgt = scenario_target(target, log_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OverlapWarning)
        result = run_ope(
            log_path, tgt, reward_model=reward_model, out=None, estimators=names,
            confidence=confidence, interval=interval, n_bootstrap=n_bootstrap,
            bootstrap_scheme=bootstrap_scheme, n_folds=folds,
            random_state=seed,
        )
    result.inputs.setdefault("target", target)
    result.write(out_dir)
    table = result.table()
    cols = ["estimator", "value", "std_err", "ci_low", "ci_high"]
    flagged = table["interval_note"] != ""
    table.loc[flagged, "estimator"] = table.loc[flagged, "estimator"] + " *"
    click.echo(table[cols].to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    if flagged.any():
        click.echo("* interval ignores the λ selection (SLOPE); it under-covers: see warning")
    d = result.diagnostics
    click.echo(
        f"\noverlap: ESS {d.ess:,.0f} of {d.n_rounds:,} ({100 * d.ess_share:.1f}%), max weight"
        f" {d.max_weight:.3g}, mass on never-logged actions {100 * d.unsupported_mass:.2f}%"
    )
    for p in result.problems + result.interval_warnings:
        click.echo(f"warning: {p}", err=True)
    click.echo(f"wrote estimates.csv, report.json, estimates.png to {out_dir}/")


@click.command("ope-validate")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seeds", type=int, default=None, help="Number of seeds (default: the file's n_seeds).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: runs/<name>).")
@click.option("--jobs", type=int, default=1, show_default=True, help="Worker processes.")
@click.option("--sample-sizes", default=None, help="Override: comma-separated log lengths.")
@click.option("--targets", "target_names", default=None,
              help="Override: comma-separated target names to keep.")
@click.option("--estimators", default=None, help="Override: comma-separated estimator names.")
@click.option("--interval", type=click.Choice(["clt", "bootstrap", "bernstein"]), default=None,
              help="Override: interval method.")
@click.option("--bootstrap-scheme", type=click.Choice(["multinomial", "half"]), default=None,
              help="Override: bootstrap resampling scheme.")
@click.option("--quiet", is_flag=True, help="No progress bar or table.")
def ope_validate_command(
    scenario: Path, seeds: int | None, out_dir: Path | None, jobs: int, sample_sizes: str | None,
    target_names: str | None, estimators: str | None, interval: str | None,
    bootstrap_scheme: str | None, quiet: bool,
) -> None:
    """Validate estimators against the world's exact values: bias, RMSE, coverage (SCENARIO.yaml)."""
    from adsim.experiments.ope_validation import load_validation, run_validation

    if seeds is not None and seeds < 2:
        raise AdsimError(f"--seeds must be >= 2, got {seeds}")
    if jobs < 1:
        raise AdsimError(f"--jobs must be >= 1, got {jobs}")
    from adsim.config.base import load_yaml_mapping

    if "bid_ope" in load_yaml_mapping(scenario):  # an auction scenario validating bid OPE
        from adsim.experiments.bid_ope_cli import run_bid_validate

        if target_names or estimators or interval or bootstrap_scheme:
            raise AdsimError(
                "--targets/--estimators/--interval/--bootstrap-scheme apply to bandit validation;"
                " for a bid_ope scenario edit its bid_ope section"
            )
        try:
            sizes = [int(v) for v in sample_sizes.split(",")] if sample_sizes else None
        except ValueError:
            raise AdsimError(f"--sample-sizes must be comma-separated integers, got {sample_sizes!r}") from None
        run_bid_validate(scenario, seeds, out_dir, jobs, sizes, quiet)
        return
    cfg = load_validation(scenario)
    update: dict[str, object] = {}
    try:
        if sample_sizes:
            update["sample_sizes"] = [int(v) for v in sample_sizes.split(",")]
    except ValueError:
        raise AdsimError(f"--sample-sizes must be comma-separated integers, got {sample_sizes!r}") from None
    if interval:
        update["interval"] = interval
    if bootstrap_scheme:
        update["bootstrap_scheme"] = bootstrap_scheme
    if estimators:
        update["estimators"] = [e.strip() for e in estimators.split(",") if e.strip()]
    if target_names:
        keep = [t.strip() for t in target_names.split(",")]
        known = {(t.name or t.type): t for t in cfg.targets}
        missing = [t for t in keep if t not in known]
        if missing:
            raise AdsimError(f"--targets: no target named {missing[0]!r}; targets are {', '.join(known)}")
        update["targets"] = [known[t] for t in keep]
    if update:
        from adsim.config import parse_config
        from adsim.experiments.ope_validation import ValidationConfig

        data = cfg.model_dump(mode="json", exclude_unset=False)
        data.update({k: (v if k != "targets" else [t.model_dump(mode="json") for t in v])
                     for k, v in update.items()})
        cfg = parse_config(data, ValidationConfig, source="command-line overrides")
    result = run_validation(cfg, n_seeds=seeds, n_jobs=jobs, progress=not quiet)
    out = out_dir if out_dir is not None else Path("runs") / cfg.name
    paths = result.write(out)
    if not quiet:
        click.echo(result.table())
        click.echo(f"\nwrote {', '.join(p.name for p in paths)} to {out}/")
