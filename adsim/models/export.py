"""Export and compression of trained CTR models: ONNX, INT8, and the inference variants we measure.

* :func:`export_onnx` — the model as an ONNX graph ``(dense, sparse[, seq]) → logits (B, T)`` with
  a dynamic batch axis (TorchScript exporter, opset 17; ``torch.onnx.export(dynamo=False)`` takes
  0.3 s where the dynamo exporter takes ~10 s for the same graph). :func:`check_onnx_parity`
  runs it in ONNX Runtime beside PyTorch on random inputs; :func:`export_run` writes
  ``RUN_DIR/model.onnx`` plus ``model.onnx.json`` (checkpoint SHA-256, parity) only when the
  max abs difference of the probabilities is ≤ 1e-5.
* :func:`quantize_embeddings_int8` — every :class:`~adsim.models.layers.FieldEmbedding` table
  stored as int8 with one float scale per row (symmetric, ``w ≈ s_r·q``, ``s_r = max_j |w_rj| / 127``;
  Guan et al. 2019, "Post-training 4-bit quantization on embedding tables"), 4× smaller.
* :func:`quantize_mlp_dynamic` — ``torch.ao.quantization.quantize_dynamic`` of every ``nn.Linear``
  (int8 weights, activations quantised on the fly; Jacob et al. 2018).
* :func:`compression_report` — test AUC / log-loss of fp32, int8 embeddings, dynamic-int8 MLP and
  both, with the size of the weights and the change in AUC.
* :func:`inference_variants` — callables for eager fp32, bf16 autocast, ``torch.compile`` and
  ONNX Runtime, all taking numpy arrays, for the serving benchmark.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from adsim._io import write_json, write_with
from adsim.errors import DataError
from adsim.models.layers import FieldEmbedding
from adsim.models.schema import ModelSchema

__all__ = [
    "LogitsModule",
    "input_names",
    "export_onnx",
    "onnx_session",
    "check_onnx_parity",
    "export_run",
    "load_onnx_for_run",
    "file_sha256",
    "Int8FieldEmbedding",
    "quantize_embeddings_int8",
    "quantize_mlp_dynamic",
    "weights_nbytes",
    "compression_report",
    "inference_variants",
    "random_inputs",
]

OPSET = 17
PARITY_TOL = 1e-5


class LogitsModule(nn.Module):
    """``(dense, sparse[, seq]) → logits (B, T)``: a zoo model with positional tensor inputs."""

    def __init__(self, model: nn.Module, schema: ModelSchema) -> None:
        super().__init__()
        self.model = model
        self.has_dense = schema.n_dense > 0
        self.has_seq = len(schema.sequences) > 0

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        names = input_names_flags(self.has_dense, self.has_seq)
        batch = dict(zip(names, xs))
        if not self.has_dense:
            batch["dense"] = torch.zeros(batch["sparse"].shape[0], 0)
        out = self.model(batch)
        return out.reshape(batch["sparse"].shape[0], -1)


def input_names_flags(has_dense: bool, has_seq: bool) -> list[str]:
    return [*(["dense"] if has_dense else []), "sparse", *(["seq"] if has_seq else [])]


def input_names(schema: ModelSchema) -> list[str]:
    """Names of the ONNX graph inputs for ``schema`` (``dense`` only when there are dense features)."""
    return input_names_flags(schema.n_dense > 0, len(schema.sequences) > 0)


def random_inputs(schema: ModelSchema, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random valid model inputs (ids in range, dense ~ N(0, 1)) for parity checks and benchmarks."""
    out: dict[str, np.ndarray] = {}
    if schema.n_dense:
        out["dense"] = rng.standard_normal((n, schema.n_dense)).astype(np.float32)
    vocab = np.array([f.vocab_size for f in schema.sparse], dtype=np.int64)
    out["sparse"] = (rng.random((n, len(vocab))) * vocab).astype(np.int64) if len(vocab) else np.zeros((n, 0), np.int64)
    if schema.sequences:
        L = schema.sequences[0].max_len
        v = np.array([s.vocab_size for s in schema.sequences], dtype=np.int64)[None, :, None]
        out["seq"] = (rng.random((n, len(schema.sequences), L)) * v).astype(np.int64)
    return out


def export_onnx(model: nn.Module, schema: ModelSchema, path: str | Path | None = None) -> bytes:
    """The model as ONNX bytes (also written atomically to ``path`` when given)."""
    model = model.eval()
    wrapper = LogitsModule(model, schema).eval()
    names = input_names(schema)
    ex = random_inputs(schema, 4, np.random.default_rng(0))
    args = tuple(torch.from_numpy(ex[k]) for k in names)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper, args, buf, input_names=names, output_names=["logits"], dynamo=False,
            dynamic_axes={**{k: {0: "batch"} for k in names}, "logits": {0: "batch"}},
            opset_version=OPSET,
        )
    data = buf.getvalue()
    if path is not None:
        write_with(path, lambda tmp: tmp.write_bytes(data))
    return data


