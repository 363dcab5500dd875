"""Vectorised auction mechanisms over a batch of independent auctions.

Every mechanism takes a batch of ``B`` auctions with ``N`` bidders each and returns, for each of
``S`` slots, the winning bidder and its price. Conventions shared by all mechanisms:

* **Bids** ``b`` are ``(B, N)``, in the bidder's own units (per impression, or per click when
  ranking by eCPM). A bid of 0 (or ``-inf``/NaN-free negative) means "not taking part".
* **Rank score** ``s_i = b_i · w_i`` with weight ``w_i = 1`` (``ranking="bid"``) or the bidder's
  quality, usually its predicted CTR (``ranking="ecpm"``: s = bid × pCTR, expected revenue per
  impression).
* **Reserve** ``r`` is in rank-score units, fixed (scalar) or per request (``(B,)``): a bidder is
  eligible only if ``s_i >= r`` and ``s_i > 0``. Equivalently the seller adds an endless supply of
  phantom bidders with score ``r`` — which is how the reserve enters every payment rule below.
* **Slots** ``k = 1..S`` have examination probabilities ``θ_1 >= θ_2 >= … >= θ_S`` (position bias,
  separable model: P(click | slot k) = θ_k · CTR). Eligible bidders are sorted by score (ties by
  lower bidder index); the k-th highest, ``s_(k)``, gets slot k. Unfilled slots have winner -1.
* **Prices** are returned twice: ``rank_price`` in rank-score units and ``price = rank_price /
  w_winner`` in the winner's bid units (per click under eCPM ranking, so the expected payment
  of slot k is θ_k · CTR · price). With ``s'_(j) = max(s_(j), r)`` (0-bidders replaced by the
  reserve):

  ============== ================================================ =========================
  mechanism      rank-score price of slot k                        reference
  ============== ================================================ =========================
  second_price   ``s'_(2)`` (single slot)                          Vickrey 1961
  first_price    ``s_(k)`` (pay your own bid)                      —
  gsp            ``s'_(k+1)``                                      Edelman et al. 2007
  vcg            ``Σ_{j=k..S} (θ_j − θ_{j+1}) s'_(j+1) / θ_k``     Varian 2007;
                 with ``θ_{S+1} = 0``                              Aggarwal et al. 2006
  ============== ================================================ =========================

  Hence ``r <= price_score <= s_(k)`` (nobody pays more than its bid or less than the reserve),
  GSP prices never rise down the slots, and VCG ≤ GSP slot by slot (each VCG term replaces
  ``s'_(k+1)`` by a smaller ``s'_(j+1)``).

References:
    W. Vickrey (1961). Counterspeculation, auctions, and competitive sealed tenders. J. Finance.
    B. Edelman, M. Ostrovsky, M. Schwarz (2007). Internet advertising and the generalized
    second-price auction. American Economic Review 97(1).
    H. Varian (2007). Position auctions. Int. J. Industrial Organization 25(6).
    G. Aggarwal, A. Goel, R. Motwani (2006). Truthful auctions for pricing search keywords. EC'06.

The fast single-slot kernels used by the throughput benchmark live in :func:`second_price_top2`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "MECHANISMS",
    "AuctionOutcome",
    "Mechanism",
    "run_auction",
    "second_price_top2",
]

Mechanism = Literal["second_price", "first_price", "gsp", "vcg"]
MECHANISMS: tuple[str, ...] = ("second_price", "first_price", "gsp", "vcg")


@dataclass(frozen=True)
class AuctionOutcome:
    """Result of a batch of auctions.

    Attributes:
        winners: ``(B, S)`` int64 bidder index in each slot, -1 if the slot is unfilled.
        price: ``(B, S)`` price in the winner's bid units (0 for unfilled slots).
        rank_price: ``(B, S)`` price in rank-score units (0 for unfilled slots).
        scores: ``(B, S)`` rank score of each slot's winner (0 for unfilled slots).
        examination: ``(S,)`` examination probability θ_k of each slot.
    """

    winners: np.ndarray
    price: np.ndarray
    rank_price: np.ndarray
    scores: np.ndarray
    examination: np.ndarray

    @property
    def n_slots(self) -> int:
        return int(self.winners.shape[1])

    def slot_of(self, n_bidders: int) -> np.ndarray:
        """``(B, N)`` slot index (0-based) each bidder got, -1 if none."""
        b, s = self.winners.shape
        out = np.full((b, n_bidders), -1, dtype=np.int64)
        rows, slots = np.nonzero(self.winners >= 0)
        out[rows, self.winners[rows, slots]] = slots
        return out

    def payment_per_bidder(self, n_bidders: int, per_click: bool) -> np.ndarray:
        """``(B, N)`` expected payment per auction: price × θ_k (× CTR applied by the caller).

        With ``per_click=False`` the price is charged on the impression (θ ignored).
        """
        out = np.zeros((self.winners.shape[0], n_bidders))
        rows, slots = np.nonzero(self.winners >= 0)
        pay = self.price[rows, slots]
        if per_click:
            pay = pay * self.examination[slots]
        out[rows, self.winners[rows, slots]] = pay
        return out


def _check_examination(examination: np.ndarray | None, n_slots: int) -> np.ndarray:
    if examination is None:
        return np.ones(n_slots)
    theta = np.asarray(examination, dtype=np.float64)
    if theta.shape != (n_slots,):
        raise ValueError(
            f"examination must have {n_slots} entries (one per slot), got {theta.shape}"
        )
    if np.any(theta <= 0) or np.any(theta > 1) or np.any(np.diff(theta) > 0):
        raise ValueError("examination probabilities must be in (0, 1] and non-increasing by slot")
    return theta


def run_auction(
    bids: np.ndarray,
    mechanism: Mechanism = "second_price",
    *,
    n_slots: int = 1,
    quality: np.ndarray | None = None,
    reserve: float | np.ndarray = 0.0,
    examination: np.ndarray | None = None,
) -> AuctionOutcome:
    """Run ``B`` auctions at once; see the module docstring for the rules.

    Args:
        bids: ``(B, N)`` non-negative bids.
        mechanism: ``second_price`` (needs ``n_slots == 1``), ``first_price``, ``gsp`` or ``vcg``.
        n_slots: number of slots S.
        quality: ``(B, N)`` or ``(N,)`` rank weights (e.g. pCTR) for eCPM ranking; None ranks
            by bid.
        reserve: reserve in rank-score units, scalar or ``(B,)``.
        examination: ``(S,)`` non-increasing examination probabilities (default all 1).
    """
    bids = np.asarray(bids, dtype=np.float64)
    if bids.ndim != 2:
        raise ValueError(f"bids must be (B, N), got shape {bids.shape}")
    if mechanism not in MECHANISMS:
        raise ValueError(f"unknown mechanism {mechanism!r}; expected one of {MECHANISMS}")
    if mechanism == "second_price" and n_slots != 1:
        raise ValueError("second_price sells one slot; use gsp or vcg for several slots")
    if n_slots < 1:
        raise ValueError(f"n_slots must be >= 1, got {n_slots}")
    theta = _check_examination(examination, n_slots)
    n_auctions, n_bidders = bids.shape
    if quality is None:
        w = np.ones_like(bids)
    else:
        w = np.broadcast_to(np.asarray(quality, dtype=np.float64), bids.shape)
    scores = bids * w
    r = np.broadcast_to(np.asarray(reserve, dtype=np.float64), (n_auctions,))
    eligible = (scores > 0) & (scores >= r[:, None])
    masked = np.where(eligible, scores, -np.inf)

    # top S+1 eligible bidders per auction, in rank order (ties → lower index first)
    k = min(n_slots + 1, n_bidders)
    if k <= 8 and k < n_bidders:
        # few places among many bidders: k argmax passes beat argpartition + sort (argmax
        # returns the first maximum, which is the tie rule)
        rows = np.arange(n_auctions)
        top = np.empty((n_auctions, k), np.int64)
        top_scores = np.empty((n_auctions, k))
        for j in range(k):
            i = masked.argmax(axis=1)
            top[:, j] = i
            top_scores[:, j] = masked[rows, i]
            masked[rows, i] = -np.inf
    else:
        if k < n_bidders:
            part = np.argpartition(-masked, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(n_bidders), (n_auctions, n_bidders)).copy()
        part_scores = np.take_along_axis(masked, part, axis=1)
        order = np.lexsort((part, -part_scores), axis=1)
        top = np.take_along_axis(part, order, axis=1)  # (B, k)
        top_scores = np.take_along_axis(part_scores, order, axis=1)
    if k < n_slots + 1:  # fewer bidders than slots + 1: pad with empty bidders
        pad = n_slots + 1 - k
        top = np.concatenate([top, np.zeros((n_auctions, pad), np.int64)], axis=1)
        top_scores = np.concatenate([top_scores, np.full((n_auctions, pad), -np.inf)], axis=1)
    filled = np.isfinite(top_scores)  # (B, S+1)
    win_scores = np.where(filled, top_scores, 0.0)
    # s'_(j): scores with empty places taken by the reserve's phantom bidders
    s_prime = np.maximum(win_scores, r[:, None])

    if mechanism == "first_price":
        rank_price = win_scores[:, :n_slots].copy()
    elif mechanism in ("second_price", "gsp"):
        rank_price = s_prime[:, 1 : n_slots + 1].copy()
    else:  # vcg, separable positions
        dtheta = theta - np.append(theta[1:], 0.0)  # θ_j − θ_{j+1}
        # tail sums T_k = Σ_{j>=k} dθ_j s'_(j+1), computed right to left
        terms = dtheta[None, :] * s_prime[:, 1 : n_slots + 1]
        tail = np.cumsum(terms[:, ::-1], axis=1)[:, ::-1]
        rank_price = tail / theta[None, :]
        # r <= VCG <= GSP holds exactly in theory; clamp so rounding (or denormal reserves)
        # cannot break it
        rank_price = np.clip(rank_price, r[:, None], s_prime[:, 1 : n_slots + 1])
    filled_s = filled[:, :n_slots]
    winners = np.where(filled_s, top[:, :n_slots], -1)
    rank_price = np.where(filled_s, rank_price, 0.0)
    win_w = np.take_along_axis(w, np.maximum(winners, 0), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        price = np.where(filled_s, rank_price / win_w, 0.0)
    return AuctionOutcome(
        winners=winners.astype(np.int64),
        price=price,
        rank_price=rank_price,
        scores=win_scores[:, :n_slots],
        examination=theta,
    )


def second_price_top2(
    bid_a: np.ndarray,
    bid_b: np.ndarray,
    reserve: float = 0.0,
    out_price: np.ndarray | None = None,
    out_a_wins: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Second-price auction between two participants per round, without any sort.

    The winner is ``a`` iff ``bid_a >= bid_b`` (ties to ``a``) and pays
    ``max(min(bid_a, bid_b), reserve)`` (Vickrey 1961); rounds where the higher bid is below the
    reserve are unsold (price 0). Writes into the optional preallocated outputs.

    Returns:
        ``(a_wins, price)``; ``a_wins`` is a bool array, and a round is sold iff ``price > 0`` or
        the winning bid is >= reserve.
    """
    a_wins = np.greater_equal(bid_a, bid_b, out=out_a_wins if out_a_wins is not None else None)
    price = np.minimum(bid_a, bid_b, out=out_price if out_price is not None else None)
    if reserve > 0:
        np.maximum(price, reserve, out=price)
        top = np.maximum(bid_a, bid_b)
        price[top < reserve] = 0
    return a_wins, price
