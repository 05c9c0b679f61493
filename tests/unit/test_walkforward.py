"""Walk-forward folds (layout properties, worked examples, errors) and window evaluation
(causality, warm-up, holdout, objective)."""

from __future__ import annotations

import itertools
import math
from dataclasses import fields

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aio_ray.bars.arrays import BID_ASK_FIELDS, OHLC_FIELDS, BarArrays
from aio_ray.errors import AioError
from aio_ray.strategies.engine import BacktestConfig, run_backtest
from aio_ray.strategies.evaluate import (
    EvaluationError,
    ObjectiveConfig,
    evaluate_candidate,
    evaluate_holdout,
    evaluate_window,
    fold_value,
    objective_value,
    period_returns,
)
from aio_ray.strategies.families import get_family
from aio_ray.strategies.signals import Signals
from aio_ray.strategies.space import ParameterError, defaults
from aio_ray.strategies.walkforward import (
    SCHEMES,
    NotEnoughBarsError,
    Scheme,
    SearchError,
    holdout_size,
    make_folds,
    window_bounds,
)


def test_worked_example_rolling_layout() -> None:
    folds, holdout = make_folds(
        1000, 4, "rolling", oos_fraction=0.25, holdout_fraction=0.2, warmup_bars=50
    )
    # 200 holdout bars; 750 bars for the folds = 322 IS + 4 x 107 OOS (3:1 ratio, remainder to IS)
    assert holdout == (800, 1000)
    assert [f.oos_range for f in folds] == [(372, 479), (479, 586), (586, 693), (693, 800)]
    assert [f.is_range for f in folds] == [(50, 372), (157, 479), (264, 586), (371, 693)]


def test_worked_example_anchored_layout() -> None:
    folds, holdout = make_folds(
        1000, 4, "anchored", oos_fraction=0.25, holdout_fraction=0.2, warmup_bars=50
    )
    assert holdout == (800, 1000)
    assert [f.oos_range for f in folds] == [(372, 479), (479, 586), (586, 693), (693, 800)]
    assert [f.is_range for f in folds] == [(50, 372), (50, 479), (50, 586), (50, 693)]


def test_no_holdout_gives_empty_range_at_the_end() -> None:
    folds, holdout = make_folds(100, 2, holdout_fraction=0.0)
    assert holdout == (100, 100)
    assert folds[-1].oos_end == 100


@given(
    n_bars=st.integers(0, 4000),
    n_folds=st.integers(1, 8),
    scheme=st.sampled_from(SCHEMES),
    oos_fraction=st.floats(0.05, 0.95),
    holdout_fraction=st.sampled_from([0.0, 0.1, 0.2, 0.33]),
    warmup=st.integers(0, 300),
)
@settings(max_examples=1500, deadline=None)
def test_fold_layout_properties(
    n_bars: int,
    n_folds: int,
    scheme: Scheme,
    oos_fraction: float,
    holdout_fraction: float,
    warmup: int,
) -> None:
    try:
        folds, (h_start, h_end) = make_folds(
            n_bars,
            n_folds,
            scheme,
            oos_fraction=oos_fraction,
            holdout_fraction=holdout_fraction,
            warmup_bars=warmup,
        )
    except NotEnoughBarsError as exc:
        # Infeasible only when the bars left for the folds cannot hold the minimum windows.
        span = n_bars - holdout_size(n_bars, holdout_fraction) - warmup
        need = int(str(exc).split("at least ")[1].split()[0])
        assert span < need and f"{n_folds} fold(s)" in str(exc)
        # and the stated minimum is indeed enough
        folds, _ = make_folds(
            warmup + need,
            n_folds,
            scheme,
            oos_fraction=oos_fraction,
            holdout_fraction=0.0,
            warmup_bars=warmup,
        )
        assert len(folds) == n_folds
        return

    assert len(folds) == n_folds
    # holdout: the last bars, untouched by any window
    assert h_end == n_bars
    assert h_start == n_bars - holdout_size(n_bars, holdout_fraction)
    for f in folds:
        assert f.oos_end <= h_start and f.is_end <= h_start
    # OOS windows: equal length, non-overlapping, contiguous, ending at the holdout
    lengths = {f.oos_len for f in folds}
    assert len(lengths) == 1 and min(lengths) >= 2
    for a, b in itertools.pairwise(folds):
        assert a.oos_end == b.oos_start
    assert folds[-1].oos_end == h_start
    # IS precedes its OOS, never reaches into the warm-up, and the first fold starts after it
    for i, f in enumerate(folds):
        assert f.index == i
        assert warmup <= f.is_start < f.is_end == f.oos_start
        assert f.is_len >= 2
    assert folds[0].is_start == warmup
    if scheme == "rolling":
        assert len({f.is_len for f in folds}) == 1
    else:
        assert all(f.is_start == warmup for f in folds)
    # coverage: warm-up + first IS + OOS tiles + holdout account for every bar
    assert warmup + folds[0].is_len + n_folds * folds[0].oos_len + (h_end - h_start) == n_bars
    # the OOS share of the first window is oos_fraction, up to the rounding remainder
    ratio = (1 - oos_fraction) / oos_fraction
    oos_len, is_len = folds[0].oos_len, folds[0].is_len
    assert ratio * oos_len - 1e-6 <= is_len
    # ...which may grow by the rounding remainder, or to keep the 2-bar minimum IS window
    assert is_len < max(ratio * (oos_len + 1), 2) + n_folds + 1e-6


