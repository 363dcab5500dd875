"""CTR training throughput: adsim's DeepFM trainer vs DeepCTR-Torch, side by side.

Criteo-shaped synthetic arrays — 13 dense + 26 sparse features, vocabularies log-spaced from
10 to 10,000, labels from a known logistic model — are trained for ``--epochs`` epochs at batch
4,096 with embedding dim 4 and 16, on one thread and on all threads. Reported per setting:
training samples/s (the optimisation loop only), the data-loading time measured separately
(arrays → tensors / DeepCTR input dicts), and test AUC. When DeepCTR-Torch is importable — in this
interpreter, or in the interpreter given by ``--deepctr-python`` / ``$DEEPCTR_PYTHON`` (default
``/tmp/deepctr-venv/bin/python`` when it exists) — it trains the same arrays with library defaults
(DNN 256-128, Adam lr 1e-3) and the table prints the speed ratio.

Reproduce::

    python -m venv /tmp/deepctr-venv && /tmp/deepctr-venv/bin/pip install torch==2.13.0 \\
        && /tmp/deepctr-venv/bin/pip install deepctr-torch requests pandas
    PYTHONPATH=. python benchmarks/ctr_training.py --rows 400000

DeepCTR-Torch is never a dependency of adsim; it is only run when present. Rates are given in
wall time and in CPU time of the training process (robust to other jobs on a shared machine).
``$ADSIM_BENCH_OPTS`` (JSON) passes extra DeepFM options on the adsim side for experiments.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_DENSE, N_SPARSE, BATCH = 13, 26, 4096
VOCABS = np.geomspace(10, 10_000, N_SPARSE).round().astype(int)


def make_arrays(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Criteo-shaped rows from a known logistic click model (Zipf-ish categories)."""
    rng = np.random.default_rng(seed)
    dense = rng.standard_normal((n, N_DENSE)).astype(np.float32)
    u = rng.random((n, N_SPARSE))
    sparse = np.minimum((VOCABS * u ** 2.5).astype(np.int64), VOCABS - 1)  # skewed popularity
    z = -2.0 + dense @ (0.3 * rng.standard_normal(N_DENSE))
    for j, v in enumerate(VOCABS):
        z += (0.4 * rng.standard_normal(v))[sparse[:, j]]
    z += 0.5 * np.tanh(dense[:, 0] * dense[:, 1])
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.float32)
    return {"dense": dense, "sparse": sparse, "y": y}


def run_adsim(arrays: dict[str, np.ndarray], n_train: int, dim: int, threads: int, epochs: int) -> dict:
    import torch

    from adsim.models.config import TrainConfig
    from adsim.models.data import CTRData
    from adsim.models.metrics import auc
    from adsim.models.schema import ModelSchema, SparseField
    from adsim.models.train import Trainer, to_tensors
    from adsim.models.zoo import build_model

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    d, s, y = arrays["dense"], arrays["sparse"], arrays["y"][:, None]
    train = CTRData(d[:n_train], s[:n_train], y[:n_train])
    test = CTRData(d[n_train:], s[n_train:], y[n_train:])
    to_tensors(train, torch.device("cpu"))
    load_s = time.perf_counter() - t0
    schema = ModelSchema(dense=tuple(f"I{i}" for i in range(N_DENSE)),
                         sparse=tuple(SparseField(f"C{j}", int(v)) for j, v in enumerate(VOCABS)))
    torch.manual_seed(0)
    model = build_model("deepfm", schema, embed_dim=dim, hidden=(256, 128), **json.loads(os.environ.get("ADSIM_BENCH_OPTS", "{}")))
    # the same algorithm as DeepCTR-Torch's defaults: Adam(W) lr 1e-3, constant, no clipping
    cfg = TrainConfig(epochs=epochs, batch_size=BATCH, lr=1e-3, weight_decay=0.0, progress=False,
                      scheduler="none", grad_clip=None, patience=epochs, num_threads=threads,
                      tensorboard=False)
    small_val = CTRData(test.dense[:BATCH], test.sparse[:BATCH], test.labels[:BATCH])
    # warm-up (imports of sklearn/tqdm, allocator) outside the timed fit, as DeepCTR's imports are
    Trainer(build_model("deepfm", schema, embed_dim=dim, hidden=(8,)), cfg.model_copy(update={"epochs": 1})).fit(
        small_val, small_val)
    cpu0 = time.process_time()
    res = Trainer(model, cfg).fit(train, small_val)
    cpu = time.process_time() - cpu0
    seconds = sum(h["seconds"] for h in res.history)
    p = Trainer.predict_proba(model, test)[:, 0]
    return {"samples_per_s": n_train * epochs / seconds, "cpu_samples_per_s": n_train * epochs / cpu,
            "load_s": load_s, "auc": auc(test.labels[:, 0], p)}


