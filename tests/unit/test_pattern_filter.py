"""The candlestick-pattern entry filter every strategy family has: the gate, no look-ahead,
the search space, strategy ids, and the same filter in the generated Pine (PineTS parity)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aio_ray.bars.arrays import BarArrays
from aio_ray.library.models import strategy_id
from aio_ray.patterns.detectors import detect_candles
from aio_ray.patterns.vocabulary import CANDLE_PATTERNS
from aio_ray.pine.generate import PLOT_SIGNALS, ScriptSource, generate, read_meta
from aio_ray.strategies import space
from aio_ray.strategies.engine import BacktestConfig
from aio_ray.strategies.families import FAMILIES as REGISTRY
from aio_ray.strategies.families.base import PATTERN_KEY, pattern_gate
from aio_ray.strategies.signals import Signals
from aio_ray.strategies.space import PATTERN_NONE, SPACES, ParameterError
from tests.support.pine_fixtures import (
    FAMILIES,
    mid,
    params,
    real_bars,
    require_pinets,
    require_pynescript,
    synthetic_bars,
)

# PineTS fills limit orders with the slippage TradingView applies to market and stop orders
# only (a known difference verify-pine reports): parity is checked without slippage and swap.
PARITY_COSTS = BacktestConfig(slippage_points=0.0, swap_long=0.0, swap_short=0.0)

MINUTE_MS = 60_000
T0_MS = 1_735_689_600_000  # 2025-01-01 00:00 UTC
PATTERN_NAMES = ("pattern_filter", "pattern_lookback")


def random_walk_bars(n: int, seed: int, vol: float = 2e-4) -> BarArrays:
    """EUR/USD-like 1-minute mid bars on the 1e-5 tick (half-tick mid), open = previous close."""
    rng = np.random.default_rng(seed)
    close = np.round((1.10 + np.cumsum(rng.normal(0.0, vol, n))) / 5e-6) * 5e-6
    open_ = np.concatenate([[1.10], close[:-1]])
    wick = np.round(np.abs(rng.normal(0.0, vol / 2, (2, n))) / 5e-6) * 5e-6
    high = np.maximum(open_, close) + wick[0]
    low = np.minimum(open_, close) - wick[1]
    ts = T0_MS + MINUTE_MS * np.arange(n, dtype=np.int64)
    return BarArrays(ts, open_, high, low, close)


def arrays(s: Signals) -> dict[str, np.ndarray]:
    return {
        k: getattr(s, k)
        for k in ("long_entry", "short_entry", "long_exit", "short_exit", "stop_dist", "take_dist")
    }


def assert_same(a: Signals, b: Signals) -> None:
    for k, v in arrays(a).items():
        np.testing.assert_array_equal(v, arrays(b)[k], err_msg=k)


def legacy(family: str, **extra: Any) -> dict[str, Any]:
    """A parameter set as stored before the filter existed (no pattern parameters)."""
    p = {k: v for k, v in space.defaults(family).items() if k not in PATTERN_NAMES}
    p.update(extra)
    return p


@pytest.fixture(scope="module")
def walk() -> BarArrays:
    return random_walk_bars(4000, 5)


# --------------------------------------------------------------------------- declarations


def test_every_family_declares_the_filter_with_all_candle_patterns_and_defaults_off() -> None:
    for name, sp in SPACES.items():
        f, lb = sp.param("pattern_filter"), sp.param("pattern_lookback")
        assert isinstance(f, space.ChoiceParam) and isinstance(lb, space.IntParam), name
        assert f.choices == (PATTERN_NONE, *CANDLE_PATTERNS) and f.default == PATTERN_NONE
        assert (lb.low, lb.high, lb.step, lb.default) == (1, 10, 1, 3)
        assert f.optional and lb.optional and f.doc and lb.doc
        assert sp.names[-2:] == PATTERN_NAMES
        d = space.describe(name)
        assert d["conditions"] == [
            {
                "type": "inactive_when",
                "param": "pattern_lookback",
                "parent": "pattern_filter",
                "value": "none",
            }
        ]
        assert [p.get("optional", False) for p in d["params"]][-2:] == [True, True]


def test_validate_fills_the_filter_in_pins_an_inert_lookback_and_names_bad_values() -> None:
    full = space.validate("ma_cross", legacy("ma_cross"))
    assert full == space.defaults("ma_cross")
    assert list(full) == list(SPACES["ma_cross"].names)
    # without a pattern the lookback does nothing: one strategy, one parameter set
    assert space.validate("ma_cross", legacy("ma_cross", pattern_lookback=7)) == full
    on = space.validate("ma_cross", legacy("ma_cross", pattern_filter="hammer", pattern_lookback=7))
    assert (on["pattern_filter"], on["pattern_lookback"]) == ("hammer", 7)
    with pytest.raises(
        ParameterError, match=r"'pattern_filter' = 'double_top' is not one of 'none'"
    ):
        space.validate("ma_cross", legacy("ma_cross", pattern_filter="double_top"))
    with pytest.raises(ParameterError, match=r"'pattern_lookback' = 11 is out of range \[1, 10\]"):
        space.validate("rsi_reversion", legacy("rsi_reversion", pattern_lookback=11))
    # the other parameters stay required
    with pytest.raises(ParameterError, match="missing parameter 'fast'"):
        space.validate("ma_cross", {k: v for k, v in full.items() if k != "fast"})


def test_bad_conditional_declarations_are_refused_when_written() -> None:
    c = space.ChoiceParam("c", ("off", "on"), default="off")
    n = space.IntParam("n", 1, 5, default=1)
    with pytest.raises(ValueError, match="'maybe' is not a choice of c"):
        space.Space("f", (c, n), conditions=(space.InactiveWhen("n", "c", "maybe"),))
    with pytest.raises(ValueError, match="c must be declared before n"):
        space.Space("f", (n, c), conditions=(space.InactiveWhen("n", "c", "off"),))
    with pytest.raises(TypeError, match="needs a declared parameter and a declared choice"):
        space.Space("f", (c, n), conditions=(space.InactiveWhen("n", "x", "off"),))


def test_grid_varies_the_filter_and_never_repeats_a_point() -> None:
    g = space.grid("macd_cross", 2000)
    filters = {p["pattern_filter"] for p in g}
    assert PATTERN_NONE in filters and len(filters) >= 2
    assert all(p["pattern_lookback"] == 3 for p in g if p["pattern_filter"] == PATTERN_NONE)
    assert {p["pattern_lookback"] for p in g if p["pattern_filter"] != PATTERN_NONE} >= {1, 10}
    keys = [tuple(sorted(p.items())) for p in g]
    assert len(keys) == len(set(keys)) and all(space.validate("macd_cross", p) == p for p in g)


# --------------------------------------------------------------------------- the gate


@settings(max_examples=200, deadline=None)
@given(
    fired=st.lists(st.booleans(), min_size=0, max_size=60),
    lookback=st.integers(1, 12),
)
def test_pattern_gate_is_true_where_the_pattern_fired_within_the_lookback(
    fired: list[bool], lookback: int
) -> None:
    f = np.array(fired, dtype=bool)
    got = pattern_gate(f, lookback)
    want = [any(fired[max(0, i - lookback + 1) : i + 1]) for i in range(len(fired))]
    assert got.dtype == bool and got.tolist() == want
    # Pine: ta.barssince(fired) < lookback (na before the first pattern: false)
    since = np.full(len(fired), np.nan)
    last = None
    for i, x in enumerate(fired):
        last = i if x else last
        since[i] = np.nan if last is None else i - last
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(got, since < lookback)


def test_pattern_gate_refuses_a_lookback_below_one_bar() -> None:
    with pytest.raises(ValueError, match="lookback must be >= 1 bar, got 0"):
        pattern_gate(np.ones(3, bool), 0)


@pytest.mark.parametrize("family", FAMILIES)
def test_no_filter_leaves_every_familys_signals_as_they_were(walk: BarArrays, family: str) -> None:
    fam = REGISTRY[family]
    p = params(family, pattern_filter=PATTERN_NONE)
    sig = fam.signals(walk, p)
    # parameter sets stored before the filter existed, and an inert lookback, change nothing
    old = {k: v for k, v in p.items() if k not in PATTERN_NAMES}
    assert_same(sig, fam.signals(walk, old))
    assert_same(sig, fam.signals(walk, dict(p, pattern_lookback=9)))
    # the rules cleaned as the base class documents it, without any filter
    r = fam._rules(walk, fam._indicators(walk, space.validate(family, p)), p)
    both = r.long_entry & r.short_entry
    np.testing.assert_array_equal(sig.long_entry, r.long_entry & ~both)
    np.testing.assert_array_equal(sig.short_entry, r.short_entry & ~both)
    entry = sig.long_entry | sig.short_entry
    np.testing.assert_array_equal(sig.long_exit, r.long_exit & ~entry)
    np.testing.assert_array_equal(sig.short_exit, r.short_exit & ~entry)
    assert PATTERN_KEY not in fam.indicators(walk, p)


@pytest.mark.parametrize(
    ("family", "pattern", "lookback"),
    [
        ("ma_cross", "bullish_engulfing", 3),
        ("rsi_reversion", "hammer", 5),
        ("macd_cross", "doji", 1),
        ("bb_breakout", "bearish_engulfing", 10),
        ("bb_reversion", "shooting_star", 4),
        ("stoch_adx", "doji", 2),
    ],
)
def test_entries_stand_only_within_lookback_bars_of_the_pattern_and_exits_are_not_filtered(
    walk: BarArrays, family: str, pattern: str, lookback: int
) -> None:
    fam = REGISTRY[family]
    base = params(family)
    p = dict(base, pattern_filter=pattern, pattern_lookback=lookback)
    sig, free = fam.signals(walk, p), fam.signals(walk, base)
    fired = detect_candles(walk.open, walk.high, walk.low, walk.close)[pattern]
    assert fired.any()
    n = len(walk)
    for i in range(n):
        ok = bool(fired[max(0, i - lookback + 1) : i + 1].any())
        assert sig.long_entry[i] == (free.long_entry[i] and ok), i
        assert sig.short_entry[i] == (free.short_entry[i] and ok), i
    kept = int(sig.long_entry.sum() + sig.short_entry.sum())
    total = int(free.long_entry.sum() + free.short_entry.sum())
    assert 0 < kept < total, (kept, total)
    # exits are the family's own; only an entry on the same bar still clears them
    r = fam._rules(walk, fam._indicators(walk, space.validate(family, p)), p)
    entry = sig.long_entry | sig.short_entry
    np.testing.assert_array_equal(sig.long_exit, r.long_exit & ~entry)
    np.testing.assert_array_equal(sig.short_exit, r.short_exit & ~entry)
    np.testing.assert_array_equal(sig.stop_dist, free.stop_dist)
    np.testing.assert_array_equal(sig.take_dist, free.take_dist)
    # the series a Pine script plots for parity: the pattern as 0/1
    ind = fam.indicators(walk, p)
    np.testing.assert_array_equal(ind[PATTERN_KEY], fired.astype(np.float64))


def test_a_longer_lookback_never_allows_fewer_entries(walk: BarArrays) -> None:
    fam = REGISTRY["ma_cross"]
    counts = []
    for lb in range(1, 11):
        s = fam.signals(walk, params("ma_cross", pattern_filter="doji", pattern_lookback=lb))
        counts.append(int(s.long_entry.sum() + s.short_entry.sum()))
    assert counts == sorted(counts) and counts[0] < counts[-1]


@settings(max_examples=40, deadline=None)
@given(
    family=st.sampled_from(FAMILIES),
    pattern=st.sampled_from(CANDLE_PATTERNS),
    lookback=st.integers(1, 10),
    cut=st.integers(30, 1198),
    seed=st.integers(0, 2**32 - 1),
    tail_seed=st.integers(0, 2**32 - 1),
)
def test_filtered_signals_up_to_t_ignore_bars_after_t(
    family: str, pattern: str, lookback: int, cut: int, seed: int, tail_seed: int
) -> None:
    p = params(family, pattern_filter=pattern, pattern_lookback=lookback)
    b = random_walk_bars(1200, seed)
    other = random_walk_bars(1200, tail_seed)
    shift = b.close[cut] - other.open[cut + 1]
    changed = BarArrays(
        b.ts,
        *(
            np.concatenate([getattr(b, f)[: cut + 1], getattr(other, f)[cut + 1 :] + shift])
            for f in ("open", "high", "low", "close")
        ),
    )
    fam = REGISTRY[family]
    full, alt, head = (arrays(fam.signals(x, p)) for x in (b, changed, b[: cut + 1]))
    for k in full:
        np.testing.assert_array_equal(full[k][: cut + 1], alt[k][: cut + 1], err_msg=k)
        np.testing.assert_array_equal(full[k][: cut + 1], head[k], err_msg=k)


# --------------------------------------------------------------------------- search


def test_optuna_suggests_the_filter_and_draws_the_lookback_only_with_a_pattern() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=7, n_startup_trials=10))
    seen: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def objective(trial: optuna.Trial) -> float:
        p = space.sample_optuna(trial, "bb_reversion")
        assert space.validate("bb_reversion", p) == p
        assert space.validate("bb_reversion", trial.params) == p
        seen.append((p, dict(trial.params)))
        return float(p["pattern_lookback"]) + (p["pattern_filter"] == "hammer")

    study.optimize(objective, n_trials=40)
    assert {t.state for t in study.trials} == {optuna.trial.TrialState.COMPLETE}
    filters = {p["pattern_filter"] for p, _ in seen}
    assert PATTERN_NONE in filters and len(filters - {PATTERN_NONE}) >= 3
    for p, stored in seen:
        assert stored["pattern_filter"] == p["pattern_filter"]
        assert ("pattern_lookback" in stored) == (p["pattern_filter"] != PATTERN_NONE)
    assert len({p["pattern_lookback"] for p, _ in seen if p["pattern_filter"] != "none"}) >= 3


def test_search_populations_draw_and_evaluate_the_filter(walk: BarArrays) -> None:
    """The search's own population sampler and evaluator, in-process."""
    from aio_ray.strategies.engine import BacktestConfig
    from aio_ray.strategies.population import evaluate_population
    from aio_ray.strategies.sampling import make_sampler
    from aio_ray.strategies.walkforward import make_folds

    bars = walk
    folds, _ = make_folds(len(bars), 2, holdout_fraction=0.0, warmup_bars=100)
    cfg = BacktestConfig(price_model="single")
    for family in ("ma_cross", "rsi_reversion"):
        sampler = make_sampler("tpe", family, 5, budget=60, centres=3)
        params = sampler.ask(30)
        res = evaluate_population(bars, family, params, folds, cfg)
        assert all(e is None for e in res.error), res.error
        filtered = [i for i, p in enumerate(res.params) if p["pattern_filter"] != PATTERN_NONE]
        assert filtered
        free = [dict(res.params[i], pattern_filter=PATTERN_NONE) for i in filtered]
        unfiltered = evaluate_population(bars, family, free, folds, cfg)
        # the filter reaches the backtest: never more trades, and fewer where there are any
        assert all(res.oos_trades[filtered] <= unfiltered.oos_trades)
        traded = unfiltered.oos_trades > 0
        assert traded.any() and all(
            res.oos_trades[filtered][traded] < unfiltered.oos_trades[traded]
        )


