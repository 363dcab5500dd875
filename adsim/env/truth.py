"""Ground-truth click models: the probabilities that define the world.

:class:`ParametricTruth` is a logistic model

.. math::

    \\operatorname{logit} p(\\text{click} \\mid u, k)
        = b_k + s \\, (x_u \\cdot e_k) + \\sum_f t_f[c_{uf}, k]

with user dense features :math:`x_u`, ad embedding :math:`e_k` (from the catalogue), per-ad bias
:math:`b_k`, effect scale :math:`s` and per-field tables :math:`t_f` over the user's category
:math:`c_{uf}`. Because every probability is known, so is the value of any policy.

Any object with ``logits(contexts) -> (n, K)`` and ``ctr(contexts) -> (n, K)`` can serve as a
truth (later: a trained CTR network).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.special import expit, logit

from adsim.env.catalog import Catalog
from adsim.env.features import Contexts, FeatureSpec

__all__ = ["ParametricTruth"]


@dataclass(frozen=True)
class ParametricTruth:
    """Logistic click model; see the module docstring for the formula.

    Attributes:
        bias: ``(K,)`` per-ad logit bias b_k.
        ad_emb: ``(K, n_dense)`` effect-scaled ad embeddings s·e_k.
        sparse_tables: one ``(vocab_f, K)`` table t_f per sparse field.
    """

    bias: np.ndarray
    ad_emb: np.ndarray
    sparse_tables: tuple[np.ndarray, ...]

    @property
    def n_actions(self) -> int:
        return int(self.bias.shape[0])

    @classmethod
    def random(
        cls,
        spec: FeatureSpec,
        catalog: Catalog,
        rng: np.random.Generator,
        *,
        base_ctr: float = 0.05,
        effect_scale: float = 1.0,
        ad_bias_sd: float = 0.5,
        sparse_effect_sd: float = 0.3,
    ) -> ParametricTruth:
        k = catalog.n_ads
        bias = logit(base_ctr) + ad_bias_sd * rng.standard_normal(k)
        emb = effect_scale * catalog.features
        tables = tuple(sparse_effect_sd * rng.standard_normal((v, k)) for v in spec.vocab_sizes)
        return cls(bias=bias, ad_emb=emb, sparse_tables=tables)

    def logits(self, contexts: Contexts) -> np.ndarray:
        """``(n, K)`` click logits."""
        out = contexts.dense @ self.ad_emb.T  # (n, K)
        out += self.bias
        for j, table in enumerate(self.sparse_tables):
            out += table[contexts.sparse[:, j]]
        return out

    def ctr(self, contexts: Contexts) -> np.ndarray:
        """``(n, K)`` click probabilities."""
        return expit(self.logits(contexts))

    def scores(self, contexts: Contexts) -> np.ndarray:
        """``(n, K)`` log click probabilities (a scorer that ranks by true CTR)."""
        return -np.logaddexp(0.0, -self.logits(contexts))

    def perturbed(self, noise: float, rng: np.random.Generator) -> ParametricTruth:
        """A 'production model' that is never quite right: every parameter plus N(0, noise²)."""
        return replace(
            self,
            bias=self.bias + noise * rng.standard_normal(self.bias.shape),
            ad_emb=self.ad_emb + noise * rng.standard_normal(self.ad_emb.shape),
            sparse_tables=tuple(
                t + noise * rng.standard_normal(t.shape) for t in self.sparse_tables
            ),
        )