DEEPCTR_SCRIPT = r"""
import json, sys, time
import numpy as np, torch
from deepctr_torch.inputs import DenseFeat, SparseFeat
from deepctr_torch.models import DeepFM
from sklearn.metrics import roc_auc_score

path, n_train, dim, threads, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
a = np.load(path)
dense, sparse, y, vocabs = a["dense"], a["sparse"], a["y"], a["vocabs"]
t0 = time.perf_counter()
feats = [SparseFeat(f"C{j}", int(v), embedding_dim=dim) for j, v in enumerate(vocabs)] + \
        [DenseFeat(f"I{i}", 1) for i in range(dense.shape[1])]
def inputs(lo, hi):
    x = {f"C{j}": sparse[lo:hi, j] for j in range(sparse.shape[1])}
    x.update({f"I{i}": dense[lo:hi, i] for i in range(dense.shape[1])})
    return x
x_train, x_test = inputs(0, n_train), inputs(n_train, len(y))
load_s = time.perf_counter() - t0
torch.manual_seed(0)
model = DeepFM(feats, feats, task="binary", device="cpu")
model.compile("adam", "binary_crossentropy")
t0, c0 = time.perf_counter(), time.process_time()
model.fit(x_train, y[:n_train], batch_size=4096, epochs=epochs, verbose=0)
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
p = model.predict(x_test, batch_size=65536).reshape(-1)
print(json.dumps({"samples_per_s": n_train * epochs / seconds, "cpu_samples_per_s": n_train * epochs / cpu,
                  "load_s": load_s,
                  "auc": float(roc_auc_score(y[n_train:], p))}))
"""


def deepctr_python(arg: str | None) -> str | None:
    if arg:
        return arg
    if os.environ.get("DEEPCTR_PYTHON"):
        return os.environ["DEEPCTR_PYTHON"]
    try:
        import deepctr_torch  # noqa: F401

        return sys.executable
    except ImportError:
        p = Path("/tmp/deepctr-venv/bin/python")
        return str(p) if p.exists() else None


def run_deepctr(python: str, npz: str, n_train: int, dim: int, threads: int, epochs: int) -> dict | None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([python, "-c", DEEPCTR_SCRIPT, npz, str(n_train), str(dim), str(threads), str(epochs)],
                         capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        print(f"DeepCTR-Torch run failed:\n{out.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def _line(dim: int, th: int, a: dict, b: dict | None) -> str:
    out = (f"dim {dim:>2} threads {th}: adsim {a['samples_per_s']:>9,.0f}/s wall, {a['cpu_samples_per_s']:>9,.0f}/s"
           f" CPU (load {a['load_s']:.2f}s, AUC {a['auc']:.4f})")
    if b:
        out += (f" | DeepCTR-Torch {b['samples_per_s']:>9,.0f}/s wall, {b['cpu_samples_per_s']:>9,.0f}/s CPU"
                f" (load {b['load_s']:.2f}s, AUC {b['auc']:.4f}) | ratio"
                f" {a['samples_per_s'] / b['samples_per_s']:.2f}x wall, {a['cpu_samples_per_s'] / b['cpu_samples_per_s']:.2f}x CPU")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=400_000, help="training rows (plus 25%% test rows)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--dims", type=int, nargs="+", default=[4, 16])
    ap.add_argument("--threads", type=int, nargs="+", default=None, help="default: 1 and all")
    ap.add_argument("--deepctr-python", default=None)
    ap.add_argument("--no-deepctr", action="store_true")
    args = ap.parse_args()
    import torch

    all_threads = torch.get_num_threads()
    threads = args.threads or sorted({1, all_threads})
    n_train = args.rows
    t0 = time.perf_counter()
    arrays = make_arrays(n_train + n_train // 4)
    print(f"generated {len(arrays['y'])} rows in {time.perf_counter() - t0:.1f}s "
          f"(13 dense + 26 sparse, vocab 10..10000, CTR {arrays['y'].mean():.3f}); batch {BATCH},"
          f" {args.epochs} epoch(s); torch {torch.__version__}, {os.cpu_count()} CPUs")
    py = None if args.no_deepctr else deepctr_python(args.deepctr_python)
    npz = None
    if py:
        npz = tempfile.NamedTemporaryFile(suffix=".npz", delete=False).name
        np.savez(npz, dense=arrays["dense"], sparse=arrays["sparse"], y=arrays["y"], vocabs=VOCABS)
    else:
        print("DeepCTR-Torch not found: adsim only (see the docstring to install it in a scratch venv)")
    rows = []
    for dim in args.dims:
        for th in threads:
            a = run_adsim(arrays, n_train, dim, th, args.epochs)
            b = run_deepctr(py, npz, n_train, dim, th, args.epochs) if py else None
            rows.append((dim, th, a, b))
            print(_line(dim, th, a, b), flush=True)
    if npz:
        os.unlink(npz)
    print("\n| emb dim | threads | adsim samples/s wall (CPU-time) | DeepCTR-Torch samples/s wall (CPU-time) |"
          " ratio wall (CPU-time) | adsim AUC | DeepCTR AUC |")
    print("|---|---|---|---|---|---|---|")
    for dim, th, a, b in rows:
        if b:
            print(f"| {dim} | {th} | {a['samples_per_s']:,.0f} ({a['cpu_samples_per_s']:,.0f}) |"
                  f" {b['samples_per_s']:,.0f} ({b['cpu_samples_per_s']:,.0f}) |"
                  f" {a['samples_per_s'] / b['samples_per_s']:.2f}x"
                  f" ({a['cpu_samples_per_s'] / b['cpu_samples_per_s']:.2f}x) | {a['auc']:.4f} | {b['auc']:.4f} |")
        else:
            print(f"| {dim} | {th} | {a['samples_per_s']:,.0f} ({a['cpu_samples_per_s']:,.0f}) | - | - |"
                  f" {a['auc']:.4f} | - |")
    print("\nCPU-time rates (samples per CPU-second of the process) are robust to other load on a shared"
          " machine;\nfor one thread they equal the wall-clock rate of an idle machine.")
    print(f"\nreproduce: PYTHONPATH=. python benchmarks/ctr_training.py --rows {n_train} --epochs {args.epochs}")


if __name__ == "__main__":
    main()