# --------------------------------------------------------------------------- strategy ids


def test_identity_params_leave_out_the_filter_only_while_it_is_off() -> None:
    for fam in SPACES:
        old = legacy(fam)
        assert space.identity_params(fam, space.defaults(fam)) == old
        assert space.identity_params(fam, dict(old, pattern_lookback=8)) == old  # inert
        on = dict(space.defaults(fam), pattern_filter="doji")
        assert space.identity_params(fam, on) == dict(old, pattern_filter="doji")
        on5 = dict(on, pattern_lookback=5)
        assert space.identity_params(fam, on5) == dict(
            old, pattern_filter="doji", pattern_lookback=5
        )
    # unknown families and foreign keys pass through untouched
    assert space.identity_params("nope", {"pattern_filter": "none"}) == {"pattern_filter": "none"}
    ids = {
        strategy_id("ma_cross", space.identity_params("ma_cross", p), "1h", "EURUSD")
        for p in (legacy("ma_cross"), space.defaults("ma_cross"))
    }
    assert len(ids) == 1


def test_strategies_without_a_filter_keep_their_library_ids() -> None:
    for fam in SPACES:
        before = strategy_id(fam, legacy(fam), "1h", "EURUSD")
        assert strategy_id(fam, space.defaults(fam), "1h", "EURUSD") == before
        assert (
            strategy_id(fam, dict(space.defaults(fam), pattern_lookback=9), "1h", "EURUSD")
            == before
        )
        assert (
            strategy_id(fam, dict(space.defaults(fam), pattern_filter="doji"), "1h", "EURUSD")
            != before
        )


