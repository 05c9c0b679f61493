"""No look-ahead: what happens after bar t cannot change a trade that ended by bar t.

Property: cutting the bars after t, or replacing them with another path (and recomputing
the signals from a causal SMA crossover), leaves every trade closed before t identical
(bars, prices, size, P&L) and the equity curve before t identical. Sizing risks a fraction of
equity and costs are on, so equity-dependent decisions are covered too.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from aio_ray.bars.arrays import BarArrays
from aio_ray.strategies.engine import BacktestConfig, BacktestResult, cross_signals, run_backtest
from tests.support.engine_common import random_walk, sma, spread_around


def _run(b: BarArrays, fast: int, slow: int, stops: bool, model: str) -> BacktestResult:
    dist = 2.0 * sma(b.high - b.low, 5) if stops else None
    sig = cross_signals(
        sma(b.close, fast),
        sma(b.close, slow),
        stop_dist=dist,
        take_dist=None if dist is None else 3.0 * dist,
    )
    cfg = BacktestConfig(
        price_model=model,
        commission=3.0,
        slippage_points=0.5,  # type: ignore[arg-type]
        sizing="risk",
        risk_fraction=0.05,
        units=50_000.0,
    )
    return run_backtest(spread_around(b, 0.0001) if model == "bidask" else b, sig, cfg)


def _scrambled(b: BarArrays, t: int, seed: int) -> BarArrays:
    """Bars 0..t kept; after t, another random path starting at close[t]."""
    tail = random_walk(len(b) - t - 1, seed, vol=4e-4, start=float(b.close[t]))

    def cat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.concatenate([x[: t + 1], y])

    return BarArrays(
        b.ts,
        cat(b.open, tail.open),
        cat(b.high, tail.high),
        cat(b.low, tail.low),
        cat(b.close, tail.close),
    )


def _closed_by(res: BacktestResult, last_exit_bar: int) -> pl.DataFrame:
    return res.trades.filter(pl.col("exit_bar") <= last_exit_bar)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(80, 400),
    cut=st.floats(0.2, 0.9),
    fast=st.integers(2, 8),
    slow=st.integers(9, 30),
    stops=st.booleans(),
    model=st.sampled_from(["single", "bidask"]),
)
def test_future_bars_do_not_change_past_trades(
    seed: int, n: int, cut: float, fast: int, slow: int, stops: bool, model: str
) -> None:
    b = random_walk(n, seed)
    t = int(cut * n)
    full = _run(b, fast, slow, stops, model)

    # Cut after t: trades that exited before t and the equity before t are unchanged (bar t
    # itself is the cut run's last bar, where its open position is closed with "end").
    cut_run = _run(b[: t + 1], fast, slow, stops, model)
    assert _closed_by(cut_run, t - 1).equals(_closed_by(full, t - 1))
    np.testing.assert_array_equal(cut_run.equity[:t], full.equity[:t])

    # Another future after t: everything up to and including bar t is unchanged.
    other = _run(_scrambled(b, t, seed + 1), fast, slow, stops, model)
    assert _closed_by(other, t).equals(_closed_by(full, t))
    np.testing.assert_array_equal(other.equity[: t + 1], full.equity[: t + 1])
