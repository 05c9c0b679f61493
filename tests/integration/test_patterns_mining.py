"""Pattern mining: occurrences and forward-return statistics checked against a direct
computation (scipy's Welch test as the oracle of the t-statistic), the validator, and the
Ray path over a real bars directory built from synthetic ticks."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from scipy import stats as sps

from aio_ray.bars.arrays import BarArrays
from aio_ray.bars.resample import bars_from_ticks
from aio_ray.bars.store import write_bars
from aio_ray.patterns.detectors import PatternError, detect_candles, detect_chart_patterns
from aio_ray.patterns.mining import find_occurrences, mine_bars, mine_bars_dir, mining_key
from aio_ray.patterns.stats import (
    DIRECTIONS,
    PatternStats,
    forward_returns,
    non_overlapping,
    validate_patterns,
)
from aio_ray.patterns.vocabulary import BEARISH, BULLISH, PATTERNS

HORIZONS = (1, 5, 20)


def same_stats(a: list[PatternStats], b: list[PatternStats]) -> bool:
    """Field-by-field equality, NaN equal to NaN (repr of every value)."""
    return len(a) == len(b) and all(
        repr(x.to_dict()) == repr(y.to_dict()) for x, y in zip(a, b, strict=True)
    )


@pytest.fixture(scope="module")
def bar_tables() -> dict[str, pa.Table]:
    """Three days of the product's synthetic EUR/USD ticks as 1m, 5m and 15m bars."""
    from aio_ray.data.synthetic_ticks import generate

    ticks = pa.concat_tables(
        [t for _, t in generate("EURUSD", dt.date(2025, 1, 6), dt.date(2025, 1, 9))]
    )
    return bars_from_ticks(ticks, ["1m", "5m", "15m"])


@pytest.fixture(scope="module")
def bars_1m(bar_tables: dict[str, pa.Table]) -> BarArrays:
    return BarArrays.from_frame(pl.from_arrow(bar_tables["1m"]), "mid")  # type: ignore[arg-type]


def test_forward_return_starts_at_the_next_bar_open() -> None:
    o = np.array([1.0, 1.1, 1.2, 1.3, 1.4])
    c = np.array([1.05, 1.15, 1.25, 1.35, 1.45])
    r1 = forward_returns(o, c, 1)
    r2 = forward_returns(o, c, 2)
    # bar 0, h=1: enter at open[1]=1.1, exit at close[1]=1.15
    assert r1[0] == pytest.approx((1.15 / 1.1 - 1) * 1e4)
    assert r2[0] == pytest.approx((1.25 / 1.1 - 1) * 1e4)
    assert np.isnan(r1[-1]) and np.isnan(r2[-2:]).all() and np.isfinite(r2[:3]).all()


def test_non_overlapping_keeps_disjoint_forward_windows() -> None:
    assert non_overlapping(np.array([0, 1, 4, 5, 9, 10, 20]), 5).tolist() == [0, 3, 5, 6]
    assert non_overlapping(np.array([3, 4, 5]), 1).tolist() == [0, 1, 2]


def _direct(b: BarArrays, name: str, h: int, window: int = 64) -> dict[str, float]:
    """The statistics of one pattern computed the slow, obvious way."""
    flags = {
        **detect_candles(b.open, b.high, b.low, b.close),
        **detect_chart_patterns(b.open, b.high, b.low, b.close, window=window),
    }
    n = len(b)
    sign = 1.0 if name in BULLISH else -1.0 if name in BEARISH else 1.0
    rets, used = [], []
    for t in np.flatnonzero(flags[name]):
        if t + h < n:
            rets.append(sign * (b.close[t + h] / b.open[t + 1] - 1.0) * 1e4)
            used.append(t)
    ind, last = [], -(10**9)
    for t, r in zip(used, rets, strict=True):
        if t - last >= h:
            ind.append(r)
            last = t
    base = [sign * (b.close[t + h] / b.open[t + 1] - 1.0) * 1e4 for t in range(n - h)]
    base_ind = [sign * (b.close[t + h] / b.open[t + 1] - 1.0) * 1e4 for t in range(0, n - h, h)]
    if len(ind) >= 2:
        t_stat = float(sps.ttest_ind(ind, base_ind, equal_var=False).statistic)
    else:
        t_stat = math.nan
    return {
        "occurrences": int(flags[name].sum()),
        "count": len(rets),
        "n_independent": len(ind),
        "mean_bps": float(np.mean(rets)) if rets else math.nan,
        "hit_rate": float(np.mean(np.array(rets) > 0)) if rets else math.nan,
        "t_stat": t_stat,
        "baseline_count": len(base),
        "baseline_mean_bps": float(np.mean(base)),
        "baseline_hit_rate": float(np.mean(np.array(base) > 0)),
    }