# --------------------------------------------------------------------------- Pine


def _titles(code: str, fn: str = "plot") -> list[str]:
    return re.findall(rf'^{fn}\(.*?, "([a-z_ ]+)"', code, re.MULTILINE)


@pytest.mark.parametrize("kind", ["strategy", "indicator"])
def test_generated_script_states_gates_and_plots_the_filter(kind: str) -> None:
    p = params("rsi_reversion", pattern_filter="hammer", pattern_lookback=4)
    code = generate(ScriptSource("rsi_reversion", p, "1h"), kind)  # type: ignore[arg-type]
    assert "pattern_filter=hammer, pattern_lookback=4" in code
    assert (
        "// Pattern filter: entries only on a bar where hammer completed within the last 4" in code
    )
    assert read_meta(code)["params"] == space.validate("rsi_reversion", p)
    assert re.search(
        r'^i_pattern_filter = input\.string\("hammer", "pattern_filter", '
        r'options=\["none", "bullish_engulfing", "bearish_engulfing", "hammer", '
        r'"shooting_star", "doji"\]',
        code,
        re.MULTILINE,
    )
    assert re.search(r'^i_pattern_lookback = input\.int\(4, "pattern_lookback"', code, re.MULTILINE)
    assert "bars_since_pattern = ta.barssince(pattern_signal)" in code
    assert (
        'pattern_ok = ((i_pattern_filter == "none") or (bars_since_pattern < i_pattern_lookback))'
        in code
    )
    assert re.search(r"^long_entry_raw = \(.* and pattern_ok\)$", code, re.MULTILINE)
    assert re.search(r"^short_entry_raw = \(.* and pattern_ok\)$", code, re.MULTILINE)
    assert "pattern_ok" not in "".join(ln for ln in code.splitlines() if "exit_raw" in ln)
    # plots: the family's indicator keys (the pattern included) and the conditions
    bars = random_walk_bars(80, 1)
    keys = list(REGISTRY["rsi_reversion"].indicators(bars, p))
    assert keys[-1] == PATTERN_KEY and _titles(code) == keys + list(PLOT_SIGNALS)
    assert _titles(code, "plotshape") == ["pattern marker"]
    assert "shape.triangleup" in code and "force_overlay=true" in code  # hammer is bullish


