"""Strategy families, their parameter spaces and the bar arrays they run on."""

from __future__ import annotations

import json
import math

import numpy as np
import optuna
import polars as pl
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from aio_ray import indicators as ind
from aio_ray.bars.arrays import BarArrays
from aio_ray.errors import AioError, BarsError
from aio_ray.strategies import space
from aio_ray.strategies.families import FAMILIES, crossover, crossunder, get_family
from aio_ray.strategies.space import (
    SPACES,
    ChoiceParam,
    FloatParam,
    IntParam,
    Less,
    ParameterError,
    Space,
)
from tests.support.real_bars import real_mid_bars

MINUTE_MS = 60_000
DROP = object()  # marks a parameter to leave out
T0_MS = 1_735_689_600_000  # 2025-01-01 00:00 UTC


def random_walk_bars(n: int, seed: int, vol: float = 2e-4) -> BarArrays:
    """EUR/USD-like 1-minute mid bars: open = previous close, high/low around both."""
    rng = np.random.default_rng(seed)
    close = 1.10 + np.cumsum(rng.normal(0.0, vol, n))
    open_ = np.concatenate([[1.10], close[:-1]])
    high = np.maximum(open_, close) + np.abs(rng.normal(0.0, vol / 2, n))
    low = np.minimum(open_, close) - np.abs(rng.normal(0.0, vol / 2, n))
    ts = T0_MS + MINUTE_MS * np.arange(n, dtype=np.int64)
    return BarArrays(ts, open_, high, low, close)


@pytest.fixture(scope="module")
def bars() -> BarArrays:
    return random_walk_bars(6000, 21)


def signal_arrays(s) -> dict[str, np.ndarray]:
    return {
        k: getattr(s, k)
        for k in ("long_entry", "short_entry", "long_exit", "short_exit", "stop_dist", "take_dist")
    }


# --------------------------------------------------------------------------- the families


def test_registry_holds_the_six_families_with_their_spaces():
    assert set(FAMILIES) == {
        "ma_cross",
        "rsi_reversion",
        "macd_cross",
        "bb_breakout",
        "bb_reversion",
        "stoch_adx",
    }
    for name, fam in FAMILIES.items():
        assert fam.name == name and fam.space is SPACES[name] and fam.doc
        assert {"atr_length", "stop_atr", "take_atr"} <= set(fam.space.names)
    with pytest.raises(
        ParameterError, match="unknown strategy family 'ma_crossing'; known: bb_breakout"
    ):
        get_family("ma_crossing")


def test_every_registered_family_is_one_file_with_its_space_rules_and_pine_template(bars):
    """The contract of issue 15: a family is one file (space, rules, Pine template) and the
    registry is the one list that SPACES and the Pine generator read."""
    from aio_ray.pine import builder as pb
    from aio_ray.pine.templates import PineParts

    assert list(SPACES) == list(FAMILIES)  # same order: SPACES is built from the registry
    for name, fam in FAMILIES.items():
        assert type(fam).__module__ == f"aio_ray.strategies.families.{name}"
        assert isinstance(fam.space, Space) and fam.space.family == name
        assert SPACES[name] is fam.space and get_family(name) is fam
        assert not getattr(type(fam), "__abstractmethods__", frozenset())  # rules + template
        p = space.defaults(name)
        b = pb.ScriptBuilder()
        inputs = {}
        for prm in fam.space.params:
            value = p[prm.name]
            lit = (
                pb.string(value)
                if isinstance(prm, ChoiceParam)
                else pb.int_(value)
                if isinstance(prm, IntParam)
                else pb.float_(value)
            )
            inputs[prm.name] = b.let(f"i_{prm.name}", lit)
        parts = fam.pine(b, inputs)
        assert isinstance(parts, PineParts)
        # The template plots what Family.indicators returns (the generator adds the atr).
        assert [*parts.indicators, "atr"] == list(fam.indicators(bars, p)), name
        conditions = (parts.long_entry, parts.short_entry, parts.long_exit, parts.short_exit)
        assert all(c.type == "bool" for c in conditions), name


