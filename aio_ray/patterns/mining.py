"""Mining pattern occurrences over history, with forward-return statistics per timeframe.

Stable public API::

    find_occurrences(bars, *, window=64) -> polars.DataFrame      # every completion
    mine_bars(bars, *, symbol, timeframe, horizons=(1, 5, 20), window=64) -> MiningResult
    mine_bars_dir(bars_dir, timeframes, *, symbol=None, horizons=..., use_ray=False)
        -> MiningResult                                           # one Ray task per timeframe
    mining_key(result_or_bars...) -> str                          # stable id of a mining run
    validate_patterns(stats, min_count=30, min_abs_t=2.0)         # re-exported from stats

Occurrences come from :func:`~aio_ray.patterns.detectors.detect_candles` and
:func:`~aio_ray.patterns.detectors.detect_chart_patterns` on the mid prices of the bars (one
pass over the whole series, so a chart pattern's ATR and swings see the history before it;
nothing after the completion bar is used). The statistics' conventions (next bar's open,
signed returns, overlap handling, baseline) are in :mod:`aio_ray.patterns.stats`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from aio_ray.bars.arrays import BarArrays
from aio_ray.bars.store import list_symbols, read_bars
from aio_ray.bars.timeframes import parse_timeframe
from aio_ray.patterns.detectors import (
    PatternError,
    detect_candles,
    detect_chart_patterns,
)
from aio_ray.patterns.stats import (
    DIRECTIONS,
    PatternStats,
    forward_returns,
    stats_table,
    summarize,
    validate_patterns,
)
from aio_ray.patterns.vocabulary import PATTERNS

__all__ = [
    "DEFAULT_HORIZONS",
    "DETECTOR_VERSION",
    "MiningResult",
    "PatternStats",
    "find_occurrences",
    "mine_bars",
    "mine_bars_dir",
    "mining_key",
    "validate_patterns",
]

DEFAULT_HORIZONS: tuple[int, ...] = (1, 5, 20)
"""Forward horizons mined by default, bars."""

DETECTOR_VERSION = 1
"""Bumped whenever a detector's definition or threshold changes (part of :func:`mining_key`)."""

OCCURRENCE_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Datetime("ms", "UTC"),
    "bar": pl.Int64(),
    "pattern": pl.String(),
    "direction": pl.Int8(),
}


@dataclass(frozen=True)
class MiningResult:
    """What a mining run found.

    Attributes
    ----------
    occurrences : polars DataFrame, one row per completion: ``symbol``, ``timeframe``, ``ts``
        (completion bar's open time, UTC ms), ``bar`` (its index in the series), ``pattern``,
        ``direction`` (+1/-1/0) and ``fwd_bps_h{h}`` (raw forward return per horizon, NaN
        without a complete horizon).
    stats : one :class:`PatternStats` per (timeframe, pattern, horizon), vocabulary order.
    keys : timeframe -> stable id of that timeframe's inputs (:func:`mining_key`); the store
        upserts each timeframe's rows under its own key, so re-mining the same bars never
        duplicates rows.
    horizons : the horizons mined, bars.
    """

    occurrences: pl.DataFrame
    stats: list[PatternStats]
    keys: dict[str, str]
    horizons: tuple[int, ...] = field(default=DEFAULT_HORIZONS)

    @property
    def key(self) -> str:
        """One id of the whole run (of the per-timeframe keys)."""
        if len(self.keys) == 1:
            return next(iter(self.keys.values()))
        blob = "|".join(f"{tf}={k}" for tf, k in sorted(self.keys.items()))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def stats_frame(self) -> pl.DataFrame:
        """The statistics as a polars DataFrame."""
        table: pl.DataFrame = stats_table(self.stats)
        return table

    def validated(self, min_count: int = 30, min_abs_t: float = 2.0) -> list[PatternStats]:
        """:func:`validate_patterns` of the statistics."""
        return validate_patterns(self.stats, min_count, min_abs_t)


