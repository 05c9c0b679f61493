"""Overfitting statistics for honest strategy selection: PBO by CSCV and the effective trials.

Input convention (every public function): ``returns`` is a float array of shape ``(T, N)``,
``T`` periods (e.g. trading days) by ``N`` candidates, each value the candidate's simple return
over that period (a fraction). No NaN or inf. Sharpe ratios are *per period* (mean / sample
standard deviation, ``ddof=1``), not annualized, as in :mod:`aio_ray.strategies.dsr`.

A series whose standard deviation is zero (a candidate that never traded) has Sharpe 0. In
floating point "zero" means ``sd <= 1e-6 * rms`` (``rms`` the root mean square of the values):
a numerically constant series, whose nominal ``|Sharpe|`` would exceed 1e6.

- :func:`pbo_cscv`: the Probability of Backtest Overfitting by combinatorially symmetric
  cross-validation (Bailey, Borwein, Lopez de Prado & Zhu, 2015).
- :func:`effective_trials`: how many independent trials ``N`` candidates amount to, by
  clustering their return series; feeds ``n_trials`` and ``sharpe_variance`` of
  :func:`aio_ray.strategies.dsr.deflated_sharpe_ratio`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from scipy.cluster.hierarchy import fcluster, leaves_list, linkage
from scipy.spatial.distance import squareform

ZERO_SD_RTOL = 1e-6
"""A series with ``sd <= ZERO_SD_RTOL * rms`` counts as zero-variance (Sharpe 0)."""

MIN_SILHOUETTE = 0.25
"""Mean silhouette below which a clustering shows no substantial structure (Kaufman-Rousseeuw)."""

_CHUNK_ELEMENTS = 2_000_000  # cells of a (rows x N) working array: bounds memory to ~16 MB each


# --------------------------------------------------------------------------- input and Sharpe


def _check_returns(returns: np.ndarray) -> np.ndarray:
    """``returns`` as a float64 (T, N) array; ValueError naming the problem otherwise."""
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 2:
        raise ValueError(
            f"returns must be a 2-D array (T periods x N candidates), got shape {r.shape}"
        )
    bad = ~np.isfinite(r)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"returns has {int(bad.sum())} non-finite values (NaN/inf), first at period "
            f"(row) {int(row)}, candidate (column) {int(col)}; drop or fill them first"
        )
    return r


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


def column_sharpe(returns: np.ndarray) -> np.ndarray:
    """Per-period Sharpe ratio (mean / sd with ``ddof=1``) of each column of a (T, N) array.

    Zero-variance columns (never traded) get 0; ``T < 2`` gives all zeros.
    """
    r = _check_returns(returns)
    t = r.shape[0]
    if t < 2:
        return np.zeros(r.shape[1])
    mean = r.mean(axis=0)
    sd = r.std(axis=0, ddof=1)
    rms = np.sqrt(np.mean(r * r, axis=0))
    zero = sd <= ZERO_SD_RTOL * rms
    with np.errstate(divide="ignore", invalid="ignore"):
        sr: np.ndarray = mean / sd
    sr[zero] = 0.0
    return sr


def _to_json(value: Any) -> Any:
    """A JSON-able scalar: numpy scalars to Python, NaN/inf floats to None."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    return value


def _frozen(a: np.ndarray) -> np.ndarray:
    """``a`` marked read-only, so a frozen result stays frozen."""
    a.setflags(write=False)
    return a


# --------------------------------------------------------------------------- PBO (CSCV)


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
            "pbo": _to_json(self.pbo),
            "n_blocks": self.n_blocks,
            "n_combinations": self.n_combinations,
            "n_candidates": self.n_candidates,
            "n_periods": self.n_periods,
            "sampled": self.sampled,
            "logit_median": _to_json(median),
            "degradation_slope": _to_json(self.degradation_slope),
            "degradation_intercept": _to_json(self.degradation_intercept),
            "prob_oos_loss": _to_json(self.prob_oos_loss),
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
        logits=_frozen(np.empty(0)),
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
    r = _check_returns(returns)
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
        logits=_frozen(logits),
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


# --------------------------------------------------------------------------- effective trials


