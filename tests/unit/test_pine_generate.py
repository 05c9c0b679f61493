"""Pine generation from typed templates: every family, header, inputs, escaping, refusals.

These tests need neither Node nor pynescript; syntax and execution are in
test_pine_syntax.py and test_pine_parity.py.
"""

from __future__ import annotations

import re

import pytest

from aio_ray.pine import builder as pb
from aio_ray.pine.builder import PineBuildError, ScriptBuilder, call
from aio_ray.pine.escape import comment_text, pine_string, safe_text
from aio_ray.pine.generate import (
    META_PREFIX,
    PLOT_SIGNALS,
    PineGenerationError,
    ScriptSource,
    generate,
    read_meta,
)
from aio_ray.strategies.engine import BacktestConfig
from aio_ray.strategies.families import get_family
from aio_ray.strategies.space import SPACES, ParameterError
from tests.support.pine_fixtures import FAMILIES, HOSTILE, params


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", ["strategy", "indicator"])
def test_every_family_generates_a_complete_v6_script(family: str, kind: str) -> None:
    p = params(family)
    code = generate(
        ScriptSource(
            family,
            p,
            "15m",
            period_ms=(1549238400000, 1549411140000),
            metrics={"net_profit": 12.5, "sharpe": 1.25, "trades": 40},
        ),
        kind,
    )  # type: ignore[arg-type]
    lines = code.splitlines()
    assert lines[0] == "//@version=6"
    decl = [ln for ln in lines if ln.startswith(f"{kind}(")]
    assert len(decl) == 1
    # inputs carry the parameters as defaults, one per declared parameter
    for prm in SPACES[family].params:
        m = re.search(
            rf'^i_{prm.name} = input\.(int|float|string)\((.+?), "{prm.name}"', code, re.MULTILINE
        )
        assert m is not None, prm.name
        default = m.group(2)
        if prm.kind == "choice":
            assert default == f'"{p[prm.name]}"'
        else:
            assert float(default) == float(p[prm.name])
            assert (m.group(1) == "int") == (prm.kind == "int")
    # plots: every indicator the family exposes, ATR and the four 0/1 conditions
    titles = re.findall(r'^plot\(.*?, "([a-z_]+)"', code, re.MULTILINE)
    assert set(PLOT_SIGNALS) <= set(titles) and "atr" in titles
    # header: source, parameters, timeframe, period and metrics
    assert f"// Family: {family}." in code
    assert "// Timeframe: 15m, symbol EURUSD" in code
    assert "// Data period: 2019-02-04 00:00 UTC to 2019-02-05 23:59 UTC" in code
    assert "net_profit=12.5" in code and "trades=40" in code
    if kind == "strategy":
        assert 'strategy.entry("L", strategy.long)' in code
        assert 'strategy.entry("S", strategy.short)' in code
        assert 'strategy.close("L")' in code and 'strategy.close("S")' in code
        assert 'strategy.exit("XL", "L", stop=long_stop, limit=long_take)' in code
        assert "alert(" in code and "alertcondition(" not in code
        assert "margin_long=0.0" in code and "pyramiding=0" in code
    else:
        assert "strategy." not in code.split("\n\n", 2)[2].replace("strategy.position", "")
        assert code.count("alertcondition(") == 4


@pytest.mark.parametrize("family", FAMILIES)
def test_plot_titles_are_the_family_indicator_keys(family: str) -> None:
    import numpy as np

    from aio_ray.bars.arrays import BarArrays

    n = 60
    x = 1.1 + np.sin(np.arange(n) / 5) * 1e-3
    bars = BarArrays(np.arange(n, dtype=np.int64) * 60_000, x, x + 2e-4, x - 2e-4, x)
    keys = list(get_family(family).indicators(bars, params(family)))
    code = generate(ScriptSource(family, params(family), "1m"))
    titles = re.findall(r'^plot\(.*?, "([a-z_]+)"', code, re.MULTILINE)
    assert titles == keys + list(PLOT_SIGNALS)


