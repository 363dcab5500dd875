"""``adsim ope-bids`` (also reached by ``adsim ope`` when ``--log`` is a bid log) and the bid branch
of ``adsim ope-validate``.

``adsim ope-bids --log auctions.parquet --target bidder.yaml --out runs/ope_bids`` estimates what
the target bid rule(s) would have won, spent, clicked and converted per request (and per day
when the log carries ``requests_per_day``), with intervals and overlap diagnostics; with
``--budget B`` it also paces the Lagrangian rule to the budget from the same log.

The target file holds one target (``{type: shaded, factor: 0.8}``, ``{type: lagrangian,
lambda: 0.5}``, ``{type: truthful, scale: 1}``, ``{type: bidder, bidder: {type: dual_pacing,
…}}``) or a list under ``targets:``; see :mod:`adsim.config.bid_ope`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from adsim.errors import AdsimError, DataError

__all__ = ["echo_bids", "load_targets", "ope_bids_command", "parse_exploration", "run_bid_validate", "run_ope_bids"]


def parse_exploration(text: str | None) -> dict[str, Any] | None:
    """``lognormal:SIGMA[:MU]`` or ``grid:M1/P1,M2/P2,…`` → the log's exploration dict."""
    if not text:
        return None
    kind, _, rest = text.partition(":")
    try:
        if kind == "lognormal":
            parts = [float(v) for v in rest.split(":")]
            return {"type": "lognormal", "sigma": parts[0], "mu": parts[1] if len(parts) > 1 else 0.0}
        if kind == "grid":
            pairs = [p.split("/") for p in rest.split(",")]
            return {"type": "grid", "multipliers": [float(m) for m, _ in pairs],
                    "probs": [float(p) for _, p in pairs]}
    except (ValueError, IndexError):
        pass
    raise AdsimError(
        f"--exploration {text!r}: use lognormal:SIGMA (e.g. lognormal:0.3) or"
        " grid:M1/P1,M2/P2 (e.g. grid:0.8/0.5,1.0/0.5)"
    )


def load_targets(path: Path) -> list[Any]:
    """Target configs from a YAML file (one target, or a list under ``targets:``)."""
    from adsim.config.base import StrictModel, load_yaml_mapping, parse_config
    from adsim.config.bid_ope import BidTargetConfig

    data = load_yaml_mapping(path)

    class _Targets(StrictModel):
        targets: list[BidTargetConfig]

    if "targets" not in data:
        data = {"targets": [data]}
    return parse_config(data, _Targets, source=str(path)).targets


