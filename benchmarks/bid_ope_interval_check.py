"""Are the bid-OPE CLT intervals honest? Reported standard errors vs the exact sampling s.d.

For ``scenarios/bid_ope_validation.yaml`` (second price, one campaign against a log-normal market,
the logger bids ``0.7 v(x) M`` with ``log M ~ N(0, 0.3²)``) the per-request term of kernel IPS,
``ψ = w Y`` with ``w = K_h(t* − T)/g0(T|x)``, and of kernel DR with the true model ``q``,
``ψ = q(x, t*) + w (Y − q(x, T))``, have closed-form moments over the finite user population:

.. math::
    E[ψ_{IPS}^2] = E_x ∫ φ(z)\\, w(z)^2\\, F(b_0 e^{σz})\\, m_2(x)\\, dz,\\qquad
    E[ψ_{DR}^2] = E_x\\Big[q(x,t^*)^2 + ∫ φ(z)\\, w(z)^2 \\big(F m_2 − F^2 m_1^2\\big) dz\\Big]

(``F`` the market price's CDF, ``m_1 = E[Y | x, won]``, ``m_2 = E[Y² | x, won] = 4p + 45 p·cvr``
for ``Y = 2·click + 5·conversion``), so the exact standard deviation of the estimate,
``sd = sqrt(Var ψ / n)``, is known at the bandwidth the plug-in rule picks. The script compares,
over logged days, (1) the average reported standard error with that exact s.d., (2) the spread of
the estimates over days with both, and (3) the coverage of the reported 95% CLT interval and of
an *oracle* interval ``V̂ ± 1.96 sd_exact``. Days come from the simulator (``log_day``, the seeds
of ``benchmarks/bid_ope_validation.py``) and, with ``--synthetic-seeds``, from a direct i.i.d.
draw of the same data-generating process (users uniform from the population, log-normal
multiplier and market price, Bernoulli click and conversion), both estimated by
:class:`~adsim.estimators.bids.ope.BidOPE` exactly as the validation does (plug-in bandwidth,
fitted censored log-normal landscape).

    PYTHONPATH=. python benchmarks/bid_ope_interval_check.py --sim-seeds 200 --synthetic-seeds 400 --jobs 2
"""

from __future__ import annotations

import argparse
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
from scipy.stats import norm

from adsim.config import load_scenario
from adsim.estimators.bids.kernel import BidOverlapWarning
from adsim.estimators.bids.log import BidLog
from adsim.estimators.bids.ope import BidOPE, target_bids
from adsim.experiments.bid_ope import _cfg, _population_requests, agent_index, log_day
from adsim.experiments.bid_ope_validation import _setup

SCENARIO = "scenarios/bid_ope_validation.yaml"
TARGET = "shaded-0.8"
Z95 = float(norm.ppf(0.975))


def _world(path: str):
    scn = load_scenario(path)
    aw, targets, truth = _setup(scn)
    req, pw, g = _population_requests(aw, agent_index(scn))
    return scn, aw, targets, truth, pw / pw.sum(), g


def exact_variances(path: str, ratio: float, h: float) -> dict[str, float]:
    """Per-request Var ψ of kernel IPS and of DR with the true model (module docstring)."""
    scn, _, _, _, pi, g = _world(path)
    cfg = _cfg(scn)
    mk = scn.auction.market  # type: ignore[union-attr]
    sig, base = float(cfg.logger.exploration.sigma), float(cfg.logger.base_scale)  # type: ignore[union-attr]
    m1, m2 = g["value"], 4.0 * g["clicks"] + 45.0 * g["conversions"]
    z = np.linspace(-8.0, 8.0, 3201)
    dz, phz = z[1] - z[0], norm.pdf(z)
    w = norm.pdf((np.log(ratio) - sig * z) / h) / h / (phz / sig)  # K_h(t* − t)/g0(t)
    out = dict(mean_ips=0.0, ips2=0.0, q2=0.0, dr_resid=0.0, V=0.0)
    for sl in np.array_split(np.arange(len(m1)), 20):
        b0 = base * g["value"][sl]
        F = norm.cdf((np.log(b0)[:, None] + sig * z[None, :] - mk.mu) / mk.sigma)
        p = pi[sl]
        out["mean_ips"] += p @ ((phz * w * F).sum(1) * dz * m1[sl])
        out["ips2"] += p @ ((phz * w * w * F).sum(1) * dz * m2[sl])
        q_star = norm.cdf((np.log(ratio * b0) - mk.mu) / mk.sigma) * m1[sl]
        out["V"] += p @ q_star
        out["q2"] += p @ q_star**2
        resid = F * m2[sl][:, None] - F**2 * m1[sl][:, None] ** 2
        out["dr_resid"] += p @ ((phz * w * w * resid).sum(1) * dz)
    return {"V": out["V"], "var_ips": out["ips2"] - out["mean_ips"] ** 2,
            "var_dr": out["q2"] + out["dr_resid"] - out["V"] ** 2}