def test_a_script_without_filter_keeps_live_pattern_inputs_but_no_pattern_plot() -> None:
    code = generate(ScriptSource("ma_cross", params("ma_cross"), "15m"))
    assert "pattern_filter=none, pattern_lookback=3" in code and "// Pattern filter" not in code
    assert re.search(
        r'^i_pattern_filter = input\.string\("none", "pattern_filter"', code, re.MULTILINE
    )
    assert PATTERN_KEY not in _titles(code) and _titles(code, "plotshape") == ["pattern marker"]
    assert "shape.xcross" in code


@pytest.mark.slow
def test_filtered_scripts_parse() -> None:
    require_pynescript()
    from aio_ray.pine.verify import check_syntax

    for fam, pat in zip(FAMILIES, (*CANDLE_PATTERNS, "doji"), strict=True):
        for kind in ("strategy", "indicator"):
            code = generate(ScriptSource(fam, params(fam, pattern_filter=pat), "1h"), kind)  # type: ignore[arg-type]
            res = check_syntax(code)
            assert res.ok, f"{fam}/{pat}/{kind}: {res.error} at {res.line}:{res.column}"


@pytest.fixture(scope="module")
def real_1m(dukascopy_dir: Path) -> BarArrays:
    require_pinets()
    return mid(real_bars(dukascopy_dir, ("1m",))["1m"])