def test_meta_line_round_trips_family_params_and_costs() -> None:
    cfg = BacktestConfig(price_model="single", commission=7.0, slippage_points=2.0, units=50_000.0)
    p = params("bb_breakout")
    code = generate(ScriptSource("bb_breakout", p, "1h", strategy_id="abc123", backtest=cfg))
    meta = read_meta(code)
    assert meta["family"] == "bb_breakout" and meta["params"] == p
    assert (
        meta["timeframe"] == "1h" and meta["kind"] == "strategy" and meta["strategy_id"] == "abc123"
    )
    # the backtest the script reproduces: TradingView has no swap, so the rates are kept apart
    assert BacktestConfig.model_validate(meta["backtest"]) == cfg.model_copy(
        update={"swap_long": 0.0, "swap_short": 0.0}
    )
    assert meta["not_in_tradingview"] == {"swap_long": cfg.swap_long, "swap_short": cfg.swap_short}
    # per-lot commission becomes cash per contract (unit); slippage in ticks; size fixed
    assert "commission_type=strategy.commission.cash_per_contract" in code
    assert "commission_value=7e-05" in code or "commission_value=7.0e-05" in code
    assert "slippage=2," in code and "default_qty_value=50000.0" in code


def test_header_declares_the_default_costs_and_states_the_swap_tradingview_omits() -> None:
    p = params("ma_cross")
    code = generate(ScriptSource("ma_cross", p, "1h"))  # the engine's default (ECN) costs
    decl = next(ln for ln in code.splitlines() if ln.startswith("strategy("))
    # 3.5 USD per lot per side = 3.5e-05 per unit (one contract = one unit); 1 point = 1 tick
    assert "commission_type=strategy.commission.cash_per_contract" in decl
    assert "commission_value=3.5e-05" in decl and "slippage=1," in decl
    comments = [ln for ln in code.splitlines() if ln.startswith("// ")]
    declared = next(ln for ln in comments if ln.startswith("// Costs in strategy()"))
    assert "3.5 USD per lot (100,000 units) per side" in declared
    assert "slippage 1 ticks of 1e-05 on market and stop fills" in declared
    omitted = next(ln for ln in comments if "Costs TradingView cannot model" in ln)
    assert "swap at the 17:00 New York rollover" in omitted
    assert "long -7 / short +2 USD per lot (100,000 units) per rollover" in omitted
    assert "tripled for the Wednesday close" in omitted
    assert any("TradingView's net profit and trade list do not" in ln for ln in comments)
    # no swap: the header says so, and nothing else changes in the code
    free = BacktestConfig(price_model="single", swap_long=0.0, swap_short=0.0)
    code0 = generate(ScriptSource("ma_cross", p, "1h", backtest=free))
    assert "// Costs TradingView cannot model: none (the backtest charged no swap)" in code0
    body = [ln for ln in code.splitlines() if not ln.startswith("//")]
    assert body == [ln for ln in code0.splitlines() if not ln.startswith("//")]
    # a percent commission is declared as such
    pct = BacktestConfig(price_model="single", commission_type="percent", commission=0.002)
    code = generate(ScriptSource("ma_cross", p, "1h", backtest=pct))
    assert "commission_type=strategy.commission.percent, commission_value=0.002" in code
    assert "commission 0.002 % of each fill's value" in code


def test_read_meta_rejects_foreign_scripts() -> None:
    with pytest.raises(PineGenerationError, match="not a script generated by aio-ray"):
        read_meta('//@version=6\nindicator("x")\nplot(close)\n')
    with pytest.raises(PineGenerationError, match="malformed"):
        read_meta(META_PREFIX + "{not json\n")


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_cannot_change_the_script(name: str) -> None:
    p = params("ma_cross")
    plain = generate(ScriptSource("ma_cross", p, "15m", name="PLACEHOLDER"))
    evil = generate(ScriptSource("ma_cross", p, "15m", name=name))
    safe, label = safe_text(name, 120), safe_text(name, 60)
    assert '"' not in safe and "\n" not in safe and "\\" not in safe and "/" not in safe
    a, b = plain.splitlines(), evil.splitlines()
    assert len(a) == len(b)
    for la, lb in zip(a, b, strict=True):
        if la.startswith("//"):
            # a comment stays one comment line (the name is escaped for comments there)
            assert lb.startswith("//") and ("PLACEHOLDER" in la or la == lb)
        else:
            # code lines are identical once the escaped name is put in its string literals
            assert lb in (la.replace("PLACEHOLDER", safe), la.replace("PLACEHOLDER", label))