def onnx_session(model: bytes | str | Path, threads: int = 1) -> Any:
    """An ONNX Runtime CPU ``InferenceSession`` with ``threads`` intra-op threads."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


@torch.inference_mode()
def torch_logits(model: nn.Module, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """``(n, T)`` float32 logits of a zoo model for numpy inputs."""
    batch = {k: torch.from_numpy(v) for k, v in inputs.items()}
    if "dense" not in batch:
        batch["dense"] = torch.zeros(batch["sparse"].shape[0], 0)
    out = model(batch)
    return out.float().reshape(batch["sparse"].shape[0], -1).numpy()


def check_onnx_parity(model: nn.Module, schema: ModelSchema, session: Any, n: int = 2048,
                      seed: int = 0) -> dict[str, float]:
    """Max abs difference of logits and probabilities, ONNX Runtime vs PyTorch, on random inputs
    (batches of 1, 7 and ``n``)."""
    rng = np.random.default_rng(seed)
    worst_z = worst_p = 0.0
    for size in (1, 7, n):
        x = random_inputs(schema, size, rng)
        z_t = torch_logits(model, x)
        z_o = session.run(None, {k: x[k] for k in input_names(schema)})[0]
        worst_z = max(worst_z, float(np.max(np.abs(z_t - z_o))))
        sig = lambda z: 1.0 / (1.0 + np.exp(-z.astype(np.float64)))  # noqa: E731
        worst_p = max(worst_p, float(np.max(np.abs(sig(z_t) - sig(z_o)))))
    return {"max_abs_diff_logits": worst_z, "max_abs_diff_proba": worst_p, "n_checked": n + 8}


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_run(run_dir: str | Path, out: str | Path | None = None, tol: float = PARITY_TOL) -> dict[str, Any]:
    """Export a run folder's model to ``model.onnx`` (default inside the run folder) after a
    parity check in ONNX Runtime; returns the metadata written to ``model.onnx.json``."""
    from adsim.models.checkpoint import load_run

    run = load_run(run_dir)
    path = Path(out) if out is not None else Path(run_dir) / "model.onnx"
    data = export_onnx(run.model, run.schema)
    parity = check_onnx_parity(run.model, run.schema, onnx_session(data))
    if parity["max_abs_diff_proba"] > tol:
        raise DataError(
            f"ONNX export of {run_dir} differs from PyTorch by {parity['max_abs_diff_proba']:.3g} > {tol:g};"
            " not written (the model uses an operator the exporter translates inexactly)"
        )
    write_with(path, lambda tmp: tmp.write_bytes(data))
    meta = {"format": "adsim.onnx/1", "checkpoint_sha256": file_sha256(Path(run_dir) / "checkpoint.pt"),
            "onnx_sha256": hashlib.sha256(data).hexdigest(),
            "opset": OPSET, "inputs": input_names(run.schema), "tasks": list(run.schema.tasks), **parity}
    write_json(path.with_name(path.name + ".json"), meta)  # last: an export killed before it is ignored
    return meta


def load_onnx_for_run(run: Any) -> tuple[bytes, str]:
    """The run's ONNX graph: ``model.onnx`` when its ``model.onnx.json`` says it was exported from
    this very checkpoint and the graph's SHA-256 matches; otherwise (no export, or an export killed
    before its ``.json``) exported now in memory. Returns ``(onnx bytes, "file" | "exported")``.

    A ``model.onnx`` whose record names another checkpoint, or whose bytes changed since export
    (e.g. copied from another run), is refused with a :class:`DataError`, never served.
    """
    d = Path(run.path)
    f, meta_f = d / "model.onnx", d / "model.onnx.json"
    if not (f.is_file() and meta_f.is_file()):
        return export_onnx(run.model, run.schema), "exported"
    try:
        meta = json.loads(meta_f.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"run folder {d}: model.onnx.json is damaged ({type(exc).__name__}); re-export with"
                        f" `adsim export {d}` or delete model.onnx*") from None
    data = f.read_bytes()
    if not isinstance(meta, dict) or meta.get("checkpoint_sha256") != file_sha256(d / "checkpoint.pt"):
        raise DataError(f"run folder {d}: model.onnx was exported from another checkpoint (model.onnx.json"
                        f" does not name this run's checkpoint.pt); re-export with `adsim export {d}`")
    if meta.get("onnx_sha256") != hashlib.sha256(data).hexdigest():
        raise DataError(f"run folder {d}: model.onnx does not match model.onnx.json (replaced or edited since"
                        f" export); re-export with `adsim export {d}`")
    return data, "file"


# ------------------------------------------------------------------------------ quantisation
class Int8FieldEmbedding(nn.Module):
    """A :class:`FieldEmbedding` with its table stored as int8 plus one float32 scale per row.

    ``w_r ≈ s_r · q_r`` with ``s_r = max_j |w_rj| / 127`` and ``q_r = round(w_r / s_r)`` (symmetric,
    per row); a lookup gathers the int8 rows and their scales and multiplies: ``(B, F) → (B, F, D)``.
    """

    def __init__(self, emb: FieldEmbedding) -> None:
        super().__init__()
        w = emb.table.weight.detach().float()
        scale = w.abs().amax(dim=1).clamp_min(1e-12) / 127.0
        self.register_buffer("q", torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale.to(torch.float32))
        self.register_buffer("offsets", emb.offsets.clone(), persistent=False)
        self.n_fields, self.dim = emb.n_fields, emb.dim

    def forward(self, sparse: torch.Tensor) -> torch.Tensor:
        idx = sparse + self.offsets  # (B, F)
        return self.q[idx].to(torch.float32) * self.scale[idx].unsqueeze(-1)  # (B, F, D)


def quantize_embeddings_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose :class:`FieldEmbedding` modules are :class:`Int8FieldEmbedding`."""
    out = copy.deepcopy(model).eval()
    for _name, mod in list(out.named_modules()):
        for child_name, child in list(mod.named_children()):
            if isinstance(child, FieldEmbedding):
                setattr(mod, child_name, Int8FieldEmbedding(child))
    return out