def _check_horizons(horizons: Sequence[int]) -> tuple[int, ...]:
    hs = tuple(horizons)
    if not hs:
        raise PatternError("mining: at least one horizon (bars) is needed")
    for h in hs:
        if isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1:
            raise PatternError(f"mining: horizons must be ints >= 1 (bars), got {h!r}")
    if len(set(hs)) != len(hs):
        raise PatternError(f"mining: duplicate horizons in {hs}")
    return tuple(int(h) for h in hs)


def _arrays(bars: BarArrays | pl.DataFrame | Any) -> BarArrays:
    if isinstance(bars, BarArrays):
        return bars
    return BarArrays.from_frame(bars, "mid")


def _flags(b: BarArrays, window: int) -> dict[str, np.ndarray]:
    flags = detect_candles(b.open, b.high, b.low, b.close)
    flags.update(detect_chart_patterns(b.open, b.high, b.low, b.close, window=window))
    return flags


def find_occurrences(bars: BarArrays | pl.DataFrame, *, window: int = 64) -> pl.DataFrame:
    """Every completion of every vocabulary pattern in ``bars``.

    Parameters
    ----------
    bars : :class:`BarArrays`, or a bar frame (BAR_SCHEMA; its ``mid_*`` prices are used).
    window : the chart patterns' window, bars.

    Returns
    -------
    polars.DataFrame
        ``ts`` (completion bar's open time, UTC), ``bar`` (index), ``pattern``, ``direction``;
        sorted by bar, then vocabulary order.
    """
    b = _arrays(bars)
    flags = _flags(b, window)
    idx: list[np.ndarray] = []
    names: list[str] = []
    for name in PATTERNS:
        where = np.flatnonzero(flags[name])
        idx.append(where)
        names.extend([name] * len(where))
    bar = np.concatenate(idx) if idx else np.empty(0, dtype=np.int64)
    order = np.argsort(bar, kind="stable")
    bar = bar[order].astype(np.int64)
    pattern = np.array(names, dtype=object)[order] if names else np.array([], dtype=object)
    return pl.DataFrame(
        {
            "ts": pl.Series(b.ts[bar], dtype=pl.Int64).cast(pl.Datetime("ms", "UTC")),
            "bar": bar,
            "pattern": pl.Series(pattern.tolist(), dtype=pl.String),
            "direction": pl.Series([DIRECTIONS[p] for p in pattern], dtype=pl.Int8),
        },
        schema=OCCURRENCE_SCHEMA,
    )


