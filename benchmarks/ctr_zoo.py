"""The CTR model zoo on the synthetic benchmark: quality and speed of every model, one table.

Data: impressions drawn from the simulator's known logistic click model (the CTR pipeline's
``synthetic`` source, :func:`adsim.models.readers.generate_synthetic`): per-ad bias, user dense
features × ad embedding, and sparse user field × ad effects. The true click probability of every
test row is known, so the **Bayes-optimal** AUC / log-loss / ECE (the truth scored against its own
draws) is printed as the ceiling no model can beat.

Every model is trained by the pipeline's trainer with the same data, seed, optimiser and epochs
(``adsim.models.compare``), and reported with test AUC, log-loss, ECE (raw, uncalibrated), number of
parameters, training samples/s (optimisation loop only) and inference rows/s (eval mode, batch
65,536). Timings share one process and one thread setting, so compare them side by side (ratios),
not across machines.

Reproduce (the defaults)::

    PYTHONPATH=. python benchmarks/ctr_zoo.py --rows 200000 --epochs 4 --batch-size 1024 --lr 0.01 --threads 1

Published reference for the ordering (BARS benchmark, Criteo_x1, AUC): DeepFM 0.8137,
DCNv2 0.8142, FinalMLP 0.8149 — well-tuned deep models sit within ~0.001 of each other. Expect the
same here: the interaction models close to each other and to the Bayes ceiling, LR clearly below.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

MODELS: list[dict] = [
    {"name": "lr"},
    {"name": "fm", "options": {"embed_dim": 16}},
    {"name": "deepfm", "options": {"embed_dim": 16, "hidden": [128, 64], "dense_fields": True}},
    {"name": "xdeepfm", "options": {"embed_dim": 16, "cin_layers": [32, 32], "hidden": [128, 64]}},
    {"name": "dcnv2", "options": {"embed_dim": 16, "hidden": [128, 64], "n_cross": 2}},
    {"name": "dcnv2", "label": "dcnv2-stacked-mix",
     "options": {"embed_dim": 16, "hidden": [128, 64], "n_cross": 2, "structure": "stacked", "low_rank": 16}},
    {"name": "autoint", "options": {"embed_dim": 16, "n_layers": 2, "attention_dim": 16}},
    {"name": "autoint", "label": "autoint+",
     "options": {"embed_dim": 16, "n_layers": 2, "attention_dim": 16, "hidden": [128, 64]}},
    {"name": "fibinet", "options": {"embed_dim": 16, "hidden": [128, 64], "bilinear_type": "field_each"}},
    {"name": "dlrm", "options": {"embed_dim": 16, "top": [128, 64], "bottom": [64]}},
    {"name": "fgn", "label": "fgn(deepfm)",
     "options": {"base": "deepfm", "base_config": {"embed_dim": 16, "hidden": [128, 64], "dense_fields": True}}},
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=200_000, help="impressions drawn (70/10/20 split)")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--models", default=None, help="comma-separated labels (default: all)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = ap.parse_args(argv)

    import torch

    from adsim.config import parse_config
    from adsim.models.compare import CompareConfig, compare_models, format_table

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = parse_config({
            "name": "ctr_zoo_benchmark",
            "data": {
                "source": {"type": "synthetic", "n_rows": args.rows, "n_users": max(1000, args.rows // 6),
                           "n_ads": 24, "n_dense": 8, "base_ctr": 0.08, "seed": 0,
                           "sparse_fields": [{"name": "region", "vocab_size": 12, "zipf": 0.8},
                                             {"name": "device", "vocab_size": 4, "zipf": 0.5},
                                             {"name": "segment", "vocab_size": 16, "zipf": 1.0}]},
                "split": {"val_fraction": 0.1, "test_fraction": 0.2, "seed": 0},
                "processed_dir": f"{tmp}/processed",
            },
            "models": MODELS,
            "train": {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                      "weight_decay": 1e-6, "t0_epochs": args.epochs, "patience": 2, "seed": 0,
                      "num_threads": args.threads, "progress": False, "tensorboard": False,
                      "device": args.device},
        }, CompareConfig)
        only = [s.strip() for s in args.models.split(",")] if args.models else None
        t0 = time.perf_counter()
        res = compare_models(cfg, only=only, write=False)
        wall = time.perf_counter() - t0
    rows = res.rows
    bayes = next(r for r in rows if r["name"] == "truth")
    lr_row = next((r for r in rows if r["model"] == "lr"), None)
    print(f"CTR zoo on the synthetic benchmark: {args.rows:,} rows (70/10/20 split), {args.epochs} epochs,"
          f" batch {args.batch_size}, lr {args.lr}, {args.threads} thread(s),"
          f" torch {torch.__version__}\n")
    print(format_table(rows))
    print("\nAUC gap to the Bayes-optimal ceiling (and, for speed, ratio to LR):")
    for r in rows:
        if r["name"] == "truth":
            continue
        gap = bayes["auc"] - r["auc"]
        speed = (f"train {r['train_rows_per_s'] / lr_row['train_rows_per_s']:.2f}x LR, infer"
                 f" {r['infer_rows_per_s'] / lr_row['infer_rows_per_s']:.2f}x LR") if lr_row else ""
        print(f"  {r['model']:<18} gap {gap:+.4f}   {speed}")
    print(f"\ntotal {wall:.0f}s. Reproduce: PYTHONPATH=. python benchmarks/ctr_zoo.py --rows {args.rows}"
          f" --batch-size {args.batch_size} --lr {args.lr}"
          f" --epochs {args.epochs} --threads {args.threads}" + (f" --models {args.models}" if args.models else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
