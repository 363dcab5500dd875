"""Confidence intervals for off-policy estimates.

- :func:`clt_interval` — normal interval :math:`\\hat V \\pm z_{1-\\alpha/2}\\,\\widehat{se}` with
  the delta-method standard error of :class:`~adsim.estimators.base.Components`.
- :func:`bootstrap_interval` — Efron's percentile bootstrap, vectorised: resamples are drawn in
  chunks of indices and every resample recomputes :math:`\\bar u^* + \\bar c^*/\\bar d^*`, so the
  normaliser of SNIPS/SNDR is re-estimated in each resample (obp bootstraps the already-normalised
  round rewards, which keeps it fixed, and loops in Python). ``scheme="half"`` is the
  double-or-nothing weighted bootstrap (weights 0 or 2 with probability ½; Owen & Eckles 2012,
  "Bootstrapping data arrays of arbitrary order", AoAS): same mean and variance of the weights as
  Efron's, one random *bit* per row, and evaluated eight rows at a time through byte tables.
- :func:`bernstein_interval` — empirical Bernstein bound (Maurer & Pontil 2009, "Empirical
  Bernstein bounds and sample variance penalization", COLT, Thm 4; used for off-policy evaluation
  by Thomas, Theocharous & Ghavamzadeh 2015, "High confidence off-policy evaluation", AAAI): for
  i.i.d. :math:`\\psi_i` in an interval of width :math:`R`, with probability at least
  :math:`1-\\delta` each side,

  .. math:: |\\bar\\psi - E\\psi| \\le \\sqrt{\\frac{2 V_n \\ln(4/\\delta)}{n}}
            + \\frac{7 R \\ln(4/\\delta)}{3(n-1)}

  (two-sided by a union bound), :math:`V_n` the unbiased sample variance. It is a finite-sample
  guarantee only when :math:`R` is a true a-priori bound (e.g. clip × max reward); by default the
  observed range of ψ is plugged in, which is wider than the CLT interval but not a proof.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.stats import norm

__all__ = ["clt_interval", "bootstrap_values", "bootstrap_interval", "bernstein_interval"]


def clt_interval(value: float, std_err: float, confidence: float) -> tuple[float, float]:
    """Normal interval value ± z · std_err."""
    z = float(norm.ppf(0.5 + confidence / 2))
    return value - z * std_err, value + z * std_err


def _ratio(sums: np.ndarray) -> np.ndarray:
    """V* from resampled column sums ``(B, 4)`` of (u, c, d, 1)."""
    total = sums[:, 3]
    return sums[:, 0] / total + sums[:, 1] / sums[:, 2]


_POPCOUNT = ((np.arange(256)[:, None] >> np.arange(8)) & 1).sum(axis=1).astype(np.uint8)


def _live_columns(z: np.ndarray) -> list[int]:
    """Columns whose resampled sums are needed: u unless all 0; c, d unless c is all 0."""
    cols = [] if not z[:, 0].any() else [0]
    if z[:, 1].any():
        cols += [1, 2]
    return cols


def _multinomial_sums(
    z: np.ndarray, n_boot: int, rng: np.random.Generator, chunk_elems: int
) -> np.ndarray:
    """Column sums under Efron's resampling: n draws with replacement per resample.

    Draws that land on rows where every needed column is 0 add nothing, so they are not
    materialised: the number of draws landing on the other ``m`` rows is Binomial(n, m/n) and
    those draws are uniform over them — the same joint distribution of every resample's sums
    as n uniform draws over all rows (sparse rewards make m ≪ n: IPS on click logs).
    """
    n = z.shape[0]
    live = _live_columns(z)
    out = np.zeros((n_boot, 4))
    out[:, 2] = 1.0  # c = 0, d = 1 unless live
    out[:, 3] = n
    if not live:
        return out
    rows = np.flatnonzero((z[:, live] != 0).any(axis=1))
    m = rows.size
    cols = [np.ascontiguousarray(z[rows, j]) for j in live]
    if m == 0:
        return out
    step = max(1, chunk_elems // m)
    for s in range(0, n_boot, step):
        b = min(step, n_boot - s)
        counts = rng.binomial(n, m / n, size=b) if m < n else np.full(b, n)
        idx = rng.integers(0, m, size=int(counts.sum()), dtype=np.intp)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        empty = counts == 0
        starts[empty] = 0  # reduceat needs valid starts; empty resamples are zeroed below
        for j, col in zip(live, cols):
            sums = np.add.reduceat(np.take(col, idx), starts) if idx.size else np.zeros(b)
            sums[empty] = 0.0
            out[s : s + b, j] = sums
    return out


def _half_sums(
    z: np.ndarray, n_boot: int, rng: np.random.Generator, chunk_elems: int
) -> np.ndarray:
    """Column sums under weights W = 2·bit: eight rows per byte, via per-group byte tables.

    Rows are split into groups of 8; for each group g a table T_g[b] = Σ_k bit_k(b) z_{8g+k}
    (256 entries, 2 KiB) turns one random byte into that group's weighted sum. Resamples are
    processed group-major, so each lookup hits a table already in L1 cache. ΣW comes from a
    popcount (256-entry table) of the random bytes.
    """
    n = z.shape[0]
    groups = -(-n // 8)
    live = _live_columns(z)
    zz = np.zeros((groups * 8, 3))
    zz[:n] = z
    bits = ((np.arange(256)[:, None] >> np.arange(8)) & 1).astype(np.float64)  # (256, 8)
    tables = [np.ascontiguousarray((bits @ zz[:, j].reshape(groups, 8).T).T).ravel()
              for j in live]  # each (groups·256,)
    offsets = (np.arange(groups, dtype=np.intp) * 256)[:, None]
    out = np.zeros((n_boot, 4))
    out[:, 2] = 1.0
    step = max(1, chunk_elems // groups)
    pad_bits = groups * 8 - n  # padded rows have z = 0 but their bits must not count in ΣW
    for s in range(0, n_boot, step):
        b = min(step, n_boot - s)
        raw = np.frombuffer(rng.bytes(groups * b), dtype=np.uint8).reshape(groups, b)
        if pad_bits:
            raw = raw.copy()
            raw[-1] &= np.uint8((1 << (8 - pad_bits)) - 1)
        idx = raw + offsets  # (groups, b) intp
        for j, table in zip(live, tables):
            out[s : s + b, j] = 2.0 * np.take(table, idx).sum(axis=0)
        if 0 in live:  # ΣW is only needed for mean(u)
            out[s : s + b, 3] = 2.0 * _POPCOUNT[raw].sum(axis=0, dtype=np.int64)
        else:
            out[s : s + b, 3] = 1.0
    if 1 not in live:
        out[:, 2] = 1.0
    return out


def bootstrap_values(
    components: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
    scheme: Literal["multinomial", "half"] = "half",
    chunk_elems: int | None = None,
) -> np.ndarray:
    """``(n_boot,)`` bootstrap replicates of V = mean(u) + mean(c)/mean(d).

    ``components`` is ``(n, 3)`` with columns u, c, d (see
    :meth:`~adsim.estimators.base.Components.stacked`). Work is chunked to about ``chunk_elems``
    random draws at a time (default: 250k for multinomial, 1M bytes for double-or-nothing; small
    enough that the buffers are reused from cache rather than freshly mapped), so memory stays
    bounded for any n.
    """
    z = np.asarray(components, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != 3:
        raise ValueError(f"components must be (n, 3), got {z.shape}")
    if scheme == "multinomial":
        sums = _multinomial_sums(z, n_boot, rng, chunk_elems or 250_000)
    elif scheme == "half":
        sums = _half_sums(z, n_boot, rng, chunk_elems or 1_000_000)
    else:
        raise ValueError(f"scheme must be 'multinomial' or 'half', got {scheme!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return _ratio(sums)


def bootstrap_interval(
    components: np.ndarray,
    confidence: float,
    n_boot: int,
    rng: np.random.Generator,
    scheme: Literal["multinomial", "half"] = "half",
) -> tuple[float, float]:
    """Percentile bootstrap interval of V = mean(u) + mean(c)/mean(d)."""
    v = bootstrap_values(components, n_boot, rng, scheme)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    alpha = 1.0 - confidence
    lo, hi = np.quantile(v, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def bernstein_interval(
    psi: np.ndarray, confidence: float, value_range: float | None = None
) -> tuple[float, float]:
    """Two-sided empirical Bernstein interval for the mean of ``psi`` (see module docstring)."""
    psi = np.asarray(psi, dtype=np.float64)
    n = psi.shape[0]
    mean = float(psi.mean())
    if n < 2:
        return float("-inf"), float("inf")
    delta = 1.0 - confidence
    rng_width = float(psi.max() - psi.min()) if value_range is None else float(value_range)
    log_term = np.log(4.0 / delta)
    var = float(psi.var(ddof=1))
    half = np.sqrt(2.0 * var * log_term / n) + 7.0 * rng_width * log_term / (3.0 * (n - 1))
    return float(mean - half), float(mean + half)


def estimate_with_interval(
    comp: object, confidence: float, interval: str, n_bootstrap: int, random_state: int,
    bootstrap_scheme: str,
) -> tuple[float, float, float, float, int]:
    """``(value, std_err, ci_low, ci_high, n)`` of an estimator's components.

    ``comp`` has ``value()`` (the point estimate), ``per_sample()`` (the influence terms ψ_i,
    whose mean is the estimate: SE = sd(ψ)/√n) and ``stacked()`` (the sums the bootstrap
    resamples). ``interval`` is ``clt``, ``bootstrap`` or ``bernstein``.
    """
    value = float(comp.value())  # type: ignore[attr-defined]
    psi = comp.per_sample()  # type: ignore[attr-defined]
    n = int(psi.shape[0])
    se = float(psi.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    if interval == "clt":
        lo, hi = clt_interval(value, se, confidence)
    elif interval == "bootstrap":
        lo, hi = bootstrap_interval(
            comp.stacked(), confidence, n_bootstrap,  # type: ignore[attr-defined]
            np.random.default_rng(random_state), bootstrap_scheme,  # type: ignore[arg-type]
        )
    else:
        lo, hi = bernstein_interval(psi, confidence)
    return value, se, lo, hi, n