def mining_key(
    symbol: str, timeframe: str, bars: BarArrays, horizons: Sequence[int], window: int
) -> str:
    """A stable 16-hex-digit id of a mining run's inputs: symbol, timeframe, the bars' span and
    count and a digest of their prices, horizons, window and :data:`DETECTOR_VERSION`."""
    digest = hashlib.sha256()
    for a in (b for b in (bars.ts, bars.open, bars.high, bars.low, bars.close)):
        digest.update(np.ascontiguousarray(a).tobytes())
    blob = json.dumps(
        {
            "symbol": symbol.upper(),
            "timeframe": timeframe,
            "n": len(bars),
            "first": int(bars.ts[0]) if len(bars) else None,
            "last": int(bars.ts[-1]) if len(bars) else None,
            "prices": digest.hexdigest(),
            "horizons": sorted(int(h) for h in horizons),
            "window": int(window),
            "detectors": DETECTOR_VERSION,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def mine_bars(
    bars: BarArrays | pl.DataFrame,
    *,
    symbol: str,
    timeframe: str,
    horizons: Sequence[int] = DEFAULT_HORIZONS,
    window: int = 64,
) -> MiningResult:
    """Occurrences and forward-return statistics of every pattern on one series of bars.

    Parameters
    ----------
    bars : :class:`BarArrays` (mid prices) or a bar frame (its ``mid_*`` columns are used).
    symbol, timeframe : labels of the rows (``"EURUSD"``, ``"1h"``).
    horizons : forward horizons, bars (each >= 1).
    window : the chart patterns' window, bars.

    Returns
    -------
    MiningResult
        Statistics for every (pattern, horizon), patterns without occurrences included
        (``count`` 0, NaN means), so a table always has the whole vocabulary.
    """
    hs = _check_horizons(horizons)
    b = _arrays(bars)
    occ = find_occurrences(b, window=window)
    fwd = {h: forward_returns(b.open, b.close, h) for h in hs}
    first = int(b.ts[0]) if len(b) else 0
    last = int(b.ts[-1]) if len(b) else 0
    stats: list[PatternStats] = []
    bar_col = occ["bar"].to_numpy()
    pat_col = occ["pattern"].to_numpy()
    for name in PATTERNS:
        where = bar_col[pat_col == name]
        for h in hs:
            stats.append(
                summarize(
                    name,
                    where,
                    fwd[h],
                    horizon=h,
                    symbol=symbol.upper(),
                    timeframe=timeframe,
                    first_ts_ms=first,
                    last_ts_ms=last,
                )
            )
    occ = (
        occ.with_columns(
            [pl.Series(f"fwd_bps_h{h}", fwd[h][bar_col], dtype=pl.Float64) for h in hs]
        )
        .with_columns(pl.lit(symbol.upper()).alias("symbol"), pl.lit(timeframe).alias("timeframe"))
        .select(["symbol", "timeframe", *OCCURRENCE_SCHEMA, *[f"fwd_bps_h{h}" for h in hs]])
    )
    return MiningResult(occ, stats, {timeframe: mining_key(symbol, timeframe, b, hs, window)}, hs)


def _mine_timeframe(
    bars_dir: str, timeframe: str, symbol: str | None, horizons: tuple[int, ...], window: int
) -> MiningResult:
    df = read_bars(bars_dir, timeframe, symbol)
    sym = symbol or _only_symbol(bars_dir, timeframe)
    return mine_bars(df, symbol=sym, timeframe=timeframe, horizons=horizons, window=window)


def _only_symbol(bars_dir: str, timeframe: str) -> str:
    return list_symbols(bars_dir, timeframe)[0]


def mine_bars_dir(
    bars_dir: str | Path,
    timeframes: Sequence[str],
    *,
    symbol: str | None = None,
    horizons: Sequence[int] = DEFAULT_HORIZONS,
    window: int = 64,
    use_ray: bool = False,
) -> MiningResult:
    """Mine every timeframe of a bars directory and combine the results.

    Parameters
    ----------
    bars_dir : a directory written by :func:`aio_ray.bars.build.build_bars`.
    timeframes : e.g. ``("15m", "1h", "4h")``.
    symbol : the symbol (None: the only one present).
    horizons, window : as :func:`mine_bars`.
    use_ray : run one Ray task per timeframe on the current cluster (``ray.init`` first);
        otherwise in this process. Same result either way.

    Returns
    -------
    MiningResult
        Occurrences concatenated (timeframe order), statistics of every timeframe, and the
        per-timeframe keys.
    """
    hs = _check_horizons(horizons)
    tfs = [parse_timeframe(t).name for t in timeframes]
    if not tfs:
        raise PatternError("mine_bars_dir: at least one timeframe is needed")
    root = str(bars_dir)
    if use_ray:
        # heavy: Ray is loaded only with use_ray=True
        import ray

        task = ray.remote(num_cpus=1)(_mine_timeframe)
        parts = ray.get([task.remote(root, tf, symbol, hs, window) for tf in tfs])
    else:
        parts = [_mine_timeframe(root, tf, symbol, hs, window) for tf in tfs]
    occ = pl.concat([p.occurrences for p in parts], how="vertical")
    stats = [s for p in parts for s in p.stats]
    keys = {tf: k for p in parts for tf, k in p.keys.items()}
    return MiningResult(occ, stats, keys, hs)
