"""Multi-task CTR/CVR benchmark on synthetic data with known truth (conversions only after clicks).

For shared-bottom, ESMM, MMoE (fixed and uncertainty task weighting), PLE and the multi-task
Transformer, trained with the pipeline's trainer on the same encoded arrays, report on the test
split:

* CTR AUC (all impressions, click label), CTCVR AUC (all impressions, click ∧ conversion) and
  CVR AUC (clicked impressions, conversion label, scored by the model's post-click pCVR), each
  next to the Bayes-optimal AUC of the true probabilities;
* the bias of pCVR over **all** impressions against the true P(conversion | click, x):
  mean(p̂CVR − pCVR) over all test impressions and over the unclicked ones (which a CVR model
  never sees in training), beside a CVR model of the same architecture trained on clicked
  rows only (the sample-selection-biased baseline ESMM was designed to fix, Ma et al. 2018).

pCVR is ESMM's CVR tower; for the other models pCTCVR / pCTR (``post_click_cvr``).
The data has temporal features (hour of day, day of week, recency since last click) and a
user×item-category cross, derived by :mod:`adsim.models.temporal`.

Run::

    PYTHONPATH=. python benchmarks/multitask.py            # 300k rows, 4 epochs, 3000 items, kappa 2

Timings are not the point here; the quality figures are seeded and reproducible.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


MODELS = {
    "shared_bottom": ("shared_bottom", {"embed_dim": 8, "bottom": (128, 64), "tower": (32,)}, "fixed"),
    "esmm": ("esmm", {"embed_dim": 8, "tower": (128, 64)}, "fixed"),
    "mmoe": ("mmoe", {"embed_dim": 8, "n_experts": 4, "expert": (64,), "tower": (32,)}, "fixed"),
    "mmoe+uncertainty": ("mmoe", {"embed_dim": 8, "n_experts": 4, "expert": (64,), "tower": (32,)}, "uncertainty"),
    "ple": ("ple", {"embed_dim": 8, "n_levels": 2, "n_specific": 1, "n_shared": 2, "expert": (64,), "tower": (32,)}, "fixed"),
    "mt_transformer": ("multitask_transformer", {"embed_dim": 16, "n_heads": 2, "n_layers": 2, "tower": (32,)}, "fixed"),
}


def prepare(rows: int, seed: int, **truth):
    """Synthetic rows → derived features → pipeline Preprocessor → CTRData splits + truths."""
    from adsim.models.data import CTRData, Preprocessor
    from adsim.models.synthetic_ctcvr import DENSE, LABELS, SPARSE, generate_ctr_cvr
    from adsim.models.temporal import DerivedFeaturesConfig, derive_features, derived_columns

    df = generate_ctr_cvr(rows, seed=seed, **truth)
    dcfg = DerivedFeaturesConfig(time_column="ts", user_column="user_id", click_column="click",
                                 crosses=[("u_age", "item_cat")])
    df = derive_features(df, dcfg)
    extra = derived_columns(dcfg)
    n = len(df)  # rows are in time order: time-ordered split 70/10/20
    cut1, cut2 = int(0.7 * n), int(0.8 * n)
    parts = {"train": df.iloc[:cut1], "val": df.iloc[cut1:cut2], "test": df.iloc[cut2:]}
    truth = ["p_click", "p_cvr", "p_ctcvr"]
    pre = Preprocessor(list(LABELS), [*DENSE, *extra["dense"]], [*SPARSE, *extra["sparse"]], [], 1,
                       ["item_price"], truth).fit(parts["train"])
    schema = pre.schema()
    out = {}
    for k, part in parts.items():
        enc = pre.transform(part)
        out[k] = (CTRData.from_frame(enc, schema), enc[truth].to_numpy(np.float64))
    return out, schema


def _subset(data, mask, label_cols):
    from adsim.models.data import CTRData

    return CTRData(data.dense[mask], data.sparse[mask], data.labels[mask][:, label_cols])


def main(argv: list[str] | None = None) -> dict:
    import torch

    from adsim.models.config import TrainConfig
    from adsim.models.metrics import auc
    from adsim.models.multitask import post_click_cvr
    from adsim.models.schema import ModelSchema
    from adsim.models.train import Trainer, to_tensors
    from adsim.models.zoo import build_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--n-items", type=int, default=3000, help="Items of the generator.")
    ap.add_argument("--kappa", type=float, default=2.0, help="How much click-bait items convert less.")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    splits, schema = prepare(args.rows, args.seed, n_items=args.n_items, kappa=args.kappa)
    (train, _), (val, _), (test, truth) = splits["train"], splits["val"], splits["test"]
    print(f"data: {args.rows} rows ({len(train)} train / {len(val)} val / {len(test)} test),"
          f" CTR {train.labels[:, 0].mean():.4f}, CTCVR {train.labels[:, 1].mean():.5f};"
          f" prepared in {time.perf_counter() - t0:.1f}s", flush=True)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=3e-3, progress=False, tensorboard=False,
                      device="cpu", t0_epochs=args.epochs, patience=2, seed=args.seed)
    y_click, y_conv = test.labels[:, 0], test.labels[:, 1]
    clicked = y_click > 0
    p_click, p_cvr, p_ctcvr = truth[:, 0], truth[:, 1], truth[:, 2]
    low = p_click <= np.quantile(p_click, 0.2)  # the least-clicked fifth: where selection bites
    bayes = {"ctr_auc": auc(y_click, p_click), "cvr_auc": auc(y_conv[clicked], p_cvr[clicked]),
             "ctcvr_auc": auc(y_conv, p_ctcvr), "cvr_bias_all": 0.0, "cvr_bias_unclicked": 0.0,
             "cvr_bias_low_ctr": 0.0}
    results: dict[str, dict[str, float]] = {"bayes_optimal": bayes}

    def cvr_stats(p_hat: np.ndarray) -> dict[str, float]:
        return {"cvr_auc": auc(y_conv[clicked], p_hat[clicked]),
                "cvr_bias_all": float(np.mean(p_hat - p_cvr)),
                "cvr_bias_unclicked": float(np.mean(p_hat[~clicked] - p_cvr[~clicked])),
                "cvr_bias_low_ctr": float(np.mean(p_hat[low] - p_cvr[low])),
                "cvr_mae_all": float(np.mean(np.abs(p_hat - p_cvr)))}

    for label in args.models.split(","):
        name, opts, weighting = MODELS[label]
        t = time.perf_counter()
        torch.manual_seed(args.seed)
        model = build_model(name, schema, **opts)
        trainer = Trainer(model, cfg.model_copy(update={"task_weighting": weighting}))
        trainer.fit(train, val)
        p = Trainer.predict_proba(model, test)
        if hasattr(model, "cvr_logits") and (name == "esmm" or getattr(model.cfg, "esmm", False)):
            te = to_tensors(test, torch.device("cpu"))
            te.pop("labels")
            model.eval()
            with torch.no_grad():
                p_hat = torch.sigmoid(torch.cat([model.cvr_logits({k: v[i:i + 65536] for k, v in te.items()})
                                                 for i in range(0, len(test), 65536)])).double().numpy()
        else:
            p_hat = post_click_cvr(p[:, 0], p[:, 1])
        row = {"ctr_auc": auc(y_click, p[:, 0]), "ctcvr_auc": auc(y_conv, p[:, 1]), **cvr_stats(p_hat),
               "seconds": time.perf_counter() - t}
        if weighting == "uncertainty":
            row["task_weights"] = [float(w) for w in trainer.objective.task_weights()]
        results[label] = row
        print(f"  {label:18s} CTR AUC {row['ctr_auc']:.4f}  CVR AUC {row['cvr_auc']:.4f}  CTCVR AUC"
              f" {row['ctcvr_auc']:.4f}  CVR bias {row['cvr_bias_all']:+.4f}  ({row['seconds']:.0f}s)", flush=True)

    # the sample-selection-biased baseline: same bottom as shared-bottom, trained on clicked rows
    t = time.perf_counter()
    cvr_schema = ModelSchema(dense=schema.dense, sparse=schema.sparse, tasks=("conversion",))
    torch.manual_seed(args.seed)
    naive = build_model("shared_bottom", cvr_schema, **MODELS["shared_bottom"][1])
    tr_c = _subset(train, train.labels[:, 0] > 0, [1])
    va_c = _subset(val, val.labels[:, 0] > 0, [1])
    Trainer(naive, cfg.model_copy(update={"batch_size": 512})).fit(tr_c, va_c)
    p_naive = Trainer.predict_proba(naive, _subset(test, np.ones(len(test), bool), [1]))[:, 0]
    results["cvr_on_clicked_only"] = {**cvr_stats(p_naive), "seconds": time.perf_counter() - t,
                                      "train_rows": len(tr_c)}
    r = results["cvr_on_clicked_only"]
    print(f"  {'cvr_on_clicked':18s} {'':16s} CVR AUC {r['cvr_auc']:.4f}  {'':17s}"
          f" CVR bias {r['cvr_bias_all']:+.4f}  ({r['seconds']:.0f}s)")

    print("\n| model | CTR AUC | CVR AUC (clicked) | CTCVR AUC | pCVR bias, all | pCVR bias, unclicked"
          " | pCVR bias, lowest-CTR fifth | pCVR MAE |")
    print("|---|---|---|---|---|---|---|---|")
    for label, row in results.items():
        f = lambda k: f"{row[k]:.4f}" if k in row else "—"  # noqa: E731
        g = lambda k: f"{row[k]:+.4f}" if k in row else "—"  # noqa: E731
        print(f"| {label} | {f('ctr_auc')} | {f('cvr_auc')} | {f('ctcvr_auc')} | {g('cvr_bias_all')} |"
              f" {g('cvr_bias_unclicked')} | {g('cvr_bias_low_ctr')} | {f('cvr_mae_all')} |")
    print(f"\nmean true pCVR over all test impressions {p_cvr.mean():.4f}, over clicked {p_cvr[clicked].mean():.4f}")
    print("reproduce: PYTHONPATH=. python benchmarks/multitask.py " + " ".join(sys.argv[1:] if argv is None else argv))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