@dataclass(frozen=True, eq=False)
class EffectiveTrials:
    """The effective number of independent trials among ``N`` candidates.

    Attributes
    ----------
    n_raw
        Number ``N`` of candidates (columns).
    n_effective
        Number of clusters: the ``n_trials`` to give the Deflated Sharpe Ratio.
    labels
        Cluster of each candidate, shape (N,), ids ``0 .. n_effective - 1`` numbered in the
        order of each cluster's first column. Read-only.
    representative_sharpes
        Per-period Sharpe ratio of each cluster's representative (the equal-weight mean of its
        members' returns), shape (n_effective,), indexed by cluster id. Read-only.
    sharpe_variance
        Sample variance (``ddof=1``) of ``representative_sharpes``; 0 with one cluster. The
        ``sharpe_variance`` to give the Deflated Sharpe Ratio.
    sampled
        True when only ``n_clustered`` columns were clustered and the rest assigned to the
        cluster whose representative they correlate with most.
    method
        How the number of clusters was chosen: ``"silhouette"`` (cut with the best mean
        silhouette), ``"implied-correlation"`` (no substantial structure: implied number of
        independent trials from the mean correlation) or ``"trivial"`` (at most one
        non-constant column).
    n_clustered
        Number of columns that went through the hierarchical clustering.
    n_zero_variance
        Number of zero-variance columns (never traded); together they form one cluster.
    silhouette
        Best mean silhouette found over the candidate cuts (NaN if none was scored).
    mean_correlation
        Mean pairwise correlation of the clustered columns (NaN with fewer than 2).
    """

    n_raw: int
    n_effective: int
    labels: np.ndarray
    representative_sharpes: np.ndarray
    sharpe_variance: float
    sampled: bool
    method: str
    n_clustered: int
    n_zero_variance: int
    silhouette: float
    mean_correlation: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: the scalar fields and the largest cluster's size; NaN -> None."""
        sizes = np.bincount(self.labels) if self.labels.size else np.zeros(1, dtype=np.int64)
        return {
            "n_raw": self.n_raw,
            "n_effective": self.n_effective,
            "sharpe_variance": _to_json(self.sharpe_variance),
            "sampled": self.sampled,
            "method": self.method,
            "n_clustered": self.n_clustered,
            "n_zero_variance": self.n_zero_variance,
            "silhouette": _to_json(self.silhouette),
            "mean_correlation": _to_json(self.mean_correlation),
            "largest_cluster": int(sizes.max()),
        }


