"""Metric formulas against direct recomputation, and the kernel's streamed metrics against them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aio_ray.bars.timeframes import infer_bar_ms
from aio_ray.strategies import metrics as mt
from aio_ray.strategies.engine import BacktestConfig, cross_signals, run_backtest
from tests.support.engine_common import random_walk, signals, sma, spread_around


def test_max_drawdown_of_a_known_curve() -> None:
    eq = np.array([100.0, 110.0, 99.0, 120.0, 90.0, 130.0])
    frac, cash = mt.max_drawdown(eq, initial=100.0)
    assert cash == 30.0  # 120 -> 90
    assert frac == 0.25  # 30 / 120 beats 11 / 110
    # The running peak starts at the initial capital, even if the curve never reaches it.
    frac, cash = mt.max_drawdown(np.array([95.0, 97.0, 80.0]), initial=100.0)
    assert (frac, cash) == (0.2, 20.0)
    assert mt.max_drawdown(np.array([100.0, 101.0, 102.0]), 100.0) == (0.0, 0.0)


def test_returns_sharpe_and_sortino_match_the_textbook_formulas() -> None:
    eq = np.array([100.0, 101.0, 99.0, 102.0, 102.0, 100.0])
    r = mt.bar_returns(eq)
    np.testing.assert_allclose(
        r, [0.01, 99 / 101 - 1, 102 / 99 - 1, 0.0, 100 / 102 - 1], rtol=1e-15
    )
    bpy = mt.bars_per_year(3_600_000)  # 1h bars
    assert bpy == 6_240.0
    mean = sum(r) / len(r)
    sd = math.sqrt(sum((x - mean) ** 2 for x in r) / (len(r) - 1))
    assert mt.sharpe_ratio(r, bpy) == pytest.approx(mean / sd * math.sqrt(6_240), rel=1e-12)
    down = math.sqrt(sum(min(x, 0.0) ** 2 for x in r) / len(r))
    assert mt.sortino_ratio(r, bpy) == pytest.approx(mean / down * math.sqrt(6_240), rel=1e-12)
    assert math.isnan(mt.sharpe_ratio(np.zeros(10), bpy))
    assert math.isnan(mt.sortino_ratio(np.full(10, 0.01), bpy))  # no losing bar
    # After the account is wiped out, returns are 0 (not a division by a non-positive equity).
    assert mt.bar_returns(np.array([100.0, -5.0, -5.0])).tolist() == [-1.05, 0.0]


def test_trade_statistics() -> None:
    pnl = np.array([10.0, -5.0, 5.0, -2.5])
    assert mt.profit_factor(pnl) == 2.0
    assert mt.profit_factor(np.array([1.0, 2.0])) == math.inf
    assert math.isnan(mt.profit_factor(np.array([])))
    assert mt.win_rate(np.array([10.0, -5.0, 0.0])) == pytest.approx(1 / 3)
    assert math.isnan(mt.win_rate(np.array([])))
    # Bars 2..4 held (exit by a stop inside bar 4), bars 6..7 held (exit at bar 8's open).
    assert mt.exposure(np.array([2, 6]), np.array([4, 8]), np.array([False, True]), 10) == 0.5


def test_cagr_and_annualization_constants() -> None:
    assert mt.cagr(100.0, 121.0, 2.0) == pytest.approx(0.1, rel=1e-12)
    assert mt.cagr(100.0, -1.0, 2.0) == -1.0
    assert math.isnan(mt.cagr(100.0, 110.0, 0.0))
    assert mt.bars_per_year(60_000) == 374_400.0  # 260 days x 1,440 minutes
    assert mt.bars_per_year(86_400_000) == 260.0
    # A weekend gap does not change the inferred spacing.
    ts = np.concatenate([np.arange(10) * 60_000, 3 * 86_400_000 + np.arange(10) * 60_000])
    assert infer_bar_ms(ts) == 60_000
    assert mt.span_years(
        np.array([0, 365 * 86_400_000 - 86_400_000 // 4]), 86_400_000 // 2
    ) == pytest.approx((365 * 86_400_000 + 86_400_000 // 4) / mt.MS_PER_YEAR)


def _recompute(res, cfg: BacktestConfig) -> dict[str, float]:  # type: ignore[no-untyped-def]
    t = res.trades
    bar_ms = infer_bar_ms(res.ts)
    return mt.compute_metrics(
        res.equity,
        t["pnl"].to_numpy(),
        t["entry_bar"].to_numpy(),
        t["exit_bar"].to_numpy(),
        t["exit_reason"].is_in(["signal", "reverse"]).to_numpy(),
        cfg.initial_capital,
        mt.bars_per_year(bar_ms),
        mt.span_years(res.ts, bar_ms),
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_streamed_kernel_metrics_equal_the_numpy_formulas(seed: int) -> None:
    mid = random_walk(3_000, seed)
    ba = spread_around(mid, 0.0001)
    dist = 4 * sma(mid.high - mid.low, 14)
    sig = cross_signals(sma(mid.close, 8), sma(mid.close, 30), stop_dist=dist, take_dist=2 * dist)
    # the default swap too (the 3,000 bars cross the Friday 17:00 New York rollover)
    cfg = BacktestConfig(commission=3.5, slippage_points=1.0, sizing="risk", risk_fraction=0.02)
    res = run_backtest(ba, sig, cfg)
    assert res.metrics["trades"] > 20 and set(res.trades["exit_reason"]) >= {
        "stop",
        "take",
        "reverse",
    }
    want = _recompute(res, cfg)
    for name in mt.METRIC_NAMES:
        assert res.metrics[name] == pytest.approx(want[name], rel=1e-9, abs=1e-12), name
    assert res.metrics["net_profit"] == pytest.approx(res.trades["pnl"].sum(), abs=1e-7)


def test_metrics_of_a_hand_made_run() -> None:
    # Long 100,000 units from bar 2 (1.1012) to bar 4 (1.1027): equity 10000, 10000, 10030,
    # 10130, 10150, 10150 (see test_engine.py).
    from test_engine import BASE

    from tests.support.engine_common import bars, costless

    cfg = costless(price_model="single")
    res = run_backtest(bars(BASE), signals(6, long_entry=[1], long_exit=[3]), cfg)
    m = res.metrics
    assert m["net_profit"] == pytest.approx(150.0, abs=1e-6)
    assert m["max_drawdown"] == 0.0 and m["max_drawdown_cash"] == 0.0
    assert m["trades"] == 1 and m["win_rate"] == 1.0 and m["profit_factor"] == math.inf
    assert m["exposure"] == 2 / 6  # bars 2 and 3; bar 4 exits at its open
    r = np.array([0.0, 30 / 10_000, 100 / 10_030, 20 / 10_130, 0.0])
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(374_400), rel=1e-6)