def quantize_mlp_dynamic(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear`` dynamically quantised to int8."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8)


def weights_nbytes(model: nn.Module) -> int:
    """Bytes of the model's weights (parameters, buffers and packed quantised linear weights)."""
    total = sum(t.numel() * t.element_size() for t in model.state_dict().values() if torch.is_tensor(t))
    for m in model.modules():
        if callable(getattr(m, "weight", None)) and hasattr(m, "_packed_params"):  # dynamic int8 Linear
            w, b = m.weight(), m.bias()
            total += w.int_repr().numel() + 8 + (b.numel() * b.element_size() if b is not None else 0)
    return int(total)


def _test_split(run: Any) -> Any:
    import yaml

    from adsim.models.data import load_split

    cfg = yaml.safe_load((Path(run.path) / "config.yaml").read_text(encoding="utf-8"))
    data, _ = load_split(cfg["data"]["processed_dir"], "test")
    return data


def compression_report(run_dir: str | Path, repeat: int = 20, batch: int = 100) -> list[dict[str, Any]]:
    """Test AUC/log-loss, weight size and forward latency (batch ``batch``) of fp32, int8
    embeddings, dynamic-int8 MLP and both; ``delta_auc`` is relative to fp32."""
    from adsim.models.checkpoint import load_run
    from adsim.models.metrics import auc, log_loss

    run = load_run(run_dir)
    test = _test_split(run)
    inputs = {"dense": test.dense, "sparse": test.sparse}
    if test.seq is not None:
        inputs["seq"] = test.seq
    y = test.labels[:, 0]
    variants = {
        "fp32": run.model,
        "int8 embeddings": quantize_embeddings_int8(run.model),
        "dynamic int8 MLP": quantize_mlp_dynamic(run.model),
    }
    variants["int8 embeddings + MLP"] = quantize_mlp_dynamic(variants["int8 embeddings"])
    rows = []
    small = {k: v[:batch] for k, v in inputs.items()}
    for name, m in variants.items():
        z = torch_logits(m, inputs)[:, 0].astype(np.float64)
        p = 1.0 / (1.0 + np.exp(-z))
        t = _time(lambda m=m: torch_logits(m, small), repeat)
        rows.append({"variant": name, "auc": auc(y, p), "logloss": log_loss(y, p),
                     "weights_bytes": weights_nbytes(m), f"latency_ms_b{batch}": t * 1e3})
    base = rows[0]["auc"]
    for r in rows:
        r["delta_auc"] = r["auc"] - base
    return rows


def _time(fn: Callable[[], Any], repeat: int) -> float:
    fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


# ----------------------------------------------------------------------- inference variants
def inference_variants(model: nn.Module, schema: ModelSchema, which: tuple[str, ...] = (
        "torch fp32", "torch bf16", "torch.compile", "onnxruntime"), threads: int = 1,
) -> dict[str, Callable[[dict[str, np.ndarray]], np.ndarray]]:
    """Name → ``f(inputs) → logits (n, T)`` for each inference variant in ``which``."""
    model = model.eval()
    out: dict[str, Callable[[dict[str, np.ndarray]], np.ndarray]] = {}
    if "torch fp32" in which:
        out["torch fp32"] = lambda x: torch_logits(model, x)
    if "torch bf16" in which:
        def bf16(x: dict[str, np.ndarray]) -> np.ndarray:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return torch_logits(model, x)
        out["torch bf16"] = bf16
    if "torch.compile" in which:
        compiled = torch.compile(model, dynamic=True)
        out["torch.compile"] = lambda x: torch_logits(compiled, x)
    if "onnxruntime" in which:
        sess = onnx_session(export_onnx(model, schema), threads)
        names = input_names(schema)
        out["onnxruntime"] = lambda x: sess.run(None, {k: x[k] for k in names})[0]
    return out
