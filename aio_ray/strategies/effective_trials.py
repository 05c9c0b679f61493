"""The effective number of independent trials among candidates, by clustering their returns.

:func:`effective_trials` says how many independent trials ``N`` candidates amount to; it feeds
``n_trials`` and ``sharpe_variance`` of :func:`aio_ray.strategies.dsr.deflated_sharpe_ratio`.
Input: a ``(T, N)`` matrix of per-period simple returns (fractions), ``T`` periods by ``N``
candidates, no NaN or inf; Sharpe ratios are per period, not annualized (see
:mod:`aio_ray.strategies.period_sharpe`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from scipy.cluster.hierarchy import fcluster, leaves_list, linkage
from scipy.spatial.distance import squareform

from aio_ray.strategies.period_sharpe import (
    ZERO_SD_RTOL,
    check_returns,
    column_sharpe,
    json_scalar,
    read_only,
)

__all__ = ["MIN_SILHOUETTE", "EffectiveTrials", "effective_trials"]

MIN_SILHOUETTE = 0.25
"""Mean silhouette below which a clustering shows no substantial structure (Kaufman-Rousseeuw)."""


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
            "sharpe_variance": json_scalar(self.sharpe_variance),
            "sampled": self.sampled,
            "method": self.method,
            "n_clustered": self.n_clustered,
            "n_zero_variance": self.n_zero_variance,
            "silhouette": json_scalar(self.silhouette),
            "mean_correlation": json_scalar(self.mean_correlation),
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
    r = check_returns(returns)
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
        labels=read_only(labels),
        representative_sharpes=read_only(rep_sharpes),
        sharpe_variance=variance,
        sampled=bool(sampled),
        method=method,
        n_clustered=n_clustered,
        n_zero_variance=int(zero.sum()),
        silhouette=sil,
        mean_correlation=rho_bar,
    )
