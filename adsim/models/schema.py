"""The contract between prepared data and models: which fields a model receives.

A model is built from a :class:`ModelSchema` (fields and vocabulary sizes, as fitted by data
preparation) and receives a batch as a dict of tensors:

=========== ====================== ===================================================
key         shape / dtype          meaning
=========== ====================== ===================================================
``dense``   ``(B, n_dense)`` f32   scaled dense features (may be absent if n_dense = 0)
``sparse``  ``(B, n_sparse)`` i64  label-encoded categories, 0 = padding/OOV bucket rules
                                   are data prep's; values in ``[0, vocab_size)``
``seq``     ``(B, n_seq, L)`` i64  behaviour sequences, 0 = padding (optional)
=========== ====================== ===================================================

and returns **logits**: ``(B,)`` for one task, ``(B, n_tasks)`` for several.
This module is pure Python (no torch) so configs and the CLI can use it cheaply.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["SparseField", "SequenceField", "ModelSchema"]


@dataclass(frozen=True)
class SparseField:
    """A categorical field after label encoding."""

    name: str
    vocab_size: int
    #: fields sharing an embedding table name the same ``share`` group (e.g. user_id, session_user)
    share: str | None = None


@dataclass(frozen=True)
class SequenceField:
    """A padded behaviour sequence of ids (0 = padding)."""

    name: str
    vocab_size: int
    max_len: int
    share: str | None = None


@dataclass(frozen=True)
class ModelSchema:
    """Inputs and outputs of a CTR/CVR model."""

    dense: tuple[str, ...] = ()
    sparse: tuple[SparseField, ...] = ()
    sequences: tuple[SequenceField, ...] = ()
    tasks: tuple[str, ...] = ("click",)

    @property
    def n_dense(self) -> int:
        return len(self.dense)

    @property
    def n_sparse(self) -> int:
        return len(self.sparse)

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> ModelSchema:
        return cls(
            dense=tuple(d.get("dense", ())),  # type: ignore[arg-type]
            sparse=tuple(SparseField(**f) for f in d.get("sparse", ())),  # type: ignore[union-attr]
            sequences=tuple(SequenceField(**f) for f in d.get("sequences", ())),  # type: ignore[union-attr]
            tasks=tuple(d.get("tasks", ("click",))),  # type: ignore[arg-type]
        )
