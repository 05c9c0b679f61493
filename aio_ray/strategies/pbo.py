"""The Probability of Backtest Overfitting by combinatorially symmetric cross-validation.

:func:`pbo_cscv` follows Bailey, Borwein, Lopez de Prado & Zhu (2015). Input: a ``(T, N)``
matrix of per-period simple returns (fractions), ``T`` periods by ``N`` candidates, no NaN or
inf; Sharpe ratios are per period, not annualized (see :mod:`aio_ray.strategies.period_sharpe`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from aio_ray.strategies.period_sharpe import ZERO_SD_RTOL, check_returns, json_scalar, read_only

__all__ = ["PBOResult", "pbo_cscv"]

_CHUNK_ELEMENTS = 2_000_000  # cells of a (rows x N) working array: bounds memory to ~16 MB each


def _subset_sharpe(n: np.ndarray, s: np.ndarray, w: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Per-period Sharpe of unions of blocks from pooled block statistics.

    For each row (a union of blocks) and column (a candidate): ``n`` number of periods (rows,
    shape (K, 1)), ``s`` sum of returns, ``w`` sum of the blocks' within-block squared
    deviations, ``e`` sum over the blocks of ``n_b * mean_b^2``. Then the sum of squares is
    ``w + e`` and the squared deviations from the union's mean are ``w + (e - s^2 / n)``; the
    split keeps an all-zero union exactly zero.
    """
    # In place on the (K, N) inputs, which are the caller's temporaries.
    dev = s * s
    dev /= n
    np.subtract(e, dev, out=dev)
    np.maximum(dev, 0.0, out=dev)
    dev += w  # squared deviations from the union's mean; var = dev / (n - 1)
    sq = np.add(w, e, out=w)  # sum of squares
    dev /= n - 1.0
    sq /= n
    sq *= ZERO_SD_RTOL * ZERO_SD_RTOL
    zero = dev <= sq  # sd <= ZERO_SD_RTOL * rms, squared
    np.sqrt(dev, out=dev)
    dev *= n
    with np.errstate(divide="ignore", invalid="ignore"):
        sr: np.ndarray = np.divide(s, dev, out=s)  # mean / sd = s / (n sd)
    sr[zero] = 0.0
    return sr