def test_the_pine_generator_holds_no_family_specific_code():
    import importlib
    from pathlib import Path

    generate = importlib.import_module("aio_ray.pine.generate")  # the module, not generate()
    text = Path(str(generate.__file__)).read_text()
    for name in FAMILIES:
        assert name not in text, f"{name} is named in aio_ray/pine/generate.py"


def test_the_registry_refuses_a_family_twice_or_a_space_of_another_name():
    from aio_ray.strategies import families
    from aio_ray.strategies.families.ma_cross import MaCross

    with pytest.raises(TypeError, match="registered twice"):
        families._registry(MaCross(), MaCross())

    class Misnamed(MaCross):
        name = "ma_cross_2"

    with pytest.raises(TypeError, match="declared for 'ma_cross'"):
        families._registry(Misnamed())


@pytest.mark.parametrize("name", sorted(SPACES))
def test_each_family_enters_both_sides_on_a_random_walk(bars, name):
    s = FAMILIES[name].signals(bars, space.defaults(name))
    n = len(bars)
    for arr in (s.long_entry, s.short_entry, s.long_exit, s.short_exit):
        assert arr.dtype == bool and arr.shape == (n,)
    assert s.long_entry.sum() >= 5 and s.short_entry.sum() >= 5
    assert not (s.long_entry & s.short_entry).any()
    entries = s.long_entry | s.short_entry
    assert not ((s.long_exit | s.short_exit) & entries).any()
    assert np.isnan(s.stop_dist).all() and np.isnan(s.take_dist).all()  # defaults: stops off


@pytest.mark.parametrize("name", sorted(SPACES))
def test_each_family_trades_on_real_eurusd_minutes(dukascopy_dir, name):
    real = BarArrays.from_frame(real_mid_bars(dukascopy_dir))
    assert len(real) == 2880
    s = FAMILIES[name].signals(real, space.defaults(name))
    assert s.long_entry.any() and s.short_entry.any()


def _pine_reference(name: str, b: BarArrays, p: dict) -> tuple[np.ndarray, ...]:
    """The four conditions rebuilt from TA-Lib (or our own indicators where TA-Lib differs)."""
    c = b.close
    if name == "ma_cross":
        f = (talib.SMA if p["ma"] == "sma" else talib.EMA)(c, p["fast"])
        s = (talib.SMA if p["ma"] == "sma" else talib.EMA)(c, p["slow"])
        none = np.zeros(len(c), bool)
        return crossover(f, s), crossunder(f, s), none, none
    if name == "rsi_reversion":
        r = talib.RSI(c, p["length"])
        return (
            crossover(r, p["lower"]),
            crossunder(r, p["upper"]),
            crossover(r, 50),
            crossunder(r, 50),
        )
    if name == "macd_cross":
        line = talib.EMA(c, p["fast"]) - talib.EMA(c, p["slow"])
        sig = np.full_like(c, np.nan)
        sig[p["slow"] - 1 :] = talib.EMA(line[p["slow"] - 1 :], p["signal"])
        none = np.zeros(len(c), bool)
        return crossover(line, sig), crossunder(line, sig), none, none
    if name in ("bb_breakout", "bb_reversion"):
        up, mid, lo = talib.BBANDS(c, p["length"], p["mult"], p["mult"], 0)
        if name == "bb_breakout":
            return crossover(c, up), crossunder(c, lo), crossunder(c, mid), crossover(c, mid)
        return crossover(c, lo), crossunder(c, up), crossover(c, mid), crossunder(c, mid)
    k, d = talib.STOCH(b.high, b.low, c, p["k"], p["smooth_k"], 0, p["d"], 0)
    plus, minus, adx = ind.dmi(b.high, b.low, c, p["di_length"], p["adx_smoothing"])
    trend = adx > p["adx_threshold"]
    return (
        crossover(k, d) & trend & (plus > minus),
        crossunder(k, d) & trend & (minus > plus),
        crossunder(plus, minus),
        crossover(plus, minus),
    )


