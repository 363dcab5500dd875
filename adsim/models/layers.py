"""Reusable layers: field embeddings, MLPs.

:class:`FieldEmbedding` looks up every sparse field at once from one fused table (offsets per
field), which is much faster than one ``nn.Embedding`` per field: one gather for the whole batch.

:class:`FeatureEmbedding` (configured by :class:`EmbeddingConfig`) adds what large CTR schemas need:
an adaptive dimension per field, hashing of high-cardinality fields into a fixed number of
buckets, tables shared by related fields (``SparseField.share``), mean-pooled sequence fields and
an L2 penalty on the embedding rows actually used in a batch. :class:`DenseFields` turns dense
features into field vectors ``x_j · e_j`` so interaction layers can treat them like sparse fields.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import torch
from torch import nn

from adsim.models.schema import ModelSchema

__all__ = [
    "FieldEmbedding",
    "MLP",
    "EmbeddingConfig",
    "adaptive_dim",
    "FeatureEmbedding",
    "DenseFields",
    "regularization_loss",
]


class FieldEmbedding(nn.Module):
    """All sparse fields embedded with one fused table: ``(B, F) -> (B, F, D)``.

    Field f's ids ``[0, vocab_f)`` map to rows ``offset_f + id`` of a single ``(Σ vocab_f, D)``
    table, initialised N(0, init_std²). ``dropout`` > 0 is *field* dropout during training: each
    row's whole field vector is zeroed with probability ``dropout`` (survivors scaled by
    1/(1-dropout)), a regulariser for high-cardinality ids.
    """

    def __init__(
        self, schema: ModelSchema, dim: int, init_std: float = 1e-2, dropout: float = 0.0
    ) -> None:
        super().__init__()
        vocab = [f.vocab_size for f in schema.sparse]
        offsets = torch.tensor([0, *vocab[:-1]], dtype=torch.long).cumsum(0) if vocab else torch.zeros(0, dtype=torch.long)
        self.register_buffer("offsets", offsets, persistent=False)
        self.n_fields = len(vocab)
        self.dim = dim
        self.table = nn.Embedding(max(sum(vocab), 1), dim)
        nn.init.normal_(self.table.weight, std=init_std)
        self.dropout = float(dropout)

    def forward(self, sparse: torch.Tensor) -> torch.Tensor:
        ids = (sparse + self.offsets).reshape(-1)
        # index_select's backward is a scatter-add (index_add_), several times faster on CPU than
        # nn.Embedding's sort-based dense backward; same values and gradients
        v = self.table.weight.index_select(0, ids).view(*sparse.shape, self.dim)  # (B, F, D)
        if self.dropout > 0 and self.training:
            keep = torch.rand(v.shape[:2] + (1,), device=v.device) >= self.dropout  # (B, F, 1)
            v = v * keep.to(v.dtype) / (1.0 - self.dropout)
        return v


class MLP(nn.Module):
    """Linear → activation → dropout stack; ``out_dim=None`` leaves the last hidden layer as output."""

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        out_dim: int | None = 1,
        dropout: float = 0.0,
        activation: type[nn.Module] = nn.ReLU,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers.append(nn.Linear(d, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(activation())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            d = h
        if out_dim is not None:
            layers.append(nn.Linear(d, out_dim))
        self.out_dim = out_dim if out_dim is not None else d
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# ------------------------------------------------------------------ configurable embeddings
DimRule = tuple[float, float, int]


def adaptive_dim(vocab_size: int, rule: DimRule | Callable[[int], int] = (6.0, 0.25, 50)) -> int:
    """Embedding size for a field of ``vocab_size`` rows.

    ``rule = (a, p, cap)`` gives ``min(cap, int(a · vocab_size ** p))`` — the default
    ``min(50, int(6 · V^0.25))`` is the rule of thumb of Google's "Wide & Deep" TensorFlow tutorial
    (an embedding of about the fourth root of the vocabulary). A callable ``V -> d`` replaces it.
    The result is at least 1.
    """
    if callable(rule):
        d = int(rule(vocab_size))
    else:
        a, p, cap = rule
        d = min(int(cap), int(a * vocab_size**p))
    return max(1, d)


@dataclass
class EmbeddingConfig:
    """Embedding options shared by every zoo model (each model's config extends this)."""

    embed_dim: int = 16
    """Embedding size D (the common size fed to interaction layers)."""
    adaptive_dim: bool = False
    """Give each field its own size ``adaptive_dim(rows, dim_rule)``, projected to ``embed_dim``."""
    dim_rule: DimRule | Callable[[int], int] = (6.0, 0.25, 50)
    """``(a, p, cap)`` for ``min(cap, int(a · rows ** p))``, or a callable ``rows -> dim``."""
    hash_buckets: int | None = None
    """Hash fields with more than ``hash_threshold`` values into this many rows (None: no hashing)."""
    hash_threshold: int = 10_000
    """Vocabulary size above which a field is hashed (when ``hash_buckets`` is set)."""
    l2_reg: float = 0.0
    """λ of the L2 penalty on the embedding rows used in the batch; the pipeline's trainer adds
    :func:`regularization_loss` to its loss (``adsim train`` and ``adsim compare``)."""
    init_std: float = 1e-2
    """Embedding rows are initialised N(0, init_std²)."""
    embed_dropout: float = 0.0
    """Field dropout in training: a row's whole field vector is zeroed with this probability."""

    def __post_init__(self) -> None:
        from adsim.errors import ConfigError

        if self.embed_dim < 1:
            raise ConfigError(f"embed_dim must be >= 1, got {self.embed_dim}")
        if self.hash_buckets is not None and self.hash_buckets < 2:
            raise ConfigError(f"hash_buckets must be >= 2 or null, got {self.hash_buckets}")
        if self.hash_threshold < 1:
            raise ConfigError(f"hash_threshold must be >= 1, got {self.hash_threshold}")
        if not 0 <= self.embed_dropout < 1:
            raise ConfigError(f"embed_dropout must be in [0, 1), got {self.embed_dropout}")
        if self.l2_reg < 0:
            raise ConfigError(f"l2_reg must be >= 0, got {self.l2_reg}")
        if not callable(self.dim_rule):
            rule = tuple(self.dim_rule)
            if len(rule) != 3 or rule[0] <= 0 or rule[2] < 1:
                raise ConfigError(
                    f"dim_rule must be [a, p, cap] with a > 0 and cap >= 1 "
                    f"(d = min(cap, int(a * vocab ** p))), got {list(rule)}"
                )
            self.dim_rule = (float(rule[0]), float(rule[1]), int(rule[2]))

    @classmethod
    def of(cls, cfg: object, **override: object) -> EmbeddingConfig:
        """The embedding options of a model config (any object with these attributes)."""
        kw = {f.name: getattr(cfg, f.name) for f in fields(cls) if hasattr(cfg, f.name)}
        kw.update(override)
        return cls(**kw)


class FeatureEmbedding(nn.Module):
    """Sparse (and pooled sequence) fields → ``(B, F, D)`` with per-field sizes, hashing, sharing.

    Layout: fields are grouped into *blocks* (one per field, or one per ``share`` group, whose rows
    are shared by all its fields and sized for the largest vocabulary). A block with more than
    ``hash_threshold`` values gets ``hash_buckets`` rows and ids are hashed as ``id mod buckets``
    (ids are label-encoded integers, so the modulo spreads them uniformly; 0 stays 0). Blocks of the
    same size ``d`` live in one fused table, so a forward pass is one gather per distinct size.
    With ``adaptive_dim`` each field's ``d_f``-vector is mapped to the common ``D = embed_dim`` by a
    per-field linear projection ``P_f ∈ R^{d_f×D}`` (batched as one einsum per size).

    ``embed_dropout`` zeroes whole field vectors in training (survivors scaled by 1/(1-p)).

    Sequence fields (``(B, n_seq, L)``, 0 = padding) are mean-pooled over their non-padding ids and
    appended after the sparse fields, so ``F = n_sparse + n_seq`` (``include_sequences=True``).

    With ``l2_reg > 0`` each training forward records the rows it used; :meth:`regularization_loss`
    is ``λ Σ_{rows r used} ||w_r||²`` (rows counted once per batch), the mini-batch-aware
    regulariser of Zhou et al. (2018, DIN, §4.3) without the frequency weighting. Untouched rows get
    no decay, unlike weight decay on the whole table.
    """

    def __init__(
        self, schema: ModelSchema, cfg: EmbeddingConfig | None = None, include_sequences: bool = True
    ) -> None:
        super().__init__()
        cfg = cfg if cfg is not None else EmbeddingConfig()
        self.cfg = cfg
        self.dim = cfg.embed_dim
        specs = [(f.name, f.vocab_size, f.share) for f in schema.sparse]
        seqs = list(schema.sequences) if include_sequences else []
        specs += [(s.name, s.vocab_size, s.share) for s in seqs]
        self.n_sparse = schema.n_sparse
        self.n_seq = len(seqs)
        self.n_fields = len(specs)

        # blocks: share group (or the field alone) -> rows, hashed?
        block_of: list[str] = []
        block_vocab: dict[str, int] = {}
        for name, vocab, share in specs:
            key = f"share:{share}" if share else f"field:{name}"
            block_of.append(key)
            block_vocab[key] = max(block_vocab.get(key, 0), int(vocab))
        block_rows, block_hashed, block_dim = {}, {}, {}
        for key, vocab in block_vocab.items():
            hashed = cfg.hash_buckets is not None and vocab > cfg.hash_threshold
            rows = int(cfg.hash_buckets) if hashed else vocab  # type: ignore[arg-type]
            block_rows[key], block_hashed[key] = rows, hashed
            block_dim[key] = adaptive_dim(rows, cfg.dim_rule) if cfg.adaptive_dim else cfg.embed_dim
        # one table per distinct size; block offsets within it
        dims = sorted(set(block_dim.values()))
        block_offset: dict[str, int] = {}
        table_rows = dict.fromkeys(dims, 0)
        for key in block_vocab:
            d = block_dim[key]
            block_offset[key] = table_rows[d]
            table_rows[d] += block_rows[key]
        self.dims = dims
        self.tables = nn.ModuleDict({str(d): nn.Embedding(max(table_rows[d], 1), d) for d in dims})
        for t in self.tables.values():
            nn.init.normal_(t.weight, std=cfg.init_std)
        self.field_dims = [block_dim[k] for k in block_of]
        self.project = cfg.adaptive_dim
        self.proj = nn.ParameterDict()

        def col_tensors(idx: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            off = torch.tensor([block_offset[block_of[i]] for i in idx], dtype=torch.long)
            mod = torch.tensor(
                [block_rows[block_of[i]] if block_hashed[block_of[i]] else 0 for i in idx],
                dtype=torch.long,
            )
            return off, mod, torch.tensor(idx, dtype=torch.long)

        order: list[int] = []
        for d in dims:
            sp = [i for i in range(self.n_sparse) if self.field_dims[i] == d]
            sq = [i for i in range(self.n_sparse, self.n_fields) if self.field_dims[i] == d]
            off, mod, cols = col_tensors(sp)
            self.register_buffer(f"off_{d}", off, persistent=False)
            self.register_buffer(f"mod_{d}", mod, persistent=False)
            self.register_buffer(f"cols_{d}", cols, persistent=False)
            soff, smod, scols = col_tensors(sq)
            self.register_buffer(f"soff_{d}", soff, persistent=False)
            self.register_buffer(f"smod_{d}", smod, persistent=False)
            self.register_buffer(f"scols_{d}", scols - self.n_sparse, persistent=False)
            order += sp + sq
            if self.project:
                w = torch.empty(len(sp) + len(sq), d, self.dim)
                for j in range(w.shape[0]):
                    nn.init.xavier_uniform_(w[j])
                self.proj[str(d)] = nn.Parameter(w)
        inv = torch.empty(len(order), dtype=torch.long)
        inv[torch.tensor(order, dtype=torch.long)] = torch.arange(len(order))
        self.register_buffer("inv_order", inv, persistent=False)
        self._used: list[tuple[nn.Embedding, torch.Tensor]] = []

    @staticmethod
    def _hash(ids: torch.Tensor, mod: torch.Tensor) -> torch.Tensor:
        # mod > 0 on hashed columns (broadcast over the last dims of ids)
        return torch.where(mod > 0, torch.remainder(ids, mod.clamp(min=1)), ids)

    def forward(self, sparse: torch.Tensor | None, seq: torch.Tensor | None = None) -> torch.Tensor:
        """``sparse (B, n_sparse)``, ``seq (B, n_seq, L)`` → ``(B, F, D)``."""
        record = self.training and self.cfg.l2_reg > 0
        if record:
            self._used = []
        outs = []
        for d in self.dims:
            table = self.tables[str(d)]
            parts = []
            cols = getattr(self, f"cols_{d}")
            if cols.numel():
                rows = self._hash(sparse[:, cols], getattr(self, f"mod_{d}")) + getattr(self, f"off_{d}")
                parts.append(_lookup(table, rows))  # (B, F_d, d)
                if record:
                    self._used.append((table, rows))
            scols = getattr(self, f"scols_{d}")
            if scols.numel():
                ids = seq[:, scols]  # (B, S_d, L)
                rows = self._hash(ids, getattr(self, f"smod_{d}")[:, None]) + getattr(self, f"soff_{d}")[:, None]
                mask = (ids > 0).to(table.weight.dtype).unsqueeze(-1)  # (B, S_d, L, 1)
                pooled = (_lookup(table, rows) * mask).sum(2) / mask.sum(2).clamp(min=1.0)  # (B, S_d, d)
                parts.append(pooled)
                if record:
                    self._used.append((table, rows[ids > 0]))
            e = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
            if self.cfg.embed_dropout > 0 and self.training:
                keep = torch.rand(e.shape[:2] + (1,), device=e.device) >= self.cfg.embed_dropout  # (B, F_d, 1)
                e = e * keep.to(e.dtype) / (1.0 - self.cfg.embed_dropout)
            if self.project:
                e = torch.einsum("bfd,fdo->bfo", e, self.proj[str(d)])  # (B, F_d, D)
            outs.append(e)
        if len(outs) == 1:
            return outs[0]  # fields already in schema order
        return torch.cat(outs, dim=1)[:, self.inv_order]  # (B, F, D)

    def regularization_loss(self) -> torch.Tensor:
        """``λ Σ ||w_r||²`` over the distinct rows used by the last training forward (0 if none)."""
        if not self._used:
            return torch.zeros(())
        total = 0.0
        for table, rows in self._used:
            total = total + table.weight[torch.unique(rows)].pow(2).sum()
        return self.cfg.l2_reg * total  # type: ignore[return-value]


def _lookup(table: nn.Embedding, rows: torch.Tensor) -> torch.Tensor:
    # index_select's backward is a scatter-add, faster on CPU than nn.Embedding's (see FieldEmbedding)
    return table.weight.index_select(0, rows.reshape(-1)).view(*rows.shape, table.embedding_dim)


class DenseFields(nn.Module):
    """Dense features as field vectors: ``(B, n_dense) -> (B, n_dense, D)``, ``e_j = x_j · v_j``.

    The real-valued input of a factorization machine (Rendle 2010) and of AutoInt (Song et al.
    2019, §4.2): a dense feature j has one learned vector v_j scaled by its value.
    """

    def __init__(self, n_dense: int, dim: int, init_std: float = 1e-2) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_dense, dim) * init_std)

    def forward(self, dense: torch.Tensor) -> torch.Tensor:
        return dense.unsqueeze(-1) * self.weight  # (B, n_dense, D)


def regularization_loss(model: nn.Module) -> torch.Tensor:
    """Sum of ``regularization_loss()`` of every sub-module that has one (e.g. the embedding L2).

    A trainer adds this to the data loss after each forward: ``loss = bce + regularization_loss(m)``.
    """
    total = torch.zeros(())
    for m in model.modules():
        if m is not model and hasattr(m, "regularization_loss") and callable(m.regularization_loss):
            total = total + m.regularization_loss()
    return total