def test_too_few_bars_is_a_specific_error_naming_the_shortfall() -> None:
    with pytest.raises(NotEnoughBarsError) as info:
        make_folds(40, 4, "rolling", oos_fraction=0.25, holdout_fraction=0.2, warmup_bars=20)
    msg = str(info.value)
    assert "40 bars" in msg and "4 fold(s)" in msg and "20 warm-up" in msg and "at least" in msg
    assert isinstance(info.value, SearchError) and isinstance(info.value, AioError)


def test_minimum_span_from_the_error_message_is_enough() -> None:
    with pytest.raises(NotEnoughBarsError) as info:
        make_folds(10, 3, oos_fraction=0.3, holdout_fraction=0.0, warmup_bars=5)
    need = int(str(info.value).split("at least ")[1].split()[0])
    folds, _ = make_folds(5 + need, 3, oos_fraction=0.3, holdout_fraction=0.0, warmup_bars=5)
    assert len(folds) == 3
    with pytest.raises(NotEnoughBarsError):
        make_folds(5 + need - 1, 3, oos_fraction=0.3, holdout_fraction=0.0, warmup_bars=5)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"scheme": "expanding"}, "scheme"),
        ({"n_folds": 0}, "n_folds"),
        ({"oos_fraction": 1.0}, "oos_fraction"),
        ({"holdout_fraction": 1.0}, "holdout_fraction"),
        ({"warmup_bars": -1}, "warmup_bars"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs: dict, word: str) -> None:
    args = {"n_bars": 1000, "n_folds": 3} | kwargs
    with pytest.raises(SearchError, match=word):
        make_folds(**args)


def test_window_bounds_cut_signals_at_the_window_end() -> None:
    assert window_bounds(10, 20) == (20, 10, 20)
    with pytest.raises(SearchError):
        window_bounds(5, 5)


# ----------------------------------------------------------------------------- evaluation


HOUR = 3_600_000
MA = {"fast": 8, "slow": 60, "ma": "sma", "atr_length": 14, "stop_atr": 2.0, "take_atr": 0.0}


def market_bars(n: int, seed: int, start_close: float = 1.10) -> BarArrays:
    """A 1h random walk with a 0.2-pip spread: mid OHLC plus bid/ask OHLC."""
    rng = np.random.default_rng(seed)
    close = start_close * np.exp(np.cumsum(rng.normal(0.0, 0.001, n)))
    open_ = np.concatenate(([start_close], close[:-1]))
    high = np.maximum(open_, close) + np.abs(rng.normal(0.0, 0.0003, n))
    low = np.minimum(open_, close) - np.abs(rng.normal(0.0, 0.0003, n))
    ts = 1_600_041_600_000 + np.arange(n, dtype=np.int64) * HOUR
    half = 0.00001
    return BarArrays(
        ts,
        open_,
        high,
        low,
        close,
        bid_open=open_ - half,
        bid_high=high - half,
        bid_low=low - half,
        bid_close=close - half,
        ask_open=open_ + half,
        ask_high=high + half,
        ask_low=low + half,
        ask_close=close + half,
        timeframe="1h",
    )


def splice(a: BarArrays, b: BarArrays, at: int) -> BarArrays:
    """Bars of ``a`` before ``at`` and of ``b`` from ``at`` on (same timestamps)."""

    def cat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.concatenate((x[:at], y[at:]))

    return BarArrays(
        a.ts.copy(),
        *(cat(getattr(a, f), getattr(b, f)) for f in OHLC_FIELDS),
        **{f: cat(getattr(a, f), getattr(b, f)) for f in BID_ASK_FIELDS},
        timeframe="1h",
    )


def test_a_fold_never_depends_on_bars_after_its_window() -> None:
    bars = market_bars(1600, seed=1)
    folds, _ = make_folds(
        len(bars), 4, "rolling", oos_fraction=0.25, holdout_fraction=0.0, warmup_bars=80
    )
    cut = folds[1].oos_end
    other = splice(bars, market_bars(1600, seed=99, start_close=1.30), cut)
    a = evaluate_candidate({"1h": bars}, "ma_cross", MA, "1h", folds)
    b = evaluate_candidate({"1h": other}, "ma_cross", MA, "1h", folds)
    for k in (0, 1):
        assert a.folds[k] == b.folds[k]
    assert a.folds[2].is_metrics == b.folds[2].is_metrics  # IS of fold 2 ends at the cut
    # ...while folds after the cut see the new bars
    assert a.folds[3].oos_metrics != b.folds[3].oos_metrics
    assert a.last_ts == b.last_ts == int(bars.ts[folds[-1].oos_end - 1])