def _parity(code: str, bars: BarArrays, kind: str = "strategy") -> Any:
    from aio_ray.pine.verify import verify_script

    rep = verify_script(code, bars, syntax=False)
    assert rep.ran, rep.run_error
    assert rep.parity_passed, rep.first_diff
    assert rep.first_diff_bar is None and not rep.known_differences
    assert rep.indicators[PATTERN_KEY]["compared"] == len(bars)
    assert rep.indicators[PATTERN_KEY]["max_abs_diff"] == 0.0
    if kind == "strategy":
        assert rep.trades["ours"] == rep.trades["pine"] == rep.trades["compared"] > 0
    return rep


FILTERED = [("ma_cross", "bullish_engulfing", 3), ("rsi_reversion", "hammer", 5)]


@pytest.mark.shared
@pytest.mark.parametrize(("family", "pattern", "lookback"), FILTERED)
@pytest.mark.parametrize("kind", ["strategy", "indicator"])
def test_filtered_script_reproduces_the_engine_on_real_1m_bars(
    real_1m: BarArrays, family: str, pattern: str, lookback: int, kind: str
) -> None:
    p = params(family, pattern_filter=pattern, pattern_lookback=lookback)
    rep = _parity(
        generate(ScriptSource(family, p, "1m", backtest=PARITY_COSTS), kind), real_1m, kind
    )  # type: ignore[arg-type]
    free = REGISTRY[family].signals(real_1m, params(family))
    # the filter removed entries on these bars: the comparison is not the unfiltered one
    assert rep.signals["long_entry"]["ours"] + rep.signals["short_entry"]["ours"] < int(
        free.long_entry.sum() + free.short_entry.sum()
    )