@pytest.mark.parametrize("name", sorted(SPACES))
def test_rules_match_the_pine_formulas_rebuilt_from_talib(bars, name):
    for p in space.grid(name, 12, fixed={"stop_atr": 0.0, "take_atr": 0.0}):
        s = FAMILIES[name].signals(bars, p)
        le, se, lx, sx = _pine_reference(name, bars, p)
        # Skip the first bars: TA-Lib's STOCH %K starts later than Pine's (documented).
        w = 60
        entry = le | se
        np.testing.assert_array_equal(s.long_entry[w:], le[w:], err_msg=f"{name} {p}")
        np.testing.assert_array_equal(s.short_entry[w:], se[w:], err_msg=f"{name} {p}")
        np.testing.assert_array_equal(s.long_exit[w:], (lx & ~entry)[w:], err_msg=f"{name} {p}")
        np.testing.assert_array_equal(s.short_exit[w:], (sx & ~entry)[w:], err_msg=f"{name} {p}")


def test_ma_cross_enters_long_on_the_bar_that_crosses_up_and_short_on_the_cross_down():
    # fast = SMA(2), slow = SMA(5) of a V then an inverted V: exact crossing bars are known.
    close = np.array([10, 9, 8, 7, 6, 7, 8, 9, 10, 11, 10, 9, 8, 7, 6], dtype=float)
    n = len(close)
    b = BarArrays(
        T0_MS + MINUTE_MS * np.arange(n, dtype=np.int64), close, close + 0.5, close - 0.5, close
    )
    p = dict(space.defaults("ma_cross"), fast=2, slow=5, ma="sma")
    s = FAMILIES["ma_cross"].signals(b, p)
    fast, slow = ind.sma(close, 2), ind.sma(close, 5)
    # bar 6: fast 7.5 > slow 7.2 and bar 5: fast 6.5 <= slow 7.4 -> cross up.
    assert fast[6] > slow[6] and fast[5] <= slow[5]
    assert np.flatnonzero(s.long_entry).tolist() == [6]
    # bar 11: fast 9.5 < slow 9.8 and bar 10: fast 10.5 >= slow 9.6 -> cross down.
    assert np.flatnonzero(s.short_entry).tolist() == [11]
    assert not s.long_exit.any() and not s.short_exit.any()  # reversal only: always in the market
    ind_series = FAMILIES["ma_cross"].indicators(b, p)
    np.testing.assert_array_equal(ind_series["fast_ma"], fast)
    np.testing.assert_array_equal(ind_series["slow_ma"], slow)


def test_atr_stop_and_target_are_multiples_of_atr_and_nan_when_off(bars):
    p = dict(space.defaults("macd_cross"), atr_length=10, stop_atr=1.5, take_atr=3.25)
    s = FAMILIES["macd_cross"].signals(bars, p)
    atr = ind.atr(bars.high, bars.low, bars.close, 10)
    np.testing.assert_array_equal(s.stop_dist, 1.5 * atr)
    np.testing.assert_array_equal(s.take_dist, 3.25 * atr)
    assert np.isnan(s.stop_dist[:9]).all() and (s.stop_dist[9:] > 0).all()
    only_stop = FAMILIES["macd_cross"].signals(bars, dict(p, take_atr=0.0))
    assert np.isnan(only_stop.take_dist).all()
    np.testing.assert_array_equal(only_stop.stop_dist, s.stop_dist)
    np.testing.assert_array_equal(FAMILIES["macd_cross"].indicators(bars, p)["atr"], atr)