def test_statistics_match_a_direct_computation(bars_1m: BarArrays) -> None:
    res = mine_bars(bars_1m, symbol="eurusd", timeframe="1m", horizons=HORIZONS)
    assert len(res.stats) == len(PATTERNS) * len(HORIZONS)
    checked = 0
    for s in res.stats:
        want = _direct(bars_1m, s.pattern, s.horizon)
        assert s.symbol == "EURUSD" and s.timeframe == "1m"
        assert s.direction == DIRECTIONS[s.pattern]
        assert s.bars == len(bars_1m)
        for key, value in want.items():
            got = getattr(s, key)
            if isinstance(value, float) and math.isnan(value):
                assert math.isnan(got), (s.pattern, s.horizon, key)
            else:
                assert got == pytest.approx(value, rel=1e-9, abs=1e-9), (s.pattern, s.horizon, key)
        checked += s.count > 0 and math.isfinite(s.t_stat)
    assert checked >= 20  # most (pattern, horizon) pairs have occurrences and a t


def test_occurrences_table_lists_every_completion_with_its_forward_returns(
    bars_1m: BarArrays,
) -> None:
    res = mine_bars(bars_1m, symbol="EURUSD", timeframe="1m", horizons=(5,))
    occ = res.occurrences
    assert occ.columns == ["symbol", "timeframe", "ts", "bar", "pattern", "direction", "fwd_bps_h5"]
    assert occ.schema["ts"] == pl.Datetime("ms", "UTC")
    flags = find_occurrences(bars_1m)
    assert occ.height == flags.height
    for name in PATTERNS:
        sub = occ.filter(pl.col("pattern") == name)
        assert sub.height == next(s.occurrences for s in res.stats if s.pattern == name)
    bar = occ["bar"].to_numpy()
    assert np.all(np.diff(bar) >= 0)
    assert np.array_equal(occ["ts"].dt.epoch("ms").to_numpy(), bars_1m.ts[bar])
    fwd = forward_returns(bars_1m.open, bars_1m.close, 5)[bar]
    np.testing.assert_array_equal(occ["fwd_bps_h5"].to_numpy(), fwd)


def test_frame_input_uses_mid_prices(bar_tables: dict[str, pa.Table], bars_1m: BarArrays) -> None:
    from_frame = mine_bars(pl.from_arrow(bar_tables["1m"]), symbol="EURUSD", timeframe="1m")
    from_arrays = mine_bars(bars_1m, symbol="EURUSD", timeframe="1m")
    assert same_stats(from_frame.stats, from_arrays.stats)
    assert sum(s.count for s in from_frame.stats) > 0
    assert from_frame.keys == from_arrays.keys


def test_mining_key_is_stable_and_tracks_inputs(bars_1m: BarArrays) -> None:
    k = mining_key("EURUSD", "1m", bars_1m, HORIZONS, 64)
    assert k == mining_key("eurusd", "1m", bars_1m, (20, 5, 1), 64)
    assert k != mining_key("EURUSD", "1m", bars_1m, (1, 5), 64)
    assert k != mining_key("EURUSD", "1m", bars_1m[:-1], HORIZONS, 64)
    assert k != mining_key("EURUSD", "1m", bars_1m, HORIZONS, 48)