def run_ope_bids(
    log_path: Path, target_path: Path, out_dir: Path, *, estimators: list[str] | None = None,
    mechanism: str | None = None, exploration: str | None = None, reveal: bool | None = None,
    landscape: str = "lognormal", segment_by: str | None = None, bandwidth: str = "plug_in",
    kernel: str = "gaussian", confidence: float = 0.95, interval: str = "clt",
    n_bootstrap: int = 1000, bootstrap_scheme: str = "half", seed: int = 0,
    budget: float | None = None, requests_per_day: float | None = None,
) -> tuple[Any, list[str], Any]:
    """Estimate every target of ``target_path`` on the bid log; write the outputs to ``out_dir``."""
    import warnings

    import pandas as pd

    from adsim._io import atomic_dir
    from adsim.config import Scenario
    from adsim.estimators.bids.kernel import BidOverlapWarning
    from adsim.estimators.bids.log import read_bid_log
    from adsim.estimators.bids.ope import BID_ESTIMATORS, BidOPE
    from adsim.experiments.bid_ope import make_target, pace_budget

    log = read_bid_log(log_path, mechanism, parse_exploration(exploration), reveal)
    if requests_per_day is not None:
        log.meta["requests_per_day"] = requests_per_day
    try:
        bw: Any = float(bandwidth)
    except ValueError:
        bw = bandwidth
    ope = BidOPE(log, estimators or list(BID_ESTIMATORS), landscape,
                 [c.strip() for c in segment_by.split(",")] if segment_by else None, bw, kernel,
                 confidence, interval, n_bootstrap, bootstrap_scheme, seed, warn=False)
    scn = Scenario(name="ope-bids", candidates=[{"type": "uniform"}])  # only for bidder targets
    spec = log.meta.get("feature_spec")
    dim = 0
    contexts = None
    if spec:
        from adsim.env.features import Contexts, FeatureSpec

        fs = FeatureSpec.from_dict(spec)
        dim = fs.design_dim
        try:
            contexts = Contexts.from_frame(log.frame, fs)
        except DataError:
            contexts = None
    tables, problems, diag = [], [], {}
    from adsim.estimators.bids.ope import target_bids

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BidOverlapWarning)
        for cfg in load_targets(target_path):
            target = make_target(cfg, scn, dim, seed)
            res = ope.evaluate(bids=target_bids(target, log, contexts), name=target.name)
            tables.append(res.table())
            diag[target.name] = res.overlap.to_dict()
            problems += [f"{target.name}: {p}" for p in res.overlap.problems()]
    table = pd.concat(tables, ignore_index=True)
    pacing = None
    if budget is not None:
        from adsim.config.bid_ope import BidBudgetConfig

        b = BidBudgetConfig(budget=budget)
        pacing = pace_budget(ope, budget, b.lambdas, "dr")
    report = {
        "log": str(log_path), "n_requests": log.n_rounds, "log_metadata": log.metadata(),
        "settings": {"estimators": ope.estimators, "landscape": landscape, "segment_by": segment_by,
                     "bandwidth": bandwidth, "kernel": kernel, "confidence": confidence,
                     "interval": interval},
        "estimates": json.loads(table.to_json(orient="records")),
        "overlap": diag, "problems": problems,
    }
    if pacing is not None:
        report["budget"] = {"budget": budget, "lambda_hat": pacing.lam, "value": pacing.value,
                            "spend": pacing.spend, "value_ci": list(pacing.value_ci),
                            "spend_ci": list(pacing.spend_ci),
                            "curve": pacing.curve.to_dict(orient="list")}
    with atomic_dir(out_dir, "ope_bids") as tmp:
        table.to_csv(tmp / "estimates.csv", index=False)
        (tmp / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        if pacing is not None:
            pacing.curve.to_csv(tmp / "budget_curve.csv", index=False)
    return table, problems, pacing


@click.command("ope-bids")
@click.option("--log", "log_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Bid log (parquet or CSV; schema in adsim.estimators.bids.log).")
@click.option("--target", "target_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="YAML with one target bid rule or a list under 'targets:'.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder for estimates.csv and report.json.")
@click.option("--estimators", default="dm,ips,snips,dr", show_default=True)
@click.option("--mechanism", type=click.Choice(["second_price", "first_price"]), default=None,
              help="Override / supply the log's mechanism.")
@click.option("--exploration", default=None,
              help="Override / supply how bids were randomised: lognormal:SIGMA or grid:M1/P1,M2/P2,…")
@click.option("--reveal-min-bid-on-loss/--no-reveal-min-bid-on-loss", "reveal", default=None,
              help="First price: the log has the minimum bid to win on losses.")
@click.option("--landscape", type=click.Choice(["lognormal", "km"]), default="lognormal", show_default=True)
@click.option("--segment-by", default=None, help="Comma-separated log columns that split the landscape.")
@click.option("--bandwidth", default="plug_in", show_default=True, help="plug_in, silverman or a number.")
@click.option("--kernel", type=click.Choice(["gaussian", "epanechnikov"]), default="gaussian", show_default=True)
@click.option("--confidence", type=float, default=0.95, show_default=True)
@click.option("--interval", type=click.Choice(["clt", "bootstrap", "bernstein"]), default="clt", show_default=True)
@click.option("--n-bootstrap", type=int, default=1000, show_default=True)
@click.option("--budget", type=float, default=None, help="Pace this daily budget from the log.")
@click.option("--requests-per-day", type=float, default=None,
              help="Requests per day (for daily totals; simulated logs carry it).")
@click.option("--seed", type=int, default=0, show_default=True)
def ope_bids_command(
    log_path: Path, target_path: Path, out_dir: Path, estimators: str, mechanism: str | None,
    exploration: str | None, reveal: bool | None, landscape: str, segment_by: str | None,
    bandwidth: str, kernel: str, confidence: float, interval: str, n_bootstrap: int,
    budget: float | None, requests_per_day: float | None, seed: int,
) -> None:
    """Estimate what TARGET bid rules would have earned on a bid LOG (value, spend, wins, …)."""
    if not 0.5 < confidence < 1.0:
        raise AdsimError(f"--confidence must be in (0.5, 1), got {confidence}")
    if budget is not None and not budget > 0:
        raise AdsimError(f"--budget must be > 0, got {budget}")
    names = [e.strip() for e in estimators.split(",") if e.strip()]
    echo_bids(run_ope_bids(
        log_path, target_path, out_dir, estimators=names, mechanism=mechanism,
        exploration=exploration, reveal=reveal, landscape=landscape, segment_by=segment_by,
        bandwidth=bandwidth, kernel=kernel, confidence=confidence, interval=interval,
        n_bootstrap=n_bootstrap, seed=seed, budget=budget, requests_per_day=requests_per_day,
    ), out_dir)


def echo_bids(result: tuple[Any, list[str], Any], out_dir: Path) -> None:
    """Print the estimates table, the pacing result and the overlap warnings."""
    table, problems, pacing = result
    cols = [c for c in ["target", "outcome", "estimator", "value", "std_err", "ci_low",
                        "ci_high", "daily"] if c in table.columns]
    click.echo(table[cols].to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    if pacing is not None:
        click.echo(f"\nbudget {pacing.budget:g}: λ̂ = {pacing.lam:.4f}, estimated daily value"
                   f" {pacing.value:.6g} [{pacing.value_ci[0]:.6g}, {pacing.value_ci[1]:.6g}],"
                   f" spend {pacing.spend:.6g}")
    for p in problems:
        click.echo(f"warning: {p}", err=True)
    click.echo(f"wrote estimates.csv, report.json to {out_dir}/")


def run_bid_validate(scenario_path: Path, seeds: int | None, out_dir: Path | None, jobs: int,
                     sample_sizes: list[int] | None, quiet: bool) -> None:
    """The ``adsim ope-validate`` branch for scenarios with a ``bid_ope`` section."""
    from adsim.config import load_scenario
    from adsim.experiments.bid_ope_validation import run_bid_validation

    scn = load_scenario(scenario_path)
    if sample_sizes:
        assert scn.bid_ope is not None
        val = scn.bid_ope.validation.model_copy(update={"sample_sizes": sorted(set(sample_sizes))})
        scn = scn.model_copy(update={"bid_ope": scn.bid_ope.model_copy(update={"validation": val})})
    result = run_bid_validation(scn, n_seeds=seeds, n_jobs=jobs, progress=not quiet)
    out = out_dir if out_dir is not None else Path("runs") / scn.name
    paths = result.write(out)
    if not quiet:
        click.echo(result.table())
        click.echo(f"\nwrote {', '.join(p.name for p in paths)} to {out}/")