def test_crossover_follows_pine_including_equality_and_na():
    a = np.array([1.0, 2.0, 2.0, 3.0, np.nan, 5.0, 1.0, 2.0])
    b = np.array([2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, np.nan])
    # bar 3: 3 > 2 and previous 2 <= 2 -> cross; bar 5 follows a NaN -> no cross.
    assert np.flatnonzero(crossover(a, b)).tolist() == [3]
    assert np.flatnonzero(crossunder(a, b)).tolist() == [6]
    assert np.flatnonzero(crossover(np.array([1.0, 3.0, 1.0, 3.0]), 2.0)).tolist() == [1, 3]
    assert not crossover(np.array([5.0]), 1.0).any()


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(SPACES)),
    which=st.integers(0, 7),
    cut=st.integers(50, 1199),
    seed=st.integers(0, 2**32 - 1),
    tail_seed=st.integers(0, 2**32 - 1),
)
def test_signals_up_to_t_ignore_bars_after_t(name, which, cut, seed, tail_seed):
    points = space.grid(name, 8)
    p = points[which % len(points)]
    b = random_walk_bars(1200, seed)
    other = random_walk_bars(1200, tail_seed)
    shift = b.close[cut] - other.open[cut + 1] if cut + 1 < 1200 else 0.0
    changed = BarArrays(
        b.ts,
        np.concatenate([b.open[: cut + 1], other.open[cut + 1 :] + shift]),
        np.concatenate([b.high[: cut + 1], other.high[cut + 1 :] + shift]),
        np.concatenate([b.low[: cut + 1], other.low[cut + 1 :] + shift]),
        np.concatenate([b.close[: cut + 1], other.close[cut + 1 :] + shift]),
    )
    fam = FAMILIES[name]
    full = signal_arrays(fam.signals(b, p))
    alt = signal_arrays(fam.signals(changed, p))
    head = signal_arrays(fam.signals(b[: cut + 1], p))
    for k in full:
        np.testing.assert_array_equal(full[k][: cut + 1], alt[k][: cut + 1], err_msg=k)
        np.testing.assert_array_equal(full[k][: cut + 1], head[k], err_msg=k)


# --------------------------------------------------------------------------- the spaces


@pytest.mark.parametrize(
    ("family", "params", "message"),
    [
        (
            "ma_crossover",
            {},
            r"unknown strategy family 'ma_crossover'; known: bb_breakout, bb_reversion",
        ),
        (
            "ma_cross",
            {"fst": 3},
            r"ma_cross: unknown parameter 'fst'; accepted: fast, slow, ma, atr_length",
        ),
        ("ma_cross", {"fast": DROP}, r"ma_cross: missing parameter 'fast' \(int in \[2, 100\]\)"),
        ("ma_cross", {"fast": 1}, r"ma_cross: parameter 'fast' = 1 is out of range \[2, 100\]"),
        (
            "ma_cross",
            {"fast": 7.5},
            r"ma_cross: parameter 'fast' = 7.5 must be an int \(int in \[2, 100\]\)",
        ),
        ("ma_cross", {"fast": True}, r"parameter 'fast' = True must be a number"),
        ("ma_cross", {"ma": "wma"}, r"ma_cross: parameter 'ma' = 'wma' is not one of 'sma', 'ema'"),
        (
            "ma_cross",
            {"fast": 40, "slow": 20},
            r"ma_cross: constraint fast < slow violated: fast = 40, slow = 20",
        ),
        (
            "ma_cross",
            {"fast": 20, "slow": 20},
            r"constraint fast < slow violated: fast = 20, slow = 20",
        ),
        (
            "ma_cross",
            {"stop_atr": 0.3},
            r"parameter 'stop_atr' = 0.3 is off the step grid: 0 \+ k \* 0.25",
        ),
        (
            "ma_cross",
            {"take_atr": 10.25},
            r"parameter 'take_atr' = 10.25 is out of range \[0, 10\]",
        ),
        (
            "bb_breakout",
            {"mult": float("nan")},
            r"bb_breakout: parameter 'mult' = nan must be finite",
        ),
        (
            "rsi_reversion",
            {"upper": 50},
            r"rsi_reversion: parameter 'upper' = 50 is out of range \[55, 90\]",
        ),
    ],
)
def test_validate_names_family_parameter_value_and_accepted_range(family, params, message):
    full = dict(space.defaults(family), **params) if family in SPACES else dict(params)
    full = {k: v for k, v in full.items() if v is not DROP}
    with pytest.raises(ParameterError, match=message) as err:
        space.validate(family, full)
    assert isinstance(err.value, AioError)
    assert err.value.family == family


