"""The rule-based pattern detectors: definitions on hand-made bars, no look-ahead, recall on
synthetic examples of every vocabulary pattern, discrimination against random walks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aio_ray.patterns import detectors as det
from aio_ray.patterns.detectors import (
    PatternError,
    detect_candles,
    detect_chart_patterns,
    pivots,
    support_resistance,
    synthetic_pattern,
    window_patterns,
)
from aio_ray.patterns.recall import recall_table
from aio_ray.patterns.synthetic_windows import random_walk_ohlc
from aio_ray.patterns.vocabulary import CANDLE_PATTERNS, CHART_PATTERNS, PATTERNS

P = 1e-4  # one pip


def bars(rows: list[tuple[float, float, float, float]]) -> tuple[np.ndarray, ...]:
    """(open, high, low, close) arrays from rows given in pips above 1.1000."""
    a = 1.1 + np.array(rows, dtype=np.float64) * P
    return a[:, 0].copy(), a[:, 1].copy(), a[:, 2].copy(), a[:, 3].copy()


def down_move(n: int = 7, start: float = 40.0) -> list[tuple[float, float, float, float]]:
    """``n`` bearish bars, each 4 pips lower."""
    out = []
    for i in range(n):
        o = start - 4 * i
        out.append((o, o + 1, o - 5, o - 4))
    return out


def up_move(n: int = 7, start: float = 0.0) -> list[tuple[float, float, float, float]]:
    out = []
    for i in range(n):
        o = start + 4 * i
        out.append((o, o + 5, o - 1, o + 4))
    return out


# ----------------------------------------------------------------------------- candles


def test_vocabulary_keys_and_shapes() -> None:
    o, h, lo, c = random_walk_ohlc(300, seed=1)
    candles = detect_candles(o, h, lo, c)
    charts = detect_chart_patterns(o, h, lo, c)
    assert tuple(candles) == CANDLE_PATTERNS
    assert tuple(charts) == CHART_PATTERNS
    for flags in (*candles.values(), *charts.values()):
        assert flags.dtype == np.bool_ and flags.shape == (300,)


def test_bullish_engulfing_needs_a_strictly_larger_opposite_body() -> None:
    # bar 0: bearish, body 10 pips (10 -> 0); bar 1 opens at its close and closes 2 above its open
    o, h, lo, c = bars([(10, 12, -2, 0), (0, 14, -1, 12)])
    assert detect_candles(o, h, lo, c)["bullish_engulfing"].tolist() == [False, True]
    # equal bodies (0 -> 10): not engulfing
    o, h, lo, c = bars([(10, 12, -2, 0), (0, 12, -1, 10)])
    assert not detect_candles(o, h, lo, c)["bullish_engulfing"].any()
    # opens above the previous close: the body does not cover it
    o, h, lo, c = bars([(10, 12, -2, 0), (1, 14, 0, 12)])
    assert not detect_candles(o, h, lo, c)["bullish_engulfing"].any()
    # previous bar bullish: nothing to engulf
    o, h, lo, c = bars([(0, 12, -2, 10), (0, 14, -1, 12)])
    assert not detect_candles(o, h, lo, c)["bullish_engulfing"].any()


def test_bearish_engulfing_mirrors_bullish() -> None:
    o, h, lo, c = bars([(0, 12, -2, 10), (10, 11, -4, -2)])
    got = detect_candles(o, h, lo, c)
    assert got["bearish_engulfing"].tolist() == [False, True]
    assert not got["bullish_engulfing"].any()
    o, h, lo, c = bars([(0, 12, -2, 10), (10, 11, -4, 0)])  # equal bodies
    assert not detect_candles(o, h, lo, c)["bearish_engulfing"].any()


def test_doji_body_at_most_ten_percent_of_range_and_ties_count() -> None:
    # range 10 pips: body 1.0 (exactly 10%) is a doji, 1.2 is not; a flat bar has no range
    o, h, lo, c = bars([(5, 10, 0, 6), (5, 10, 0, 6.2), (5, 5, 5, 5), (5, 10, 0, 5)])
    assert detect_candles(o, h, lo, c)["doji"].tolist() == [True, False, False, True]


def test_hammer_small_top_body_long_lower_shadow_after_a_decline() -> None:
    # after 7 falling bars: range 12 (from 0 to 12), body 10 -> 12 (2 pips) in the top third,
    # lower shadow 10 >= 2 x 2
    rows = down_move() + [(10.0, 12.0, 0.0, 12.0)]
    o, h, lo, c = bars(rows)
    got = detect_candles(o, h, lo, c)
    assert got["hammer"].tolist() == [False] * 7 + [True]
    assert not got["shooting_star"].any()
    # the same candle after a rise is not a hammer
    o, h, lo, c = bars(up_move() + [(34.0, 36.0, 24.0, 36.0)])
    assert not detect_candles(o, h, lo, c)["hammer"][-1]
    # body reaching below the top third (8 -> 12 in a 0..12 range: bottom of body at 8 = 2/3)
    o, h, lo, c = bars(down_move() + [(8.0, 12.0, 0.0, 12.0)])
    assert detect_candles(o, h, lo, c)["hammer"][-1]  # exactly at the boundary: a tie, kept
    o, h, lo, c = bars(down_move() + [(7.5, 12.0, 0.0, 12.0)])
    assert not detect_candles(o, h, lo, c)["hammer"][-1]


def test_hammer_with_a_long_upper_shadow_is_not_a_hammer() -> None:
    # range 0..30, body 20..30 in the top third, lower shadow exactly 2 x body: a hammer
    o, h, lo, c = bars(down_move() + [(20.0, 30.0, 0.0, 30.0)])
    assert detect_candles(o, h, lo, c)["hammer"][-1]
    # the same body with the high 6 pips above it: the body leaves the top third
    o, h, lo, c = bars(down_move() + [(20.0, 36.0, 0.0, 30.0)])
    assert not detect_candles(o, h, lo, c)["hammer"][-1]


def test_shooting_star_mirrors_hammer() -> None:
    rows = up_move() + [(26.0, 38.0, 26.0, 28.0)]
    o, h, lo, c = bars(rows)
    got = detect_candles(o, h, lo, c)
    assert got["shooting_star"].tolist() == [False] * 7 + [True]
    assert not got["hammer"].any()
    o, h, lo, c = bars(down_move() + [(10.0, 22.0, 10.0, 12.0)])
    assert not detect_candles(o, h, lo, c)["shooting_star"][-1]


def test_rules_needing_history_are_false_at_the_start_and_on_nan() -> None:
    o, h, lo, c = bars([(10, 12, -2, 0), (0, 14, -1, 12)])
    o[0] = np.nan  # bar 0 unknown: bar 1 cannot engulf it
    got = detect_candles(o, h, lo, c)
    assert not any(f.any() for f in got.values())
    # a hammer shape on the 6th bar lacks the 5-bar prior move
    rows = down_move(5) + [(10.0, 12.0, 0.0, 12.0)]
    o, h, lo, c = bars(rows)
    assert not detect_candles(o, h, lo, c)["hammer"].any()


def test_invalid_inputs_name_the_argument() -> None:
    with pytest.raises(PatternError, match="detect_candles: arrays must have the same length"):
        detect_candles([1.0, 2.0], [1.0], [1.0], [1.0])
    with pytest.raises(PatternError, match="high must be 1-D"):
        detect_chart_patterns([1.0], [[1.0]], [1.0], [1.0])
    with pytest.raises(PatternError, match="window must be an int >= 8"):
        detect_chart_patterns([1.0], [1.0], [1.0], [1.0], window=4)
    with pytest.raises(PatternError, match="max_levels"):
        support_resistance([1.0], [1.0], [1.0], max_levels=0)
    with pytest.raises(PatternError, match="unknown pattern 'cup'"):
        synthetic_pattern("cup")


# ----------------------------------------------------------------------------- swings and charts


def test_pivot_is_strict_on_the_left_and_known_k_bars_later() -> None:
    h = np.array([1.0, 2.0, 3.0, 5.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.5])
    lo = h - 0.5
    ph, pl = pivots(h, lo, k=3)
    assert np.flatnonzero(ph).tolist() == [3]  # the first of two equal highs
    assert not pl.any()
    # the last k bars can never be pivots (their right side is unknown)
    ph2, _ = pivots(h[:6], lo[:6], k=3)
    assert not ph2.any()


def _double_top_path(break_bar_offset: int) -> tuple[np.ndarray, ...]:
    """A clean double top: tops at bars 20 and 40 (1.1050), trough 1.1020 at bar 30, falling
    after the second top and closing below the neckline ``break_bar_offset`` bars after it."""
    keys_x = [0, 20, 30, 40]
    keys_y = [1.1000, 1.1050, 1.1020, 1.1050]
    n = 40 + break_bar_offset + 1
    c = np.interp(np.arange(n), keys_x, keys_y)
    after = np.arange(41, n)
    c[after] = 1.1050 - (1.1050 - 1.1024) * (after - 40) / max(1, break_bar_offset - 1)
    c[-1] = 1.1010
    o = np.r_[c[0], c[:-1]]
    h = np.maximum(o, c) + 0.00005
    lo = np.minimum(o, c) - 0.00005
    return o, h, lo, c


def test_double_top_completes_on_the_neckline_break() -> None:
    o, h, lo, c = _double_top_path(8)
    flags = detect_chart_patterns(o, h, lo, c)
    assert np.flatnonzero(flags["double_top"]).tolist() == [len(c) - 1]
    assert not flags["double_bottom"].any()
    # the same shape without the break: nothing yet
    flags = detect_chart_patterns(o[:-1], h[:-1], lo[:-1], c[:-1])
    assert not flags["double_top"].any()


def test_a_break_before_the_second_top_is_known_waits_for_its_pivot() -> None:
    """The second top is a pivot only 3 bars after it: a break 2 bars after the top is
    reported at the first bar that knows the top (bar 43) if the close is still below."""
    o, h, lo, c = _double_top_path(2)  # break at bar 42, series ends there
    assert not detect_chart_patterns(o, h, lo, c)["double_top"].any()
    o2 = np.r_[o, c[-1]]
    c2 = np.r_[c, c[-1] - 0.0001]
    h2 = np.r_[h, max(o2[-1], c2[-1]) + 0.00005]
    lo2 = np.r_[lo, min(o2[-1], c2[-1]) - 0.00005]
    flags = detect_chart_patterns(o2, h2, lo2, c2)["double_top"]
    assert np.flatnonzero(flags).tolist() == [43]


@pytest.mark.parametrize("name", PATTERNS)
def test_synthetic_window_completes_at_the_last_bar(name: str) -> None:
    o, h, lo, c = synthetic_pattern(name, seed=0)
    flags = {**detect_candles(o, h, lo, c), **detect_chart_patterns(o, h, lo, c)}
    assert flags[name][-1], name
    if name in CHART_PATTERNS:  # a new completion, not the tail of an earlier one
        assert not flags[name][-6:-1].any(), np.flatnonzero(flags[name])


def _stitched(seed: int) -> tuple[np.ndarray, ...]:
    """Synthetic windows of every pattern end to end, on a common random-walk level."""
    parts = [synthetic_pattern(p, seed=seed + i) for i, p in enumerate(PATTERNS)]
    rw = random_walk_ohlc(200, seed=seed)
    arrays = []
    for j in range(4):
        arrays.append(np.concatenate([rw[j]] + [p[j] for p in parts]))
    return tuple(arrays)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.integers(1, 1096), window=st.sampled_from([32, 64, 100]))
def test_truncating_the_future_never_changes_past_flags(seed: int, cut: int, window: int) -> None:
    o, h, lo, c = _stitched(seed)
    assert cut <= len(c)
    full = {**detect_candles(o, h, lo, c), **detect_chart_patterns(o, h, lo, c, window=window)}
    part = {
        **detect_candles(o[:cut], h[:cut], lo[:cut], c[:cut]),
        **detect_chart_patterns(o[:cut], h[:cut], lo[:cut], c[:cut], window=window),
    }
    for name in PATTERNS:
        assert np.array_equal(part[name], full[name][:cut]), (name, cut)


def test_stitched_series_contains_every_chart_pattern() -> None:
    """The look-ahead property above is exercised on series where every detector fires."""
    o, h, lo, c = _stitched(3)
    flags = detect_chart_patterns(o, h, lo, c)
    assert all(flags[name].any() for name in CHART_PATTERNS), {
        k: int(v.sum()) for k, v in flags.items()
    }


# ----------------------------------------------------------------------------- recall


@pytest.fixture(scope="module")
def table() -> dict[str, dict[str, float]]:
    return recall_table(range(50), last_bar_only=True)


@pytest.mark.parametrize("name", PATTERNS)
def test_each_detector_fires_on_its_own_synthetic_examples(
    table: dict[str, dict[str, float]], name: str
) -> None:
    assert table[name][name] >= 0.9, f"{name} recall {table[name][name]:.2f} over 50 seeds"


def test_chart_detectors_rarely_fire_on_other_chart_patterns(
    table: dict[str, dict[str, float]],
) -> None:
    """Off-diagonal rates among chart patterns (last bar). Some overlap is real: a symmetric
    triangle broken upward after a higher low is also a double bottom by the rules."""
    off = [table[t][s] for t in CHART_PATTERNS for s in CHART_PATTERNS if s != t]
    assert max(off) <= 0.35, {t: {s: v for s, v in table[t].items() if v and s != t} for t in table}
    assert float(np.mean(off)) <= 0.03


def test_candle_detectors_rarely_fire_on_other_candle_patterns(
    table: dict[str, dict[str, float]],
) -> None:
    off = [table[t][s] for t in CANDLE_PATTERNS for s in CANDLE_PATTERNS if s != t]
    assert max(off) <= 0.2 and float(np.mean(off)) <= 0.05


def test_chart_patterns_are_rare_in_random_walk_windows() -> None:
    """In 1,000 random-walk windows of 64 bars, each chart pattern shows in at most 6% (its
    recall on its own examples is >= 90%); measured ~0.2-3.5%."""
    n = 1000
    o, h, lo, c = random_walk_ohlc(64 * n, seed=11)
    counts = dict.fromkeys(PATTERNS, 0)
    for i in range(n):
        s = slice(64 * i, 64 * (i + 1))
        for p in window_patterns(o[s], h[s], lo[s], c[s]):
            counts[p] += 1
    rates = {p: counts[p] / n for p in PATTERNS}
    for p in CHART_PATTERNS:
        assert rates[p] <= 0.06, rates
    # candle rules are local: in a random walk opening at the previous close, each of the
    # last 3 bars is engulfing with probability ~1/8
    assert 0.2 <= rates["bullish_engulfing"] <= 0.5, rates
    assert rates["hammer"] <= 0.15 and rates["shooting_star"] <= 0.15, rates


def test_synthetic_pattern_is_seeded_and_well_formed() -> None:
    a = synthetic_pattern("double_top", seed=4)
    b = synthetic_pattern("double_top", seed=4)
    c = synthetic_pattern("double_top", seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[3], c[3])
    for name in PATTERNS:
        o, h, lo, cl = synthetic_pattern(name, seed=1, n_bars=80)
        assert len(cl) == 80
        assert np.all(h >= np.maximum(o, cl)) and np.all(lo <= np.minimum(o, cl))
        assert np.all(lo > 1.0) and np.all(h < 1.2)


# ----------------------------------------------------------------------------- windows, levels


def test_window_patterns_reports_what_completes_at_the_end() -> None:
    o, h, lo, c = synthetic_pattern("head_and_shoulders", seed=2)
    shown = window_patterns(o, h, lo, c)
    assert "head_and_shoulders" in shown
    assert shown == [p for p in PATTERNS if p in shown]  # vocabulary order
    # the window without its last 3 bars no longer shows the completion
    assert "head_and_shoulders" not in window_patterns(o[:-3], h[:-3], lo[:-3], c[:-3])
    assert window_patterns([], [], [], []) == []


def test_support_resistance_finds_the_touched_levels() -> None:
    """A range between ~1.1000 and ~1.1050 touched four times each, plus one stray swing."""
    period = 16
    n = period * 4 + 12
    x = np.arange(n)
    c = 1.1025 + 0.0025 * np.sin(2 * np.pi * x / period)
    c[period * 4 :] = np.linspace(c[period * 4 - 1], 1.1080, 12)  # a later rally...
    c[-6:] = np.linspace(1.1080, 1.1065, 6)  # ...with one swing high at 1.108
    o = np.r_[c[0], c[:-1]]
    h = np.maximum(o, c) + 0.00003
    lo = np.minimum(o, c) - 0.00003
    levels = support_resistance(h, lo, c, max_levels=2)
    assert len(levels) == 2
    assert sorted(round(v, 3) for v in levels) == [1.100, 1.105]
    all_levels = support_resistance(h, lo, c, max_levels=6)
    assert len(all_levels) == 3 and any(abs(v - 1.1080) < 0.0002 for v in all_levels)
    assert all(np.isfinite(v) and v > 0 for v in all_levels)
    assert support_resistance(h[:3], lo[:3], c[:3]) == []


def test_constants_documented_in_the_module_docstring() -> None:
    for name in (
        "DOJI_MAX_BODY",
        "SHADOW_BODY_RATIO",
        "TREND_BARS",
        "DT_TOP_TOL_ATR",
        "HS_HEAD_ATR",
        "TRI_FIT_ATR",
        "FLAG_POLE_ATR",
        "PIVOT_BARS",
    ):
        assert name in (det.__doc__ or ""), name


def _documented_rules(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> dict:
    """The module docstring's candle rules as plain numpy (the kernel's oracle)."""
    eps = det.PRICE_EPS

    def prev(x: np.ndarray, k: int) -> np.ndarray:
        out = np.full_like(x, np.nan)
        out[k:] = x[: len(x) - k]
        return out

    with np.errstate(invalid="ignore"):
        rng, body = h - lo, np.abs(c - o)
        bl, bh = np.minimum(o, c), np.maximum(o, c)
        o1, c1, ck = prev(o, 1), prev(c, 1), prev(c, 1 + det.TREND_BARS)
        return {
            "bullish_engulfing": (c1 < o1 - eps)
            & (c > o + eps)
            & (o <= c1 + eps)
            & (c >= o1 - eps)
            & ((c - o) > (o1 - c1) + eps),
            "bearish_engulfing": (c1 > o1 + eps)
            & (c < o - eps)
            & (o >= c1 - eps)
            & (c <= o1 + eps)
            & ((o - c) > (c1 - o1) + eps),
            "hammer": (rng > eps)
            & (bl >= h - det.BODY_ZONE * rng - eps)
            & ((bl - lo) >= det.SHADOW_BODY_RATIO * body - eps)
            & (c1 < ck - eps),
            "shooting_star": (rng > eps)
            & (bh <= lo + det.BODY_ZONE * rng + eps)
            & ((h - bh) >= det.SHADOW_BODY_RATIO * body - eps)
            & (c1 > ck + eps),
            "doji": (rng > eps) & (body <= det.DOJI_MAX_BODY * rng + eps),
        }


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    grid=st.sampled_from([0.0, 5e-6, 1e-5]),
    nan_every=st.sampled_from([0, 7, 31]),
)
def test_candle_kernel_equals_the_documented_rules(seed: int, grid: float, nan_every: int) -> None:
    """On random bars (on a tick grid, so ties happen, and with NaN holes)."""
    rng = np.random.default_rng(seed)
    n = 400
    c = 1.1 + np.cumsum(rng.normal(0, 1e-4, n))
    o = np.where(rng.random(n) < 0.5, np.r_[c[0], c[:-1]], c + rng.normal(0, 5e-5, n))
    h = np.maximum(o, c) + np.abs(rng.normal(0, 5e-5, n)) * (rng.random(n) < 0.8)
    lo = np.minimum(o, c) - np.abs(rng.normal(0, 5e-5, n)) * (rng.random(n) < 0.8)
    if grid:
        o, h, lo, c = (np.round(x / grid) * grid for x in (o, h, lo, c))
    if nan_every:
        o[::nan_every] = np.nan
    got = detect_candles(o, h, lo, c)
    want = _documented_rules(o, h, lo, c)
    for name in CANDLE_PATTERNS:
        assert np.array_equal(got[name], want[name]), name