def test_bad_horizons_are_rejected(bars_1m: BarArrays) -> None:
    for bad in ((), (0,), (5, 5), (1.5,)):
        with pytest.raises(PatternError, match="horizon"):
            mine_bars(bars_1m[:100], symbol="EURUSD", timeframe="1m", horizons=bad)


def _row(pattern: str, n_ind: int, t: float) -> PatternStats:
    return PatternStats(
        symbol="EURUSD",
        timeframe="1h",
        pattern=pattern,
        direction=DIRECTIONS[pattern],
        horizon=5,
        occurrences=n_ind + 3,
        count=n_ind + 2,
        n_independent=n_ind,
        mean_bps=1.0,
        median_bps=0.5,
        std_bps=3.0,
        mean_raw_bps=1.0,
        hit_rate=0.55,
        t_stat=t,
        baseline_count=1000,
        baseline_mean_bps=0.0,
        baseline_hit_rate=0.5,
        bars=1005,
        first_ts_ms=0,
        last_ts_ms=1,
    )


def test_validator_keeps_enough_significant_occurrences() -> None:
    rows = [
        _row("doji", 30, 2.0),  # kept: both thresholds met exactly
        _row("hammer", 29, 5.0),  # too few independent occurrences
        _row("double_top", 100, 1.99),  # not significant
        _row("bull_flag", 100, -3.0),  # significant the other way: kept
        _row("bear_flag", 100, math.nan),  # no t
    ]
    kept = validate_patterns(rows)
    assert [r.pattern for r in kept] == ["doji", "bull_flag"]
    assert [r.pattern for r in validate_patterns(rows, min_count=10, min_abs_t=1.9)] == [
        "doji",
        "hammer",
        "double_top",
        "bull_flag",
    ]
    with pytest.raises(ValueError, match="min_count"):
        validate_patterns(rows, min_count=0)


def test_baseline_is_the_series_drift_signed_by_direction(bars_1m: BarArrays) -> None:
    res = mine_bars(bars_1m, symbol="EURUSD", timeframe="1m", horizons=(5,))
    by = {s.pattern: s for s in res.stats}
    bull, bear, neutral = by["bullish_engulfing"], by["bearish_engulfing"], by["doji"]
    assert bull.baseline_mean_bps == pytest.approx(-bear.baseline_mean_bps)
    assert neutral.baseline_mean_bps == pytest.approx(bull.baseline_mean_bps)
    assert bull.excess_bps == pytest.approx(bull.mean_bps - bull.baseline_mean_bps)


@pytest.fixture(scope="module")
def bars_dir(tmp_path_factory: pytest.TempPathFactory, bar_tables: dict[str, pa.Table]) -> Path:
    root = tmp_path_factory.mktemp("pattern_bars")
    for tf in ("5m", "15m"):
        write_bars(root, tf, "EURUSD", bar_tables[tf])
    return root


def test_mining_a_bars_directory_on_ray_matches_in_process(ray_local, bars_dir: Path) -> None:
    local = mine_bars_dir(bars_dir, ["5m", "15m"], horizons=(1, 5))
    remote = mine_bars_dir(bars_dir, ["5m", "15m"], horizons=(1, 5), use_ray=True)
    assert set(local.keys) == {"5m", "15m"} and local.keys == remote.keys
    assert same_stats(local.stats, remote.stats)
    assert local.occurrences.equals(remote.occurrences)
    assert {s.timeframe for s in local.stats} == {"5m", "15m"}
    assert len(local.stats) == 2 * 2 * len(PATTERNS)
    # each timeframe's key is the key of mining that timeframe alone
    alone = mine_bars_dir(bars_dir, ["15m"], horizons=(1, 5))
    assert alone.keys["15m"] == local.keys["15m"] and alone.key == local.keys["15m"]