def test_validate_normalizes_types_and_float_noise():
    p = space.validate(
        "bb_breakout",
        dict(space.defaults("bb_breakout"), length=np.int64(30), mult=0.30000000000000004 + 2.0),
    )
    assert p["length"] == 30 and type(p["length"]) is int
    assert p["mult"] == 2.3
    q = space.validate("ma_cross", dict(space.defaults("ma_cross"), fast=12.0))
    assert q["fast"] == 12 and type(q["fast"]) is int
    err = pytest.raises(
        ParameterError, space.validate, "ma_cross", dict(space.defaults("ma_cross"), fast=500)
    ).value
    assert (err.param, err.value, err.accepted) == ("fast", 500, "int in [2, 100]")


def test_optuna_sampling_always_yields_valid_parameters():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in sorted(SPACES):
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=3, n_startup_trials=8))
        seen: list[dict] = []

        def objective(trial: optuna.Trial, name: str = name, seen: list = seen) -> float:
            p = space.sample_optuna(trial, name)
            assert space.validate(name, p) == p
            assert space.validate(name, trial.params) == p  # what Optuna stored is valid too
            seen.append(p)
            return float(sum(v for v in p.values() if not isinstance(v, str)))

        study.optimize(objective, n_trials=25)
        states = {t.state for t in study.trials}
        assert states == {optuna.trial.TrialState.COMPLETE}, (name, states)
        for c in SPACES[name].constraints:
            assert all(c.holds(p) for p in seen)
            # The sampler explores close to the constraint boundary, not only the easy corner.
            assert min(p[c.right] - p[c.left] for p in seen) < 20


def test_grid_is_deterministic_valid_and_within_budget():
    for name in sorted(SPACES):
        for budget in (1, 7, 50, 400):
            g = space.grid(name, budget)
            assert 1 <= len(g) <= budget
            assert all(space.validate(name, p) == p for p in g)
            assert g == space.grid(name, budget)
    assert space.grid("ma_cross", 1) == [space.defaults("ma_cross")]
    g = space.grid(
        "ma_cross", 60, fixed={"stop_atr": 1.0, "take_atr": 2.0, "atr_length": 14, "ma": "sma"}
    )
    assert {p["stop_atr"] for p in g} == {1.0} and {p["ma"] for p in g} == {"sma"}
    assert {p["fast"] for p in g} >= {2, 100} and {p["slow"] for p in g} >= {5, 300}
    assert all(p["fast"] < p["slow"] for p in g)
    with pytest.raises(ParameterError, match="unknown parameter 'speed'"):
        space.grid("ma_cross", 10, fixed={"speed": 1})


def test_describe_is_json_and_mirrors_the_declarations():
    for name in sorted(SPACES):
        d = json.loads(json.dumps(space.describe(name)))
        assert d["family"] == name and d["doc"] == SPACES[name].doc
        assert [p["name"] for p in d["params"]] == list(SPACES[name].names)
    d = space.describe("ma_cross")
    assert d["params"][0] == {"name": "fast", "type": "int", "default": 10, "doc": "fast MA length, bars",
                              "low": 2, "high": 100, "step": 1}  # fmt: skip
    assert d["params"][2]["choices"] == ["sma", "ema"]
    assert d["constraints"] == [
        {"type": "less", "left": "fast", "right": "slow", "expr": "fast < slow"}
    ]