def _synthetic_log(path: str, seed: int, n: int) -> BidLog:
    """One i.i.d. day of the scenario's data-generating process, drawn directly."""
    scn, _, _, _, pi, g = _world(path)
    cfg = _cfg(scn)
    mk = scn.auction.market  # type: ignore[union-attr]
    sig, base = float(cfg.logger.exploration.sigma), float(cfg.logger.base_scale)  # type: ignore[union-attr]
    rng = np.random.default_rng([scn.seed, 1515, seed])
    u = rng.choice(len(pi), size=n, p=pi)
    v, p = g["value"][u], g["clicks"][u]
    cvr = np.divide(g["conversions"][u], p, out=np.zeros(n), where=p > 0)
    zz = rng.standard_normal(n)
    b0 = base * v
    bid = b0 * np.exp(sig * zz)
    d = np.exp(mk.mu + mk.sigma * rng.standard_normal(n))
    won = bid >= d
    click = won & (rng.random(n) < p)
    conv = click & (rng.random(n) < cvr)
    frame = pd.DataFrame({
        "expected_value": v, "ctr": p, "base_bid": b0, "bid": bid,
        "propensity": norm.pdf(zz) / (sig * bid), "won": won.astype(np.int8),
        "price": np.where(won, d, 0.0), "min_bid": np.where(won, d, np.nan),
        "click": click.astype(np.int8), "conversion": conv.astype(np.int8),
        "value": 2.0 * click + 5.0 * conv,
    })
    return BidLog(frame, "second_price", {"type": "lognormal", "sigma": sig, "mu": 0.0}, False,
                  {"requests_per_day": float(n)})


def _one(args: tuple[str, str, int, int]) -> dict:
    path, kind, seed, n = args
    scn, aw, targets, _, _, _ = _world(path)
    target = next(t for t in targets if t.name == TARGET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BidOverlapWarning)
        log = log_day(scn, aw, seed).log if kind == "simulator" else _synthetic_log(path, seed, n)
        ope = BidOPE(log, ["ips", "dr"], "lognormal", None, "plug_in", "gaussian", 0.95, "clt",
                     warn=False)
        b = target_bids(target, log)
        row: dict = {"kind": kind, "seed": seed, "n": log.n_rounds}
        for est in ("ips", "dr"):
            e = ope.estimate(b, "value", est)
            row.update({est: e.value, f"{est}_se": e.std_err, "h": e.details["bandwidth"]})
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default=SCENARIO)
    ap.add_argument("--sim-seeds", type=int, default=200)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--synthetic-seeds", type=int, default=0)
    ap.add_argument("--n", type=int, default=100_000, help="Rows of a synthetic day.")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=None, help="Write the per-day rows to this CSV.")
    args = ap.parse_args()
    from tqdm import tqdm

    t0 = time.perf_counter()
    tasks = [(args.scenario, "simulator", s, args.n)
             for s in range(args.first_seed, args.first_seed + args.sim_seeds)]
    tasks += [(args.scenario, "synthetic", s, args.n) for s in range(args.synthetic_seeds)]
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(tqdm(pool.map(_one, tasks, chunksize=4), total=len(tasks)))
    df = pd.DataFrame(rows)
    if args.out:
        df.to_csv(args.out, index=False)
    scn, _, targets, truth, _, _ = _world(args.scenario)
    t = next(t for t in targets if t.name == TARGET)
    ratio = float(t.scale) / float(_cfg(scn).logger.base_scale)  # type: ignore[attr-defined]
    V = truth[TARGET]["value"]
    h = float(df["h"].mean())
    ex = exact_variances(args.scenario, ratio, h)
    print(f"{TARGET} value per request V = {V:.6f} (closed form check {ex['V']:.6f});"
          f" plug-in h = {h:.4f} ± {df['h'].std():.5f}")
    for kind, g in df.groupby("kind", sort=False):
        n = float(g["n"].mean())
        for est in ("ips", "dr"):
            sd_exact = float(np.sqrt(ex[f"var_{est}"] / n))
            err = g[est] - V
            cov = (err.abs() <= Z95 * g[f"{est}_se"]).mean()
            cov_or = (err.abs() <= Z95 * sd_exact).mean()
            k = len(g)
            print(f"  {kind:9s} kernel_{est:3s} {k:4d} days: mean SE / exact sd"
                  f" {g[f'{est}_se'].mean() / sd_exact:.4f}; sd over days / exact sd"
                  f" {err.std(ddof=1) / sd_exact:.3f}; rel. bias {100 * err.mean() / V:+.2f}%;"
                  f" coverage {100 * cov:.1f}% ± {100 * np.sqrt(cov * (1 - cov) / k):.1f},"
                  f" oracle-sd coverage {100 * cov_or:.1f}%")
    print(f"{len(df)} days in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