def _column_scales(r: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column means, centred norms ``sqrt(sum (x - mean)^2)`` and the zero-variance mask."""
    t, n = r.shape
    mean = np.empty(n)
    norm = np.empty(n)
    rms = np.empty(n)
    for lo in range(0, n, chunk):
        x = r[:, lo : lo + chunk]
        mu = x.mean(axis=0)
        dev = x - mu
        mean[lo : lo + chunk] = mu
        norm[lo : lo + chunk] = np.sqrt(np.einsum("ij,ij->j", dev, dev))
        rms[lo : lo + chunk] = np.sqrt(np.einsum("ij,ij->j", x, x) / t)
    zero = norm / math.sqrt(t - 1) <= ZERO_SD_RTOL * rms
    return mean, norm, zero


def _standardized(
    r: np.ndarray, cols: np.ndarray, mean: np.ndarray, norm: np.ndarray
) -> np.ndarray:
    """Columns ``cols`` centred and scaled to unit norm: ``Z.T @ Z`` is their correlation."""
    z: np.ndarray = (r[:, cols] - mean[cols]) / norm[cols]
    return z


def _mean_silhouette(cum: np.ndarray, starts: np.ndarray) -> float:
    """Mean silhouette of a cut whose clusters are the leaf-order segments beginning at ``starts``.

    ``cum`` is the row-wise cumulative sum (with a leading 0 column) of the distance matrix in
    dendrogram leaf order, so a segment's distance sum is a difference of two columns.
    Singletons score 0 (the usual convention).
    """
    m = cum.shape[0]
    ends = np.r_[starts[1:], m]
    sizes = ends - starts
    sums = cum[:, ends] - cum[:, starts]
    seg = np.repeat(np.arange(starts.size), sizes)
    rows = np.arange(m)
    own_size = sizes[seg]
    with np.errstate(divide="ignore", invalid="ignore"):
        a = sums[rows, seg] / (own_size - 1)
        means = sums / sizes
        means[rows, seg] = np.inf
        b = means.min(axis=1)
        denom = np.maximum(a, b)
        s = np.where((own_size > 1) & (denom > 0.0), (b - a) / denom, 0.0)
    return float(s.mean())


def _candidate_cuts(m: int) -> list[int]:
    """Cluster counts to score: every k in 2..64, then a 1.08 geometric grid up to m - 1."""
    top = m - 1
    ks = list(range(2, min(top, 64) + 1))
    k = 64
    while k < top:
        k = min(top, math.ceil(k * 1.08))
        ks.append(k)
    return ks


def _cluster_correlation(
    corr: np.ndarray, min_silhouette: float
) -> tuple[np.ndarray, str, float, float]:
    """Labels (0-based), method, best mean silhouette and mean correlation of ``m`` columns."""
    m = corr.shape[0]
    if m == 1:
        return np.zeros(1, dtype=np.int64), "trivial", math.nan, math.nan
    rho_bar = float((corr.sum() - np.trace(corr)) / (m * (m - 1)))
    dist = np.sqrt(np.clip((1.0 - corr) / 2.0, 0.0, 1.0))
    dist = (dist + dist.T) / 2.0
    np.fill_diagonal(dist, 0.0)
    tree = linkage(squareform(dist, checks=False), method="average")
    order = leaves_list(tree)
    cum = np.zeros((m, m + 1))
    np.cumsum(dist[np.ix_(order, order)], axis=1, out=cum[:, 1:])

    scored: dict[int, tuple[float, np.ndarray]] = {}

    def score(k: int) -> None:
        labels = fcluster(tree, k, criterion="maxclust")
        in_order = labels[order]
        starts = np.flatnonzero(np.r_[True, in_order[1:] != in_order[:-1]])
        if 2 <= starts.size <= m - 1 and starts.size not in scored:
            scored[starts.size] = (_mean_silhouette(cum, starts), labels)

    grid = _candidate_cuts(m)
    for k in grid:
        score(k)
    if scored:  # refine between the grid neighbours of the best cut, at most ~17 cuts a pass
        best_k = max(scored, key=lambda c: scored[c][0])
        pos = int(np.searchsorted(grid, best_k))
        lo, hi = grid[max(pos - 1, 0)], grid[min(pos + 1, len(grid) - 1)]
        while True:
            step = max(1, math.ceil((hi - lo) / 16))
            for k in range(lo, hi + 1, step):
                score(k)
            best_k = max(scored, key=lambda c: scored[c][0])
            if step == 1:
                break
            lo, hi = max(2, best_k - step), min(m - 1, best_k + step)
    best_sil = max((v[0] for v in scored.values()), default=math.nan)
    if scored and best_sil >= min_silhouette:
        best_k = max(scored, key=lambda c: scored[c][0])
        return scored[best_k][1] - 1, "silhouette", best_sil, rho_bar
    implied = int(np.clip(round(rho_bar + (1.0 - rho_bar) * m), 1, m))
    labels = fcluster(tree, implied, criterion="maxclust")
    return labels - 1, "implied-correlation", best_sil, rho_bar


def effective_trials(
    returns: np.ndarray,
    *,
    max_candidates: int = 2000,
    seed: int = 0,
    min_silhouette: float = MIN_SILHOUETTE,
    chunk_columns: int = 4096,
) -> EffectiveTrials:
    """Effective number of independent trials, by clustering the candidates' return series.

    Method: the columns are clustered hierarchically (scipy, average linkage) on the
    correlation distance ``d = sqrt((1 - rho) / 2)``. Every cut of the dendrogram into 2..64
    clusters, then a 1.08 geometric grid of counts up to ``m - 1`` (refined to single steps
    around the best), is scored by its mean silhouette (singletons score 0), and the best cut is kept when that
    score reaches ``min_silhouette`` (0.25: below it Kaufman & Rousseeuw find "no substantial
    structure"). Otherwise the columns show no cluster structure and the count is the implied
    number of independent trials of Bailey & Lopez de Prado (2014), ``rho_bar + (1 - rho_bar)
    * m`` with ``rho_bar`` the mean pairwise correlation (``m`` if independent, 1 if all
    alike), rounded, clipped to [1, m], and the same dendrogram is cut there. Zero-variance
    columns (never traded) are alike and together form one extra cluster.

    Parameters
    ----------
    returns
        (T, N) per-period simple returns (fractions), no NaN/inf; ``T >= 2``, ``N >= 1``.
    max_candidates
        Most columns to cluster (>= 2). With more non-constant columns, a random subset of this
        many (drawn with ``seed``) is clustered and every other column joins the cluster whose
        representative (mean of the standardized sampled members) it correlates with most,
        ``chunk_columns`` columns at a time. Clusters missing from the subset cannot be found,
        so ``n_effective <= max_candidates + 1`` then.
    seed
        Seed of that subset.
    min_silhouette
        Mean silhouette a cut needs to be trusted, in [0, 1].
    chunk_columns
        Columns processed at once in the column-wide passes (bounds memory).

    Returns
    -------
    EffectiveTrials
        ``n_effective``, the labels, and the representatives' per-period Sharpe ratios and
        their variance: the ``n_trials`` and ``sharpe_variance`` of the Deflated Sharpe Ratio.

    Raises
    ------
    ValueError
        ``returns`` is not 2-D, holds NaN/inf, has ``T < 2`` or ``N < 1``; bad parameters.
    """
    r = _check_returns(returns)
    t, n = r.shape
    if t < 2:
        raise ValueError(f"effective_trials needs T >= 2 periods (rows), got T={t}")
    if n < 1:
        raise ValueError("effective_trials needs at least 1 candidate (column), got N=0")
    if int(max_candidates) < 2:
        raise ValueError(f"max_candidates must be >= 2, got {max_candidates}")
    if not 0.0 <= min_silhouette <= 1.0:
        raise ValueError(f"min_silhouette must be in [0, 1], got {min_silhouette}")
    if int(chunk_columns) < 1:
        raise ValueError(f"chunk_columns must be >= 1, got {chunk_columns}")
    chunk = int(chunk_columns)

    mean, norm, zero = _column_scales(r, chunk)
    active = np.flatnonzero(~zero)
    raw = np.full(n, -1, dtype=np.int64)
    sampled = active.size > max_candidates
    method, sil, rho_bar = "trivial", math.nan, math.nan
    n_clustered = int(active.size)
    if active.size:
        if sampled:
            rng = np.random.default_rng(seed)
            picked = np.sort(rng.choice(active, size=int(max_candidates), replace=False))
        else:
            picked = active
        n_clustered = int(picked.size)
        z = _standardized(r, picked, mean, norm)
        corr = np.clip(z.T @ z, -1.0, 1.0)
        np.fill_diagonal(corr, 1.0)
        sample_labels, method, sil, rho_bar = _cluster_correlation(corr, min_silhouette)
        del corr
        raw[picked] = sample_labels
        if sampled:
            k = int(sample_labels.max()) + 1
            member = sparse.csr_matrix(
                (np.ones(picked.size), (np.arange(picked.size), sample_labels)),
                shape=(picked.size, k),
            )
            centroids = np.asarray(member.T @ z.T).T  # (T, k): sums of standardized members
            c_norm = np.linalg.norm(centroids, axis=0)
            centroids /= np.where(c_norm > 0.0, c_norm, 1.0)
            rest = np.setdiff1d(active, picked, assume_unique=True)
            for lo in range(0, rest.size, chunk):
                cols = rest[lo : lo + chunk]
                raw[cols] = np.argmax(_standardized(r, cols, mean, norm).T @ centroids, axis=1)
    if zero.any():
        raw[zero] = raw.max() + 1

    _, first = np.unique(raw, return_index=True)
    old_ids = raw[np.sort(first)]
    remap = np.empty(old_ids.max() + 1, dtype=np.int64)
    remap[old_ids] = np.arange(old_ids.size)
    labels = remap[raw]
    k = int(old_ids.size)

    indicator = sparse.csr_matrix((np.ones(n), (labels, np.arange(n))), shape=(k, n))
    sizes = np.bincount(labels, minlength=k).astype(np.float64)
    reps = np.asarray(indicator @ r.T) / sizes[:, None]  # (k, T) equal-weight member means
    rep_sharpes = column_sharpe(reps.T)
    variance = float(np.var(rep_sharpes, ddof=1)) if k > 1 else 0.0
    return EffectiveTrials(
        n_raw=n,
        n_effective=k,
        labels=_frozen(labels),
        representative_sharpes=_frozen(rep_sharpes),
        sharpe_variance=variance,
        sampled=bool(sampled),
        method=method,
        n_clustered=n_clustered,
        n_zero_variance=int(zero.sum()),
        silhouette=sil,
        mean_correlation=rho_bar,
    )


__all__ = [
    "MIN_SILHOUETTE",
    "ZERO_SD_RTOL",
    "EffectiveTrials",
    "PBOResult",
    "column_sharpe",
    "effective_trials",
    "pbo_cscv",
]