def test_bad_declarations_are_refused_when_written():
    with pytest.raises(ValueError, match="default 3 not in int in \\[4, 9\\]"):
        IntParam("n", 4, 9, default=3)
    with pytest.raises(ValueError, match="high - low must be a multiple of step"):
        FloatParam("x", 0.0, 1.0, 0.3, default=0.0)
    with pytest.raises(ValueError, match="default must be one of"):
        ChoiceParam("c", ("a", "b"), default="z")
    with pytest.raises(ValueError, match="needs a.low < b.low"):
        Space(
            "f", (IntParam("a", 5, 9, default=5), IntParam("b", 5, 9, default=9)), (Less("a", "b"),)
        )
    with pytest.raises(ValueError, match="defaults violate a < b"):
        Space(
            "f", (IntParam("a", 1, 9, default=8), IntParam("b", 5, 9, default=6)), (Less("a", "b"),)
        )


def test_param_below_gives_the_largest_on_step_value_under_a_bound():
    p = IntParam("n", 2, 20, 3, default=2)  # 2, 5, 8, 11, 14, 17, 20
    assert (p.below(11), p.below(11.5), p.below(2), p.below(100)) == (8, 11, None, 20)
    f = FloatParam("x", 0.5, 3.0, 0.25, default=0.5)
    assert (f.below(1.0), f.below(1.1), f.below(0.5), f.below(9.0)) == (0.75, 1.0, None, 3.0)
    assert math.isclose(sum(f.values()), sum(0.5 + 0.25 * k for k in range(11)))


# --------------------------------------------------------------------------- BarArrays


def test_bar_arrays_from_a_bar_frame_take_the_chosen_side():
    b = random_walk_bars(50, 1)
    ts = pl.Series("ts", b.ts).cast(pl.Datetime("ms", "UTC"))
    frame = pl.DataFrame({"ts": ts})
    for side, off in (("mid", 0.0), ("bid", -5e-5), ("ask", 5e-5)):
        for f in ("open", "high", "low", "close"):
            frame = frame.with_columns(pl.Series(f"{side}_{f}", getattr(b, f) + off))
    mid = BarArrays.from_frame(frame)
    np.testing.assert_array_equal(mid.ts, b.ts)
    np.testing.assert_array_equal(mid.close, b.close)
    ask = BarArrays.from_frame(frame.to_arrow(), price="ask")
    np.testing.assert_allclose(ask.low, b.low + 5e-5)
    us = BarArrays.from_frame(frame.with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC"))))
    np.testing.assert_array_equal(us.ts, b.ts)
    assert len(mid[10:20]) == 10 and mid[10:20].ts[0] == b.ts[10]


def test_bar_arrays_refuse_bad_input_with_specific_errors():
    b = random_walk_bars(5, 1)
    with pytest.raises(BarsError, match=r"missing column\(s\) \['mid_open'"):
        BarArrays.from_frame(pl.DataFrame({"ts": b.ts, "mid_close": b.close}))
    with pytest.raises(BarsError, match="price must be 'mid', 'bid' or 'ask'"):
        BarArrays.from_frame(pl.DataFrame({"ts": b.ts}), price="last")  # type: ignore[arg-type]
    ts = b.ts.copy()
    ts[3] = ts[2]
    with pytest.raises(BarsError, match="strictly increasing: bar 3"):
        BarArrays(ts, b.open, b.high, b.low, b.close)
    with pytest.raises(BarsError, match="BarArrays.low has 4 bars, ts has 5"):
        BarArrays(b.ts, b.open, b.high, b.low[:4], b.close)
    with pytest.raises(BarsError, match="ts must be a 1-D int64"):
        BarArrays(b.ts.astype(float), b.open, b.high, b.low, b.close)
