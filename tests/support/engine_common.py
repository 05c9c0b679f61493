"""Shared builders for the engine tests (hand-made bars, signals, a causal SMA).

Holds no tests itself; the test_engine_*.py modules import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from aio_ray.bars.arrays import BarArrays
from aio_ray.strategies.engine import BacktestConfig
from aio_ray.strategies.signals import Signals

T0 = 1_548_979_200_000  # 2019-02-01 00:00 UTC, ms
MINUTE = 60_000

NO_COSTS = {"commission": 0.0, "slippage_points": 0.0, "swap_long": 0.0, "swap_short": 0.0}
"""Every cost off: the default config charges ECN costs (commission, slippage, swap)."""


def costless(**kw: object) -> BacktestConfig:
    """``BacktestConfig(**kw)`` with every cost 0 unless ``kw`` sets it (fill-rule tests pin
    prices, peers that model fewer costs compare without them)."""
    return BacktestConfig(**{**NO_COSTS, **kw})  # type: ignore[arg-type]


def bars(
    rows: Sequence[tuple[float, float, float, float]], t0: int = T0, step: int = MINUTE
) -> BarArrays:
    """Bars from (open, high, low, close) rows, one minute apart."""
    a = np.asarray(rows, dtype=np.float64)
    ts = t0 + np.arange(len(rows), dtype=np.int64) * step
    return BarArrays(ts, a[:, 0].copy(), a[:, 1].copy(), a[:, 2].copy(), a[:, 3].copy())


def flat_bars(n: int, price: float = 1.1) -> BarArrays:
    """``n`` bars that never move (open = high = low = close = price)."""
    return bars([(price, price, price, price)] * n)


def signals(
    n: int,
    long_entry: Iterable[int] = (),
    short_entry: Iterable[int] = (),
    long_exit: Iterable[int] = (),
    short_exit: Iterable[int] = (),
    stop: dict[int, float] | None = None,
    take: dict[int, float] | None = None,
) -> Signals:
    """Signals true on the given bar indices; stop/take distances per signal bar."""

    def flags(idx: Iterable[int]) -> np.ndarray:
        f = np.zeros(n, dtype=bool)
        f[list(idx)] = True
        return f

    sd = np.full(n, np.nan)
    td = np.full(n, np.nan)
    for i, d in (stop or {}).items():
        sd[i] = d
    for i, d in (take or {}).items():
        td[i] = d
    return Signals(
        flags(long_entry), flags(short_entry), flags(long_exit), flags(short_exit), sd, td
    )


def spread_around(b: BarArrays, spread: float) -> BarArrays:
    """``b`` (taken as mid) with bid/ask OHLC a fixed ``spread`` apart, centred on it."""
    h = spread / 2
    return BarArrays(
        b.ts,
        b.open,
        b.high,
        b.low,
        b.close,
        bid_open=b.open - h,
        bid_high=b.high - h,
        bid_low=b.low - h,
        bid_close=b.close - h,
        ask_open=b.open + h,
        ask_high=b.high + h,
        ask_low=b.low + h,
        ask_close=b.close + h,
    )


def random_walk(n: int, seed: int, vol: float = 2e-4, start: float = 1.10) -> BarArrays:
    """Seeded random-walk 1m bars with consistent OHLC (prices rounded to 1e-5)."""
    rng = np.random.default_rng(seed)
    sub = start * np.exp(np.cumsum(rng.standard_normal(n * 4) * vol / 2)).reshape(n, 4)
    c = np.round(sub[:, -1], 5)
    o = np.round(np.concatenate(([start], sub[:-1, -1])), 5)
    h = np.maximum(np.maximum(o, c), np.round(sub.max(axis=1), 5))
    lo = np.minimum(np.minimum(o, c), np.round(sub.min(axis=1), 5))
    ts = T0 + np.arange(n, dtype=np.int64) * MINUTE
    return BarArrays(ts, o, h, lo, c)


def sma(x: np.ndarray, k: int) -> np.ndarray:
    """Causal simple moving average over ``k`` bars (NaN for the first ``k - 1``)."""
    out = np.full(x.shape[0], np.nan)
    for i in range(k - 1, x.shape[0]):
        out[i] = x[i - k + 1 : i + 1].mean()
    return out