def test_an_empty_name_falls_back_to_the_default_title() -> None:
    p = params("ma_cross")
    assert generate(ScriptSource("ma_cross", p, "15m", name="")) == generate(
        ScriptSource("ma_cross", p, "15m")
    )


def test_safe_text_rules() -> None:
    assert safe_text('a"b\\c/d`e') == "a'b-c-d'e"
    assert safe_text("x\n\r\t\u2028\u2029y  z") == "x y z"
    assert safe_text("\u202eabc\u200b\x00") == "abc"
    assert safe_text("Straté gie €  ✓ 10%") == "Straté gie 10%"
    assert safe_text("") == "aio strategy" and safe_text("\n\n") == "aio strategy"
    assert len(safe_text("x" * 500)) == 120
    assert pine_string('say "hi"') == "\"say 'hi'\""
    assert comment_text("a/b /* c */ d") == "a/b / * c * / d"


def test_builder_refuses_type_and_argument_errors() -> None:
    b = ScriptBuilder()
    n = b.let("n", pb.int_(14))
    with pytest.raises(PineBuildError, match="expected int"):
        call("ta.sma", pb.SERIES["close"], pb.float_(14.0))
    with pytest.raises(PineBuildError, match="positional"):
        call("ta.rsi", pb.SERIES["close"])
    with pytest.raises(PineBuildError, match="no keyword"):
        call("ta.sma", pb.SERIES["close"], n, offset=pb.int_(1))
    with pytest.raises(PineBuildError, match="unknown Pine function"):
        call("ta.vwap2", pb.SERIES["close"])
    with pytest.raises(PineBuildError, match="declared twice"):
        b.let("n", pb.int_(1))
    with pytest.raises(PineBuildError, match="before it is declared"):
        b.ref("undefined_thing")
    with pytest.raises(PineBuildError, match="reserved"):
        b.let("close", pb.float_(1.0))
    with pytest.raises(PineBuildError, match="expected bool"), b.if_(n):
        b.do("runtime.error", pb.string("x"))
    with pytest.raises(PineBuildError, match="cannot assign"):
        v = b.var_float("v")
        b.assign(v.code, pb.boolean(True))
    with pytest.raises(PineBuildError, match="unknown Pine constant"):
        pb.const("strategy.everything")
    with pytest.raises(PineBuildError, match="finite"):
        pb.float_(float("nan"))
    # the good path types its result
    assert call("ta.crossover", pb.SERIES["close"], n).type == "bool"
    assert (n * 2.0).type == "float" and (n + 1).type == "int"


def test_unsupported_backtest_settings_are_refused_with_the_setting_named() -> None:
    p = params("ma_cross")
    with pytest.raises(PineGenerationError, match="backtest.sizing"):
        generate(ScriptSource("ma_cross", p, "1h", backtest=BacktestConfig(sizing="risk")))
    with pytest.raises(PineGenerationError, match="slippage_points"):
        generate(ScriptSource("ma_cross", p, "1h", backtest=BacktestConfig(slippage_points=0.5)))
    with pytest.raises(PineGenerationError, match="kind must be"):
        generate(ScriptSource("ma_cross", p, "1h"), "library")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="slow"):
        generate(ScriptSource("ma_cross", {**p, "slow": 3}, "1h"))
    # an indicator script states no costs, so any sizing is fine there
    assert generate(
        ScriptSource("ma_cross", p, "1h", backtest=BacktestConfig(sizing="risk")), "indicator"
    )
