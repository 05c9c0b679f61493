"""Forward-return statistics of pattern occurrences: pure numpy, no I/O.

Stable public API::

    PatternStats                                   # one row: pattern x timeframe x horizon
    DIRECTIONS                                     # pattern -> +1 bullish, -1 bearish, 0 neutral
    forward_returns(open, close, horizon) -> ndarray             # raw, bps, per bar
    non_overlapping(bars, horizon) -> ndarray                    # indices kept for the t-stat
    summarize(pattern, bars, fwd, *, ...) -> PatternStats
    validate_patterns(stats, min_count=30, min_abs_t=2.0) -> list[PatternStats]

Conventions
-----------
* The forward return of a pattern completing at bar ``t`` over ``h`` bars starts at the
  **next** bar's open and ends at the close ``h`` bars later: ``close[t+h] / open[t+1] - 1``,
  in basis points (1 bp = 0.01%). It needs bars ``t+1 .. t+h``; occurrences too close to the
  end are left out of that horizon (``count`` says how many remain). Horizons count bars, so a
  weekend gap is one step like any other.
* *Signed* returns are multiplied by the pattern's conventional direction
  (:data:`DIRECTIONS`: +1 for the bullish patterns, -1 for the bearish ones); a neutral
  pattern (doji, symmetric triangle) has no direction and its signed return is the raw one.
  ``hit_rate`` is the share of signed returns above zero.
* **Overlap.** Two occurrences less than ``h`` bars apart share part of their forward
  window, so their returns are not independent. ``count``, ``mean_bps`` and ``hit_rate``
  use every occurrence; the t-statistic uses the non-overlapping subset taken greedily in
  time (an occurrence is kept when it is at least ``h`` bars after the last kept one), whose
  size is ``n_independent`` (the effective N).
* **Baseline.** Every bar of the series is an "occurrence" of nothing: its signed mean and
  hit rate (same direction, same horizon) are reported beside the pattern's, and the
  t-statistic is Welch's, of the non-overlapping pattern returns against the
  non-overlapping baseline (bars ``0, h, 2h, ...``): a pattern is interesting when it beats
  the drift of the series, not zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl

from aio_ray.patterns.vocabulary import BEARISH, BULLISH, PATTERNS

__all__ = [
    "DIRECTIONS",
    "PatternStats",
    "forward_returns",
    "non_overlapping",
    "summarize",
    "validate_patterns",
    "welch_t",
]

DIRECTIONS: dict[str, int] = {
    p: (1 if p in BULLISH else -1 if p in BEARISH else 0) for p in PATTERNS
}
"""Conventional direction of each pattern: +1 bullish, -1 bearish, 0 neutral."""

BPS = 1e4


@dataclass(frozen=True)
class PatternStats:
    """Forward-return statistics of one pattern on one symbol, timeframe and horizon.

    Attributes
    ----------
    symbol, timeframe, pattern : what was mined (``"EURUSD"``, ``"1h"``, ``"double_top"``).
    direction : +1 bullish, -1 bearish, 0 neutral (signed returns multiply by it; 0: raw).
    horizon : bars from the next bar's open to the close ``horizon`` bars after the pattern.
    occurrences : every completion found (some may lack a full horizon at the series' end).
    count : occurrences with a complete horizon (the statistics below use them).
    n_independent : non-overlapping subset of them (the t-statistic's N).
    mean_bps, median_bps, std_bps : signed forward return, basis points (std: ddof=1).
    mean_raw_bps : raw (unsigned) forward return, basis points.
    hit_rate : share of signed returns > 0 (fraction).
    t_stat : Welch t of the non-overlapping signed returns against the baseline's (NaN when
        either side has fewer than 2 values or no variance).
    baseline_count : bars with a complete horizon; ``baseline_mean_bps`` and
        ``baseline_hit_rate`` their signed mean and hit rate (the same direction).
    bars : bars in the mined series; ``first_ts_ms``/``last_ts_ms`` its first and last bar
        (open time, UTC ms).
    """

    symbol: str
    timeframe: str
    pattern: str
    direction: int
    horizon: int
    occurrences: int
    count: int
    n_independent: int
    mean_bps: float
    median_bps: float
    std_bps: float
    mean_raw_bps: float
    hit_rate: float
    t_stat: float
    baseline_count: int
    baseline_mean_bps: float
    baseline_hit_rate: float
    bars: int
    first_ts_ms: int
    last_ts_ms: int

    @property
    def excess_bps(self) -> float:
        """Signed mean minus the baseline's, basis points."""
        return self.mean_bps - self.baseline_mean_bps

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (NaN kept as float NaN)."""
        return asdict(self)


def forward_returns(open: np.ndarray, close: np.ndarray, horizon: int) -> np.ndarray:
    """Raw forward return of every bar ``t``: ``close[t+h] / open[t+1] - 1`` in bps.

    NaN for the last ``horizon`` bars (no complete horizon). ``horizon`` >= 1 bars.
    """
    o = np.asarray(open, dtype=np.float64)
    c = np.asarray(close, dtype=np.float64)
    n = len(c)
    out = np.full(n, np.nan)
    h = int(horizon)
    if h < 1:
        raise ValueError(f"forward_returns: horizon must be >= 1 bar, got {horizon!r}")
    if n > h:
        with np.errstate(divide="ignore", invalid="ignore"):
            out[: n - h] = (c[h:] / o[1 : n - h + 1] - 1.0) * BPS
    return out


def non_overlapping(bars: np.ndarray, horizon: int) -> np.ndarray:
    """Positions (into ``bars``, sorted ascending) kept so that no two forward windows of
    ``horizon`` bars overlap: greedy in time, a bar is kept when it is at least ``horizon``
    bars after the last kept one."""
    b = np.asarray(bars, dtype=np.int64)
    keep = np.zeros(len(b), dtype=bool)
    last = None
    for i, x in enumerate(b):
        if last is None or x - last >= horizon:
            keep[i] = True
            last = int(x)
    return np.flatnonzero(keep)


def welch_t(a: np.ndarray, b: np.ndarray) -> float:
    """Welch's t of ``mean(a) - mean(b)`` (ddof=1 variances); NaN when undefined."""
    na, nb_ = len(a), len(b)
    if na < 2 or nb_ < 2:
        return math.nan
    se2 = float(np.var(a, ddof=1)) / na + float(np.var(b, ddof=1)) / nb_
    if not se2 > 0:
        return math.nan
    return float((np.mean(a) - np.mean(b)) / math.sqrt(se2))


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if len(x) else math.nan


def summarize(
    pattern: str,
    bars: np.ndarray,
    fwd: np.ndarray,
    *,
    horizon: int,
    symbol: str,
    timeframe: str,
    first_ts_ms: int,
    last_ts_ms: int,
) -> PatternStats:
    """Statistics of ``pattern`` completing at bar indices ``bars`` (ascending), given the raw
    forward returns ``fwd`` of every bar of the series for ``horizon`` (bps,
    :func:`forward_returns`)."""
    d = DIRECTIONS[pattern]
    sign = 1.0 if d == 0 else float(d)
    bars = np.asarray(bars, dtype=np.int64)
    raw = fwd[bars]
    ok = np.isfinite(raw)
    done = bars[ok]
    raw = raw[ok]
    signed = sign * raw
    ind = signed[non_overlapping(done, horizon)]
    base_all = fwd[np.isfinite(fwd)]
    base_ind = fwd[::horizon]
    base_ind = sign * base_ind[np.isfinite(base_ind)]
    return PatternStats(
        symbol=symbol,
        timeframe=timeframe,
        pattern=pattern,
        direction=d,
        horizon=int(horizon),
        occurrences=len(bars),
        count=len(signed),
        n_independent=len(ind),
        mean_bps=_mean(signed),
        median_bps=float(np.median(signed)) if len(signed) else math.nan,
        std_bps=float(np.std(signed, ddof=1)) if len(signed) > 1 else math.nan,
        mean_raw_bps=_mean(raw),
        hit_rate=float(np.mean(signed > 0)) if len(signed) else math.nan,
        t_stat=welch_t(ind, base_ind),
        baseline_count=len(base_all),
        baseline_mean_bps=_mean(sign * base_all),
        baseline_hit_rate=float(np.mean(sign * base_all > 0)) if len(base_all) else math.nan,
        bars=len(fwd),
        first_ts_ms=int(first_ts_ms),
        last_ts_ms=int(last_ts_ms),
    )


def validate_patterns(
    stats: Iterable[PatternStats], min_count: int = 30, min_abs_t: float = 2.0
) -> list[PatternStats]:
    """The rows worth keeping: at least ``min_count`` independent occurrences
    (``n_independent``, the effective N) and ``|t_stat| >= min_abs_t`` (a finite t).

    A negative t means the pattern *underperforms* its conventional direction, which is as
    tradeable as the opposite signal: the validator keeps it, and ``t_stat``'s sign says
    which way. Order is preserved.
    """
    if isinstance(min_count, bool) or not isinstance(min_count, (int, np.integer)) or min_count < 1:
        raise ValueError(f"validate_patterns: min_count must be an int >= 1, got {min_count!r}")
    if not (isinstance(min_abs_t, (int, float)) and math.isfinite(min_abs_t) and min_abs_t >= 0):
        raise ValueError(
            f"validate_patterns: min_abs_t must be a finite float >= 0, got {min_abs_t!r}"
        )
    return [
        s
        for s in stats
        if s.n_independent >= min_count and math.isfinite(s.t_stat) and abs(s.t_stat) >= min_abs_t
    ]


def stats_table(stats: Sequence[PatternStats]) -> Any:
    """The rows as a polars DataFrame (one column per field, plus ``excess_bps``)."""
    rows = [s.to_dict() | {"excess_bps": s.excess_bps} for s in stats]
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