@pytest.mark.shared
def test_the_filter_inputs_are_live_in_pine(real_1m: BarArrays) -> None:
    """Switching the pattern or turning the filter off in the script's settings gives the
    engine's trades for those parameters."""
    from aio_ray.pine.runner import run_pinets
    from aio_ray.pine.verify import expected_run

    p = params("ma_cross", stops=False, pattern_filter="bullish_engulfing")
    code = generate(ScriptSource("ma_cross", p, "1m"))
    for override in (
        {"pattern_filter": "none"},
        {"pattern_filter": "doji", "pattern_lookback": 1},
    ):
        run = run_pinets(code, real_1m, "1m", inputs=override)
        exp = expected_run("ma_cross", {**p, **override}, real_1m)
        assert exp.result is not None
        ours = exp.result.trades.filter(exp.result.trades["exit_reason"] != "end")
        assert [t["entry_bar"] for t in run.closed_trades] == ours["entry_bar"].to_list()
        assert [t["exit_bar"] for t in run.closed_trades] == ours["exit_bar"].to_list()
        assert len(ours) > 10


@pytest.mark.slow
@pytest.mark.parametrize(("family", "pattern", "lookback"), FILTERED)
def test_filtered_script_reproduces_the_engine_on_synthetic_bars(
    family: str, pattern: str, lookback: int
) -> None:
    require_pinets()
    b = synthetic_bars(30_000)
    p = params(family, pattern_filter=pattern, pattern_lookback=lookback)
    rep = _parity(generate(ScriptSource(family, p, "1m", backtest=PARITY_COSTS)), b)
    assert rep.trades["compared"] >= 300