def test_window_signals_are_computed_on_the_history_before_it() -> None:
    bars = market_bars(800, seed=2)
    start, end = 400, 600
    cfg = BacktestConfig()
    res = evaluate_window(bars, "ma_cross", MA, start, end, cfg)
    full = get_family("ma_cross").signals(bars, MA)  # causal family: same values up to `end`
    cut = Signals(*(getattr(full, f.name)[start:end] for f in fields(Signals)))
    ref = run_backtest(bars[start:end], cut, cfg)
    assert res.metrics == ref.metrics
    assert res.trades.equals(ref.trades)
    # a window computed from its own bars only would still be warming up its 60-bar MA
    cold = get_family("ma_cross").signals(bars[start:end], MA)
    assert not np.array_equal(cold.long_entry | cold.short_entry, cut.long_entry | cut.short_entry)


def test_holdout_is_traded_only_inside_its_window() -> None:
    bars = market_bars(1000, seed=3)
    _folds, (h0, h1) = make_folds(len(bars), 3, holdout_fraction=0.25, warmup_bars=60)
    h = evaluate_holdout(bars, "ma_cross", MA, (h0, h1))
    assert (h0, h1) == (750, 1000) and h.window == (750, 1000)
    assert h.trades.height == int(h.metrics["trades"]) > 0
    entry, exit_ = h.trades["entry_bar"].to_numpy(), h.trades["exit_bar"].to_numpy()
    assert entry.min() >= h0 and exit_.max() < h1
    assert h.trades["entry_ts"].dt.epoch("ms").to_numpy().min() >= int(bars.ts[h0])
    with pytest.raises(EvaluationError, match="fewer than 2 bars"):
        evaluate_holdout(bars, "ma_cross", MA, (1000, 1000))


def test_period_returns_compound_bar_returns_within_each_utc_day() -> None:
    day = 86_400_000
    ts = np.array([0, HOUR, 2 * HOUR, day, day + HOUR, 3 * day], dtype=np.int64) + 5 * day
    r = np.array([0.01, -0.02, 0.03, 0.10, -0.10, 0.0])
    keys, out = period_returns(ts, r)
    assert keys.tolist() == [5 * day, 6 * day, 8 * day]
    np.testing.assert_allclose(out, [1.01 * 0.98 * 1.03 - 1, 1.1 * 0.9 - 1, 0.0])
    k2, o2 = period_returns(np.empty(0, dtype=np.int64), np.empty(0))
    assert k2.size == 0 and o2.size == 0


def test_objective_is_mean_fold_value_minus_dispersion_with_few_trade_folds_penalised() -> None:
    cfg = ObjectiveConfig(
        min_trades=3, few_trades_penalty=1.0, dispersion_penalty=0.5, sharpe_cap=10.0
    )
    assert fold_value(2.0, 5, cfg) == 2.0
    assert fold_value(2.0, 2, cfg) == -1.0  # positive Sharpe from 2 trades earns nothing
    assert fold_value(-3.0, 0, cfg) == -4.0
    assert fold_value(math.nan, 0, cfg) == -1.0
    assert fold_value(50.0, 10, cfg) == 10.0  # capped
    v = np.array([2.0, 1.0, -1.0])
    assert objective_value([2.0, 1.0, 4.0], [5, 9, 1], cfg) == pytest.approx(
        v.mean() - 0.5 * v.std()
    )
    assert objective_value([], [], cfg) == -math.inf


def test_candidate_carries_fold_rows_and_ranking_inputs() -> None:
    bars = market_bars(1200, seed=4)
    folds, _ = make_folds(len(bars), 3, holdout_fraction=0.0, warmup_bars=60)
    res = evaluate_candidate({"1h": bars}, "ma_cross", MA, "1h", folds)
    rows = res.fold_rows()
    assert [(r["fold"], r["sample"]) for r in rows] == [
        (k, s) for k in range(3) for s in ("is", "oos")
    ]
    assert res.oos_trades == sum(f.trades for f in res.fold_oos())
    assert res.moments.n_obs == len(res.period_returns) > 10
    assert res.oos_max_drawdown == max(f.oos_metrics["max_drawdown"] for f in res.folds)


def test_invalid_candidates_raise_specific_errors() -> None:
    bars = market_bars(600, seed=5)
    folds, _ = make_folds(len(bars), 2, holdout_fraction=0.0, warmup_bars=60)
    with pytest.raises(EvaluationError, match="no bars for timeframe '4h'"):
        evaluate_candidate({"1h": bars}, "ma_cross", MA, "4h", folds)
    with pytest.raises(ParameterError, match="slow"):
        evaluate_candidate({"1h": bars}, "ma_cross", {**MA, "slow": 4}, "1h", folds)
    with pytest.raises(EvaluationError, match="outside"):
        evaluate_window(bars, "ma_cross", defaults("ma_cross"), 500, 700, BacktestConfig())
