"""Preprocessor encoding speed: cached vocabulary index vs rebuilding it on every call.

``Preprocessor.encode`` maps category keys to ids through a ``pd.Index`` of the column's
vocabulary. It used to build that index (and its hash table) on every call; now it is built once
per fitted/loaded vocabulary. This script times both side by side in one run on a Criteo-like
layout (13 dense + 26 sparse = 39 columns, vocabularies of 10 … 20,000 keys, Zipf-distributed
values) for ``Preprocessor.transform`` of 100 rows (the online/batch-chunk case) and of 100,000
rows, checks the two give identical frames, and prints medians and the ratio.

Reproduce:  ``.venv/bin/python benchmarks/preprocessor_encode.py``  (``--repeat N``)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_frame(n: int, rng: np.random.Generator):
    import pandas as pd

    cols = {"label": rng.integers(0, 2, n)}
    for j in range(13):
        cols[f"I{j + 1}"] = np.where(rng.random(n) < 0.1, np.nan, rng.lognormal(1.0, 1.5, n).round())
    cards = np.geomspace(10, 20_000, 26).astype(int)
    for j, card in enumerate(cards):
        keys = np.minimum(rng.zipf(1.3, n), card) - 1
        cols[f"C{j + 1}"] = np.char.add(f"c{j}_", keys.astype(str)).astype(object)
    return pd.DataFrame(cols)


def main() -> None:
    import pandas as pd

    from adsim.models.data import OOV, Preprocessor, category_keys

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7, help="timed repeats per case (median reported)")
    args = ap.parse_args()

    class Uncached(Preprocessor):
        """The previous encode: a new pd.Index per call."""

        def encode(self, column, keys):
            idx = pd.Index(self.vocab_[column], dtype=object).get_indexer(keys)
            return np.where(idx < 0, OOV, idx + 2).astype(np.int64)

    rng = np.random.default_rng(0)
    train = make_frame(100_000, rng)
    dense = [f"I{j + 1}" for j in range(13)]
    sparse = [f"C{j + 1}" for j in range(26)]
    new = Preprocessor(["label"], dense, sparse, log1p=dense).fit(train)
    old = Uncached.from_dict(new.to_dict())
    print(f"vocabulary sizes: {min(map(len, new.vocab_.values()))} … {max(map(len, new.vocab_.values()))}")
    print(f"{'case':<34} {'uncached ms':>12} {'cached ms':>10} {'ratio':>7}")
    for n, reps in ((100, 50), (100_000, 1)):
        df = make_frame(n, np.random.default_rng(n))
        pd.testing.assert_frame_equal(old.transform(df), new.transform(df))  # identical output (and warm-up)
        keys = {c: category_keys(df[c]) for c in sparse}

        def encode_all(pre: Preprocessor) -> None:
            for c in sparse:
                pre.encode(c, keys[c])

        cases = ((f"transform, {n} rows x 39 columns", lambda pre: pre.transform(df)),
                 (f"encode only, {n} rows x 26 sparse", encode_all))
        for label, fn in cases:
            times = {"old": [], "new": []}
            for _ in range(args.repeat):
                for name, pre in (("old", old), ("new", new)):  # interleaved: same machine load
                    t0 = time.perf_counter()
                    for _ in range(reps):
                        fn(pre)
                    times[name].append((time.perf_counter() - t0) / reps)
            t_old, t_new = (1e3 * float(np.median(times[k])) for k in ("old", "new"))
            print(f"{label:<34} {t_old:>12.3f} {t_new:>10.3f} {t_old / t_new:>6.2f}x")
    print("reproduce: .venv/bin/python benchmarks/preprocessor_encode.py")


if __name__ == "__main__":
    main()
