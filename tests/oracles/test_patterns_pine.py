"""The candle patterns as Pine v6: PineTS reproduces ``detect_candles`` bar for bar on the real
EUR/USD 1m and 15m bars of 2019-02-04/05 (which contain exact ties, so the shared tie
tolerance is exercised); the script parses; chart patterns say they are Python-only.

PineTS and pynescript are test tools: missing, the tests skip (fail under CI).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aio_ray.bars.arrays import BarArrays
from aio_ray.patterns import detectors as d
from aio_ray.patterns.detectors import detect_candles, synthetic_pattern
from aio_ray.patterns.vocabulary import CANDLE_PATTERNS, CHART_PATTERNS
from aio_ray.pine.patterns import (
    PINE_PATTERNS,
    PinePatternError,
    pattern_condition,
    pattern_variable,
    patterns_indicator,
)
from aio_ray.pine.runner import run_pinets
from tests.support.pine_fixtures import mid, real_bars, require_pinets, require_pynescript


def test_every_candle_pattern_has_a_pine_condition_with_the_module_constants() -> None:
    assert PINE_PATTERNS == CANDLE_PATTERNS
    assert "0.1 * (high - low)" in pattern_condition("doji")
    assert f"close[{1 + d.TREND_BARS}]" in pattern_condition("hammer")
    assert "0.3333333333333333" in pattern_condition("shooting_star")
    for name in PINE_PATTERNS:
        cond = pattern_condition(name)
        assert "0.000000001" in cond and "e-" not in cond  # no exponent literals
        assert cond.count("(") == cond.count(")")
        assert pattern_variable(name) == f"pat_{name}"


def test_chart_patterns_and_unknown_names_are_refused() -> None:
    for name in CHART_PATTERNS:
        with pytest.raises(PinePatternError, match="Python-only"):
            pattern_condition(name)
    with pytest.raises(PinePatternError, match="unknown pattern"):
        patterns_indicator(["doji", "morning_star"])
    with pytest.raises(PinePatternError, match="duplicate"):
        patterns_indicator(["doji", "doji"])


def test_indicator_script_declares_plots_and_alerts() -> None:
    code = patterns_indicator(title='x"); strategy.entry("X", strategy.long) //')
    assert code.startswith("//@version=6\n")
    title = code.split('indicator("', 1)[1].split('", shorttitle', 1)[0]
    assert '"' not in title and "\n" not in title  # the title cannot close its literal
    for line in code.splitlines():  # the hostile text only ever sits inside a string literal
        if "strategy.entry" in line:
            assert line[: line.index("strategy.entry")].count('"') % 2 == 1, line
    for name in CANDLE_PATTERNS:
        assert f'plot(pat_{name} ? 1 : 0, "{name}", display=display.data_window)' in code
        assert f'alertcondition(pat_{name}, title="{name}"' in code


@pytest.mark.slow
def test_indicator_script_parses() -> None:
    require_pynescript()
    from aio_ray.pine.verify import check_syntax

    res = check_syntax(patterns_indicator())
    assert res.ok, res


def _compare(code: str, b: BarArrays, timeframe: str) -> dict[str, int]:
    run = run_pinets(code, b, timeframe)
    ours = detect_candles(b.open, b.high, b.low, b.close)
    counts = {}
    for name, flags in ours.items():
        pine = run.plots[name]
        assert np.isin(pine, (0.0, 1.0)).all(), name
        diff = np.flatnonzero((pine == 1.0) != flags)
        assert diff.size == 0, f"{name} on {timeframe}: first differing bar {diff[:5]}"
        counts[name] = int(flags.sum())
    return counts


@pytest.mark.shared
@pytest.mark.parametrize("timeframe", ["1m", "15m"])
def test_pinets_reproduces_detect_candles_on_real_bars(dukascopy_dir: Path, timeframe: str) -> None:
    require_pinets()
    b = mid(real_bars(dukascopy_dir, (timeframe,))[timeframe])
    counts = _compare(patterns_indicator(), b, timeframe)
    minimum = 50 if timeframe == "1m" else 4
    assert all(v >= minimum for v in counts.values()), counts
    if timeframe == "1m":
        # ties on the tick grid: bodies exactly 10% of the range, opens at the previous close;
        # without the shared tolerance float rounding would decide some of them
        body, rng = np.abs(b.close - b.open), b.high - b.low
        assert int(np.sum(np.abs(body - 0.1 * rng) < 1e-12)) > 0
        assert int(np.sum(body <= 0.1 * rng)) != counts["doji"]


def test_pinets_reproduces_detect_candles_on_synthetic_pattern_windows() -> None:
    require_pinets()
    parts = [synthetic_pattern(p, seed=s) for s in range(2) for p in CANDLE_PATTERNS]
    o, h, lo, c = (np.concatenate([p[j] for p in parts]) for j in range(4))
    ts = 1_736_150_400_000 + 60_000 * np.arange(len(c), dtype=np.int64)
    counts = _compare(patterns_indicator(), BarArrays(ts, o, h, lo, c), "1m")
    assert all(v >= 2 for v in counts.values()), counts