@dataclass(frozen=True, eq=False)
class PBOResult:
    """Probability of Backtest Overfitting and its by-products (see :func:`pbo_cscv`).

    Attributes
    ----------
    pbo
        Share of in-sample/out-of-sample splits in which the in-sample best candidate ranks at
        or below the out-of-sample median (logit <= 0), in [0, 1]; NaN when not computable.
    n_blocks
        Number ``S`` of contiguous blocks the periods were split into.
    n_combinations
        Number of in-sample/out-of-sample splits evaluated (all ``C(S, S/2)``, or a seeded
        random subset closed under complement when ``sampled``).
    n_candidates
        Number ``N`` of candidates (columns).
    n_periods
        Number ``T`` of periods (rows).
    sampled
        True when only a random subset of the ``C(S, S/2)`` splits was evaluated.
    logits
        ``lambda = ln(omega / (1 - omega))`` per split, ``omega`` the in-sample best's relative
        out-of-sample rank in (0, 1) (1 = best). Read-only, shape ``(n_combinations,)``.
    degradation_slope, degradation_intercept
        OLS fit ``SR_oos = intercept + slope * SR_is`` over the splits, for the in-sample best's
        per-period Sharpe ratios: how much of the in-sample edge survives. NaN when the
        in-sample Sharpe does not vary across splits.
    prob_oos_loss
        Share of splits in which the in-sample best has out-of-sample Sharpe < 0.
    reason
        Why the statistics are not computable (then ``pbo`` is NaN), else None.
    """

    pbo: float
    n_blocks: int
    n_combinations: int
    n_candidates: int
    n_periods: int
    sampled: bool
    logits: np.ndarray
    degradation_slope: float
    degradation_intercept: float
    prob_oos_loss: float
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: every field but ``logits`` (plus their median); NaN -> None."""
        median = float(np.median(self.logits)) if self.logits.size else math.nan
        return {
            "pbo": json_scalar(self.pbo),
            "n_blocks": self.n_blocks,
            "n_combinations": self.n_combinations,
            "n_candidates": self.n_candidates,
            "n_periods": self.n_periods,
            "sampled": self.sampled,
            "logit_median": json_scalar(median),
            "degradation_slope": json_scalar(self.degradation_slope),
            "degradation_intercept": json_scalar(self.degradation_intercept),
            "prob_oos_loss": json_scalar(self.prob_oos_loss),
            "reason": self.reason,
        }


def _block_stats(
    r: np.ndarray, n_blocks: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-block counts (S,), sums, within-block squared deviations and ``n_b mean_b^2`` (S, N).

    Blocks are contiguous and of near-equal size (the first ``T % S`` one row longer).
    """
    t = r.shape[0]
    sizes = np.full(n_blocks, t // n_blocks, dtype=np.int64)
    sizes[: t % n_blocks] += 1
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    counts = sizes.astype(np.float64)
    sums = np.add.reduceat(r, starts, axis=0)
    means = sums / counts[:, None]
    within = np.empty_like(sums)
    for b, (lo, size) in enumerate(zip(starts, sizes, strict=True)):
        dev = r[lo : lo + size] - means[b]
        within[b] = np.einsum("ij,ij->j", dev, dev)
    return counts, sums, within, sums * means


def _split_masks(n_blocks: int, max_combinations: int, seed: int) -> tuple[np.ndarray, bool]:
    """In-sample block masks (P, S) of one split of each complementary pair, and ``sampled``.

    Each pair is represented by the split whose in-sample half contains block 0; its
    complement is the other split of the pair. All ``C(S, S/2) / 2`` pairs when they fit in
    ``max_combinations / 2``, else that many distinct pairs drawn with ``seed``.
    """
    half = n_blocks // 2
    rest = n_blocks - 1
    n_pairs_all = math.comb(n_blocks, half) // 2
    n_pairs = max_combinations // 2
    if n_pairs_all <= n_pairs:
        chosen = [(0, *c) for c in itertools.combinations(range(1, n_blocks), half - 1)]
        sampled = False
    else:
        rng = np.random.default_rng(seed)
        seen: dict[tuple[int, ...], None] = {}
        while len(seen) < n_pairs:
            draws = np.argsort(rng.random((n_pairs, rest)), axis=1)[:, : half - 1] + 1
            for row in np.sort(draws, axis=1):
                seen.setdefault((0, *map(int, row)), None)
                if len(seen) == n_pairs:
                    break
        chosen = list(seen)
        sampled = True
    masks = np.zeros((len(chosen), n_blocks), dtype=np.float64)
    for i, blocks in enumerate(chosen):
        masks[i, list(blocks)] = 1.0
    return masks, sampled


def _not_computable(reason: str, n_blocks: int, t: int, n: int) -> PBOResult:
    return PBOResult(
        pbo=math.nan,
        n_blocks=n_blocks,
        n_combinations=0,
        n_candidates=n,
        n_periods=t,
        sampled=False,
        logits=read_only(np.empty(0)),
        degradation_slope=math.nan,
        degradation_intercept=math.nan,
        prob_oos_loss=math.nan,
        reason=reason,
    )


def pbo_cscv(
    returns: np.ndarray, n_blocks: int = 16, max_combinations: int = 2000, seed: int = 0
) -> PBOResult:
    """Probability of Backtest Overfitting by combinatorially symmetric cross-validation.

    The ``T`` periods are cut into ``n_blocks`` (``S``) contiguous blocks of near-equal size.
    For each choice of ``S/2`` blocks as in-sample (the other ``S/2`` out-of-sample), the
    candidate with the best in-sample per-period Sharpe ratio is selected (first column on
    ties) and its out-of-sample Sharpe is ranked among all ``N`` out-of-sample Sharpes (ties
    share their average rank, 1 = worst); ``omega = rank / (N + 1)`` and ``lambda =
    ln(omega / (1 - omega))``. PBO is the share of splits with ``lambda <= 0``: how often
    the in-sample winner is no better than the out-of-sample median. Near 0.5 means the
    selection is noise; near 0, the winner's edge persists.

    Parameters
    ----------
    returns
        (T, N) per-period simple returns (fractions), no NaN/inf.
    n_blocks
        Number of blocks ``S``, even and >= 2. Each block needs at least 2 periods.
    max_combinations
        Most splits to evaluate (>= 2). When ``C(S, S/2)`` exceeds it, a random subset of
        ``max_combinations // 2`` complementary pairs is drawn with ``seed`` (deterministic);
        ``n_combinations`` and ``sampled`` in the result say what was done.
    seed
        Seed of that subset.

    Returns
    -------
    PBOResult
        With ``pbo`` NaN and ``reason`` set (no exception) when ``N < 2`` or ``T < 2 * S``.

    Raises
    ------
    ValueError
        ``returns`` is not 2-D or holds NaN/inf; ``n_blocks`` is odd or < 2;
        ``max_combinations < 2``.
    TypeError
        ``n_blocks`` is not an integer.
    """
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, (int, np.integer)):
        raise TypeError(f"n_blocks must be an even integer >= 2, got {n_blocks!r}")
    n_blocks = int(n_blocks)
    if n_blocks < 2 or n_blocks % 2:
        raise ValueError(f"n_blocks must be an even integer >= 2, got {n_blocks}")
    if int(max_combinations) < 2:
        raise ValueError(f"max_combinations must be >= 2, got {max_combinations}")
    r = check_returns(returns)
    t, n = r.shape
    if n < 2:
        return _not_computable(f"need at least 2 candidates (columns), got N={n}", n_blocks, t, n)
    if t < 2 * n_blocks:
        return _not_computable(
            f"need T >= 2 * n_blocks = {2 * n_blocks} periods (rows), got T={t}", n_blocks, t, n
        )

    counts, sums, within, between = _block_stats(r, n_blocks)
    masks, sampled = _split_masks(n_blocks, int(max_combinations), seed)
    n_pairs = masks.shape[0]
    logits = np.empty(2 * n_pairs)
    is_best = np.empty(2 * n_pairs)
    oos_best = np.empty(2 * n_pairs)
    step = max(1, _CHUNK_ELEMENTS // (2 * n))
    for lo in range(0, n_pairs, step):
        m = masks[lo : lo + step]
        both = np.concatenate((m, 1.0 - m))  # rows: splits' in-sample halves, then complements
        k = m.shape[0]
        sr = _subset_sharpe((both @ counts)[:, None], both @ sums, both @ within, both @ between)
        best = np.argmax(sr, axis=1)
        rows = np.arange(2 * k)
        partner = (rows + k) % (2 * k)  # a split's out-of-sample half is its complement's row
        x_is = sr[rows, best]
        x_oos = sr[partner, best]
        below = np.empty(2 * k)
        for half in (slice(0, k), slice(k, 2 * k)):
            oos = sr[partner[half.start] : partner[half.start] + k]
            x = x_oos[half, None]
            # average rank among ties: (#below) + (#equal + 1) / 2 = (#< + #<= + 1) / 2
            below[half] = np.count_nonzero(oos < x, axis=1) + np.count_nonzero(oos <= x, axis=1)
        omega = (below + 1.0) / 2.0 / (n + 1.0)
        out = np.r_[lo : lo + k, n_pairs + lo : n_pairs + lo + k]
        logits[out] = np.log(omega / (1.0 - omega))
        is_best[out] = x_is
        oos_best[out] = x_oos

    slope, intercept = _ols(is_best, oos_best)
    return PBOResult(
        pbo=float(np.mean(logits <= 0.0)),
        n_blocks=n_blocks,
        n_combinations=int(logits.size),
        n_candidates=n,
        n_periods=t,
        sampled=sampled,
        logits=read_only(logits),
        degradation_slope=slope,
        degradation_intercept=intercept,
        prob_oos_loss=float(np.mean(oos_best < 0.0)),
        reason=None,
    )


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of the least-squares line ``y = a + b x``; NaN when ``x`` is flat."""
    dx = x - x.mean()
    sxx = float(dx @ dx)
    if not sxx > 1e-300:
        return math.nan, math.nan
    slope = float(dx @ (y - y.mean())) / sxx
    return slope, float(y.mean() - slope * x.mean())
