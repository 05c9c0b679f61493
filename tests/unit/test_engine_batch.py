"""The parallel batch paths: every row equals the single run of the same parameter set."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from aio_ray.strategies import _engine_layout
from aio_ray.strategies.engine import (
    METRIC_NAMES,
    BacktestConfig,
    BacktestError,
    cross_signals,
    metrics_frame,
    run_backtest,
    run_batch,
    run_crossover_batch,
)
from tests.support.engine_common import random_walk, sma, spread_around

COSTS = BacktestConfig(commission=3.5, slippage_points=1.0, sizing="risk", risk_fraction=0.01)


def _metrics_row(res) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.array([res.metrics[k] for k in METRIC_NAMES])


@pytest.fixture(scope="module")
def market():  # type: ignore[no-untyped-def]
    # Longer than two tiles, and not a multiple of the tile or block length, so the batch
    # path suspends and resumes every parameter set's state.
    n = 2 * _engine_layout.TILE + 777
    mid = random_walk(n, seed=11)
    ba = spread_around(mid, 0.0001)
    lengths = [5, 8, 13, 21, 34]
    lines = np.vstack([sma(mid.close, k) for k in lengths])
    dist = sma(mid.high - mid.low, 14)
    return ba, lines, dist


def test_cross_signals_follow_tradingview_crossover() -> None:
    f = np.array([np.nan, 1.0, 2.0, 3.0, 2.0, 1.0, 1.0, 2.0])
    s = np.array([2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 1.0, 1.0])
    sig = cross_signals(f, s)
    # over at 3 (3 > 2, previous 2 <= 2); under at 5 (1 < 2, previous 2 >= 2); 7: previous
    # equal (1 <= 1) and now above: over. NaN never crosses.
    assert np.flatnonzero(sig.long_entry).tolist() == [3, 7]
    assert np.flatnonzero(sig.short_entry).tolist() == [5]
    long_only = cross_signals(f, s, "long")
    assert np.flatnonzero(long_only.long_exit).tolist() == [5] and not long_only.short_entry.any()
    short_only = cross_signals(f, s, "short")
    assert (
        np.flatnonzero(short_only.short_exit).tolist() == [3, 7] and not short_only.long_entry.any()
    )


def test_run_batch_rows_equal_single_runs(market) -> None:  # type: ignore[no-untyped-def]
    ba, lines, dist = market
    sets = [
        cross_signals(lines[0], lines[2], stop_dist=2 * dist, take_dist=3 * dist),
        cross_signals(lines[1], lines[4], "long", stop_dist=dist),
        cross_signals(lines[2], lines[3], "short"),
        cross_signals(lines[0], lines[4]),
    ]
    out = run_batch(ba, sets, COSTS)
    assert out.shape == (4, len(METRIC_NAMES))
    for p, sig in enumerate(sets):
        single = _metrics_row(run_backtest(ba, sig, COSTS))
        np.testing.assert_allclose(out[p], single, rtol=1e-12, atol=1e-12, err_msg=f"set {p}")
    assert np.all(out[:, METRIC_NAMES.index("trades")] > 10)


@pytest.mark.parametrize("direction", ["both", "long", "short"])
def test_crossover_batch_rows_equal_single_runs_of_cross_signals(market, direction: str) -> None:  # type: ignore[no-untyped-def]
    ba, lines, dist = market
    fast = np.array([0, 0, 1, 2, 1])
    slow = np.array([2, 4, 3, 4, 4])
    stop_mult = np.array([2.0, np.nan, 1.5, 3.0, np.nan])
    take_mult = np.array([4.0, 2.0, np.nan, np.nan, np.nan])
    prepared = ba  # validated on the first run, cached on the bars for the rest
    out = run_crossover_batch(
        prepared,
        lines,
        fast,
        slow,
        COSTS,
        base_dist=dist,
        stop_mult=stop_mult,
        take_mult=take_mult,
        direction=direction,
    )  # type: ignore[arg-type]
    for p in range(fast.size):
        sig = cross_signals(
            lines[fast[p]],
            lines[slow[p]],
            direction,  # type: ignore[arg-type]
            stop_dist=stop_mult[p] * dist,
            take_dist=take_mult[p] * dist,
        )
        single = _metrics_row(run_backtest(prepared, sig, COSTS))
        np.testing.assert_allclose(out[p], single, rtol=1e-12, atol=1e-12, err_msg=f"set {p}")


def test_batch_result_does_not_depend_on_the_thread_count(market) -> None:  # type: ignore[no-untyped-def]
    mid, lines, dist = market
    fast = np.array([0, 1, 2, 0, 1, 3, 0])
    slow = np.array([2, 3, 4, 4, 4, 4, 1])
    cfg = BacktestConfig(price_model="single", commission=0.002, commission_type="percent")
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run_crossover_batch(mid, lines, fast, slow, cfg, base_dist=dist, stop_mult=2.0)
    finally:
        numba.set_num_threads(before)
    many = run_crossover_batch(mid, lines, fast, slow, cfg, base_dist=dist, stop_mult=2.0)
    np.testing.assert_array_equal(one, many)
    chunked = run_crossover_batch(
        mid, lines, fast, slow, cfg, base_dist=dist, stop_mult=2.0, threads=1
    )
    np.testing.assert_array_equal(chunked, many)


def test_shared_stop_distances_are_stored_once_and_give_the_same_rows(market) -> None:  # type: ignore[no-untyped-def]
    ba, lines, dist = market
    a = cross_signals(lines[0], lines[3], stop_dist=dist)
    b = cross_signals(lines[1], lines[3], stop_dist=dist)
    both = run_batch(ba, [a, b], COSTS)
    np.testing.assert_allclose(both[1], run_batch(ba, [b], COSTS)[0], rtol=1e-12)


def test_batch_validation_names_the_argument(market) -> None:  # type: ignore[no-untyped-def]
    ba, lines, dist = market
    idx = np.array([0])
    with pytest.raises(BacktestError, match="signals: empty sequence"):
        run_batch(ba, [], COSTS)
    with pytest.raises(BacktestError, match=r"fast: row indices must lie in \[0, 5\)"):
        run_crossover_batch(ba, lines, np.array([5]), idx, COSTS)
    with pytest.raises(BacktestError, match="slow: expected a 1-D integer array"):
        run_crossover_batch(ba, lines, idx, np.array([1.0]), COSTS)
    with pytest.raises(BacktestError, match="base_dist: required"):
        run_crossover_batch(ba, lines, idx, np.array([1]), COSTS, stop_mult=2.0)
    with pytest.raises(BacktestError, match=r"take_mult: expected a scalar or 1 values"):
        run_crossover_batch(
            ba, lines, idx, np.array([1]), COSTS, base_dist=dist, take_mult=np.ones(2)
        )
    with pytest.raises(BacktestError, match=r"lines: expected shape \(K, "):
        run_crossover_batch(ba, lines[:, :10], idx, np.array([1]), COSTS)
    with pytest.raises(BacktestError, match="direction: 'up' is not one of"):
        run_crossover_batch(ba, lines, idx, np.array([1]), COSTS, direction="up")  # type: ignore[arg-type]


def test_metrics_frame_labels_the_matrix(market) -> None:  # type: ignore[no-untyped-def]
    import polars as pl

    ba, lines, _ = market
    out = run_crossover_batch(ba, lines, np.array([0, 1]), np.array([3, 4]), COSTS)
    frame = metrics_frame(out, pl.DataFrame({"fast": [5, 8], "slow": [21, 34]}))
    assert frame.columns == ["fast", "slow", *METRIC_NAMES]
    assert frame["trades"].to_list() == out[:, METRIC_NAMES.index("trades")].tolist()
