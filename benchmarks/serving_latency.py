"""Serving latency: in-process and over HTTP (loopback), PyTorch vs ONNX Runtime; a bounded load
test; the per-stage latency budget; inference variants; INT8 compression; distillation.

Run (from the repository root)::

    python benchmarks/serving_latency.py                 # everything, ~5-8 min on 2 busy cores
    python benchmarks/serving_latency.py --quick         # fewer repetitions, no distillation

It trains (once, cached under ``--work``) a DeepFM run (embedding 32, MLP 256-128, dense FM fields) on synthetic data with 8 dense and 6 sparse
user fields (vocabularies 4…10,000) plus ``ad_id`` (24 ads), then measures:

1. **in-process** — ``PredictRequest.model_validate_json`` + ``PredictionService.predict_json``
   (what a handler does minus HTTP), p50/p95/p99 for 1, 100, 1,000 candidates, torch vs onnx;
2. **over HTTP** — ``adsim serve`` in a subprocess on 127.0.0.1, a keep-alive ``http.client``
   connection, the same percentiles;
3. a **bounded load test** — ``--load-clients`` client threads for ``--load-seconds`` at 100
   candidates: requests/s held, errors (must be 0), latency under load;
4. the **latency budget** — median cost of each stage at 100 candidates (request parsing, feature
   lookup, preprocessing, model, calibration, serialisation; HTTP overhead = a ``GET /healthz``
   round trip), their sum as the predicted end-to-end latency, beside the measured one;
5. forward-pass latency of torch fp32, bf16 autocast, ``torch.compile`` and ONNX Runtime;
6. INT8 embedding / dynamic-MLP quantisation (test AUC change, size); 7. distillation.

All timings share one machine; ``os.getloadavg()`` is printed because other work on the machine
moves the tails. Results go to ``<work>/serving_latency.json`` and a markdown table to stdout.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SPARSE = [("region", 20, 0.8), ("device", 4, 0.5), ("segment", 50, 1.0), ("site", 1000, 1.1),
          ("app", 5000, 1.1), ("geo", 10000, 1.0)]
USER = [f"x{i}" for i in range(8)] + [s[0] for s in SPARSE]
SIZES = (1, 100, 1000)


def pct(ts: list[float]) -> dict[str, float]:
    a = np.asarray(ts) * 1e3
    return {"p10": float(np.percentile(a, 10)), "p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "p99": float(np.percentile(a, 99)), "n": len(a)}


def train_bench_run(work: Path, rows: int, name: str, options: dict, epochs: int) -> Path:
    from adsim.config import parse_config
    from adsim.models.config import RunConfig
    from adsim.models.run import train_run

    out = work / name
    if (out / "checkpoint.pt").exists():
        return out
    cfg = parse_config({
        "name": name,
        "data": {"source": {"type": "synthetic", "n_rows": rows, "n_users": 50_000, "n_ads": 24, "n_dense": 8,
                            "sparse_fields": [{"name": n, "vocab_size": v, "zipf": z} for n, v, z in SPARSE],
                            "seed": 0},
                 "processed_dir": str(work / "processed")},
        "model": {"name": "deepfm", "options": options},
        "train": {"epochs": epochs, "batch_size": 2048, "lr": 0.003, "progress": False, "tensorboard": False,
                  "seed": 0, "checkpoint_every": 10_000},
        "calibration": {"method": "isotonic"},
    }, RunConfig, source="benchmark")
    t0 = time.perf_counter()
    train_run(cfg, out)
    print(f"trained {out} in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def request_bodies(run: Path, rng: np.random.Generator, k: int) -> dict[int, list[bytes]]:
    """k request bodies per size: a user (8 dense + 6 sparse) × n candidates (ad_id)."""
    out: dict[int, list[bytes]] = {}
    for n in SIZES:
        bodies = []
        for i in range(k):
            user = {f"x{j}": float(rng.standard_normal()) for j in range(8)}
            user.update({name: int(rng.integers(0, v)) for name, v, _ in SPARSE})
            cands = [{"id": int(a), "features": {"ad_id": int(a)}} for a in rng.integers(0, 24, n)]
            bodies.append(json.dumps({"user_id": f"u{i}", "user": user, "candidates": cands}).encode())
        out[n] = bodies
    return out


def in_process(run: Path, backend: str, bodies: dict[int, list[bytes]], reps: int) -> tuple[dict, dict]:
    from adsim.serving.config import ServeConfig
    from adsim.serving.registry import ModelRegistry
    from adsim.serving.schemas import PredictRequest
    from adsim.serving.service import PredictionService

    cfg = ServeConfig(models=[{"path": str(run), "version": "bench"}], backend=backend)
    svc = PredictionService(ModelRegistry.from_config(cfg))
    lat, stages = {}, {}
    for n, bs in bodies.items():
        ts, st = [], {k: [] for k in ("parse", "feature_lookup", "preprocess", "model", "calibration", "serialisation")}
        for i in range(reps + 20):
            body = bs[i % len(bs)]
            timings: dict[str, float] = {}
            t0 = time.perf_counter()
            req = PredictRequest.model_validate_json(body)
            t1 = time.perf_counter()
            svc.predict_json(req, timings)
            t2 = time.perf_counter()
            if i >= 20:  # warm-up excluded
                ts.append(t2 - t0)
                st["parse"].append(t1 - t0)
                for k, v in timings.items():
                    st[k].append(v)
        lat[n] = pct(ts)
        stages[n] = {k: float(np.median(v)) * 1e3 for k, v in st.items()}
    return lat, stages


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, run: Path, backend: str) -> None:
        self.port = free_port()
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "adsim.cli", "serve", str(run), "--backend", backend, "--host", "127.0.0.1",
             "--port", str(self.port), "--threads", "1"], env=env, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not start: {self.proc.stderr.read().decode()[-2000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def http_latency(port: int, bodies: dict[int, list[bytes]], reps: int) -> tuple[dict, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    hdr = {"Content-Type": "application/json"}
    out = {}
    for n, bs in bodies.items():
        ts = []
        for i in range(reps + 20):
            t0 = time.perf_counter()
            conn.request("POST", "/v1/predict", body=bs[i % len(bs)], headers=hdr)
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError(f"HTTP {r.status}")
            if i >= 20:
                ts.append(time.perf_counter() - t0)
        out[n] = pct(ts)
    ts = []
    for i in range(reps + 20):
        t0 = time.perf_counter()
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        if i >= 20:
            ts.append(time.perf_counter() - t0)
    return out, pct(ts)


def load_test(port: int, bodies: list[bytes], clients: int, seconds: float) -> dict:
    stop = time.perf_counter() + seconds
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, i = [], k
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/v1/predict", body=bodies[i % len(bodies)],
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
            except OSError:
                ok = False
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            mine.append(time.perf_counter() - t0)
            if not ok:
                with lock:
                    errors[0] += 1
            i += clients
        with lock:
            lat.extend(mine)

    t0 = time.perf_counter()
    th = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    wall = time.perf_counter() - t0
    return {"clients": clients, "seconds": wall, "requests": len(lat), "errors": errors[0],
            "rps": len(lat) / wall, **{f"lat_{k}": v for k, v in pct(lat).items() if k != "n"}}


def variants_bench(run: Path, reps: int, compile_: bool) -> dict:
    import torch

    from adsim.models.checkpoint import load_run
    from adsim.models.export import inference_variants, random_inputs

    torch.set_num_threads(1)
    r = load_run(run)
    which = ("torch fp32", "torch bf16", "onnxruntime") + (("torch.compile",) if compile_ else ())
    t0 = time.perf_counter()
    fns = inference_variants(r.model, r.schema, which)
    out: dict = {"setup_s": time.perf_counter() - t0}
    rng = np.random.default_rng(0)
    for name, fn in fns.items():
        row = {}
        for n in SIZES:
            x = random_inputs(r.schema, n, rng)
            t1 = time.perf_counter()
            fn(x)  # warm-up (compiles for torch.compile)
            first = time.perf_counter() - t1
            ts = []
            for _ in range(reps):
                t1 = time.perf_counter()
                fn(x)
                ts.append(time.perf_counter() - t1)
            row[n] = {"median_ms": float(np.median(ts)) * 1e3, "p99_ms": float(np.percentile(ts, 99)) * 1e3,
                      "first_call_s": first}
        out[name] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "bench_serving")
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--reps", type=int, default=400)
    ap.add_argument("--load-clients", type=int, default=4)
    ap.add_argument("--load-seconds", type=float, default=10.0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--no-distill", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.reps, args.load_seconds, args.no_distill = 100, 4.0, True
    import torch

    torch.set_num_threads(1)
    work = args.work.resolve()
    res: dict = {"loadavg_start": os.getloadavg(), "cpus": os.cpu_count(), "command": " ".join(sys.argv)}
    run = train_bench_run(work, args.rows, "large", {"embed_dim": 32, "hidden": [256, 128], "dense_fields": True}, 3)
    from adsim.models.export import export_run

    res["onnx_export"] = export_run(run)
    bodies = request_bodies(run, np.random.default_rng(1), 50)
    for backend in ("torch", "onnx"):
        lat, stages = in_process(run, backend, bodies, args.reps)
        res[f"inproc_{backend}"], res[f"stages_{backend}"] = lat, stages
        srv = Server(run, backend)
        try:
            h, health = http_latency(srv.port, bodies, args.reps)
            res[f"http_{backend}"], res[f"healthz_{backend}"] = h, health
            res[f"load_{backend}"] = load_test(srv.port, bodies[100], args.load_clients, args.load_seconds)
        finally:
            srv.stop()
        print(f"{backend}: done (loadavg {os.getloadavg()[0]:.1f})", flush=True)
    res["variants"] = variants_bench(run, max(args.reps // 2, 50), not args.no_compile)
    from adsim.models.export import compression_report

    res["compression"] = compression_report(run, repeat=max(args.reps // 4, 20))
    if not args.no_distill:
        from adsim.models.distill import distill

        cached = work / "small" / "distill.json"
        res["distill"] = (json.loads(cached.read_text()) if cached.exists() else
                          distill(run, work / "small", {"embed_dim": 8, "hidden": [32], "dense_fields": True},
                                  train_overrides={"epochs": 2}))
    res["loadavg_end"] = os.getloadavg()
    from adsim._io import write_json

    write_json(work / "serving_latency.json", json.loads(json.dumps(res, default=float)))
    print(report(res))


def report(res: dict) -> str:
    L = [f"machine: {res['cpus']} CPUs, load average {res['loadavg_start'][0]:.1f} at start,"
         f" {res['loadavg_end'][0]:.1f} at end; command: {res['command']}", ""]
    L += ["| path | backend | candidates | p10 ms | p50 ms | p95 ms | p99 ms |", "|---|---|---:|---:|---:|---:|---:|"]
    for where in ("inproc", "http"):
        for b in ("torch", "onnx"):
            for n, r in res[f"{where}_{b}"].items():
                L.append(f"| {'in-process' if where == 'inproc' else 'HTTP loopback'} | {b} | {n} |"
                         f" {r['p10']:.2f} | {r['p50']:.2f} | {r['p95']:.2f} | {r['p99']:.2f} |")
    L += ["", "| load test | clients | seconds | requests | errors | req/s | p50 ms | p99 ms |",
          "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for b in ("torch", "onnx"):
        r = res[f"load_{b}"]
        L.append(f"| {b}, 100 candidates | {r['clients']} | {r['seconds']:.1f} | {r['requests']} | {r['errors']} |"
                 f" {r['rps']:.0f} | {r['lat_p50']:.2f} | {r['lat_p99']:.2f} |")
    for b in ("torch", "onnx"):
        st = res[f"stages_{b}"][100]
        http_over = res[f"healthz_{b}"]["p50"]
        pred = sum(st.values()) + http_over
        L += ["", f"latency budget, 100 candidates, {b} (medians, ms):", "",
              "| stage | predicted ms |", "|---|---:|"]
        for k, v in st.items():
            L.append(f"| {k} | {v:.3f} |")
        L.append(f"| HTTP + framework (GET /healthz round trip) | {http_over:.3f} |")
        L.append(f"| **predicted end-to-end** | **{pred:.2f}** |")
        ip, hp = res[f"inproc_{b}"][100], res[f"http_{b}"][100]
        L.append(f"| measured in-process p10 / p50 / p99 | {ip['p10']:.2f} / {ip['p50']:.2f} / {ip['p99']:.2f} |")
        L.append(f"| measured HTTP p10 / p50 / p99 | {hp['p10']:.2f} / {hp['p50']:.2f} / {hp['p99']:.2f} |")
    L += ["", "| forward pass (1 thread) | 1 row ms | 100 rows ms | 1000 rows ms |", "|---|---:|---:|---:|"]
    for name, row in res["variants"].items():
        if name == "setup_s":
            continue
        L.append(f"| {name} | " + " | ".join(f"{row[n]['median_ms']:.3f}" for n in SIZES) + " |")
    L += ["", "| compression | test AUC | ΔAUC | weights bytes | ms / 100 rows |", "|---|---:|---:|---:|---:|"]
    for r in res["compression"]:
        L.append(f"| {r['variant']} | {r['auc']:.5f} | {r['delta_auc']:+.5f} | {r['weights_bytes']:,} |"
                 f" {r['latency_ms_b100']:.3f} |")
    if "distill" in res:
        d = res["distill"]
        L += ["", "| distillation | test AUC | parameters | ms / 100 rows | ms / 1000 rows |", "|---|---:|---:|---:|---:|"]
        for name, r in d["models"].items():
            L.append(f"| {name} | {r['test_auc']:.5f} | {r['parameters']:,} | {r['latency_ms_b100']:.3f} |"
                     f" {r['latency_ms_b1000']:.3f} |")
        L.append(f"\nspeed-up of the distilled student: {d['speedup_b100']:.2f}× (100 rows),"
                 f" {d['speedup_b1000']:.2f}× (1000 rows); ΔAUC vs teacher {d['delta_auc_vs_teacher']:+.5f}")
    return "\n".join(L)


if __name__ == "__main__":
    main()
