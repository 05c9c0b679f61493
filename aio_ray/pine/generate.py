"""Pine Script v6 for every strategy family, from typed templates.

Each family writes its own indicators and raw conditions (its ``pine`` method, in its file
under :mod:`aio_ray.strategies.families`, returning :class:`aio_ray.pine.templates.PineParts`);
this module looks the family up in the registry and adds everything the families share.

Stable public API::

    ScriptSource(family, params, timeframe, symbol="EURUSD", name=None, strategy_id=None,
                 backtest=BacktestConfig(price_model="single"), period_ms=None, metrics=None,
                 warning=None)
    generate(source, kind="strategy") -> str     # kind: "strategy" | "indicator"
    read_meta(code) -> dict                      # the machine-readable header of a script
    PLOT_SIGNALS                                 # titles of the 0/1 condition plots
    PineGenerationError

What a ``strategy`` script does, bar by bar (the engine's ``single`` price model,
:mod:`aio_ray.strategies.fills`):

* the family's indicators with ``ta.*`` and its four raw conditions, cleaned exactly as
  :meth:`aio_ray.strategies.families.base.Family.signals` does (conflicting entries cancel,
  an entry clears the exits of its bar);
* on the bar's close: ``strategy.entry`` for an entry unless already in that direction
  (``pyramiding=0``; an entry against a position reverses it), ``strategy.close`` for an
  exit signal of the held side; fills at the next bar's open;
* stop and target levels fixed at the signal bar: ``close -/+ stop_atr * ta.atr`` (and
  ``+/- take_atr``), rounded to the tick away from the close (order prices are whole
  ticks), kept in ``var`` variables a quarter tick back toward the close (so rounding to
  the nearest tick or away from the close gives the same tick) and handed to
  ``strategy.exit`` on *every* bar.
  The every-bar call is deliberate: an exit queued only on the bar where the entry reverses
  the position is dropped by PineTS (and, per its authors, by TradingView when the levels
  live in an ``if`` block), so the script never relies on that pattern;
* ``margin_long = margin_short = 0`` (no margin model, as the engine), fixed size per trade,
  commission (``per_lot`` as cash per contract, the contract being one unit) and slippage
  (whole ticks) from the backtest's configuration. TradingView has no swap: the header
  states the swap rates in a comment, so a trader knows TradingView's figures omit them, and
  the ``// @aio-ray`` line records the backtest with ``swap_long = swap_short = 0`` (what the
  script reproduces, hence what ``verify-pine`` replays) and the rates apart
  (``not_in_tradingview``);
* the pattern filter (``pattern_filter``/``pattern_lookback``, every family): the candle
  patterns of :mod:`aio_ray.pine.patterns` (the same rules as
  :func:`aio_ray.patterns.detectors.detect_candles`), the one named by the
  ``pattern_filter`` input selected (``pattern_signal``: a marker on the price chart and,
  when the script is generated with a filter, a 0/1 plot ``pattern`` as
  ``Family.indicators`` has it), and both raw entries gated by
  ``pattern_filter == "none" or ta.barssince(pattern_signal) < pattern_lookback``
  (``ta.barssince`` is ``na`` until the pattern first fires, and ``na < n`` is false). Like
  every input, the filter stays live: it can be switched or turned off in the script's
  settings.

The ``indicator`` script plots the same indicators and 0/1 conditions, with
``alertcondition()`` per condition; the strategy uses ``alert()`` (TradingView ignores
``alertcondition()`` in strategies).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aio_ray.errors import AioError
from aio_ray.patterns.vocabulary import BEARISH, BULLISH
from aio_ray.pine import builder as pb
from aio_ray.pine.builder import Expr, ScriptBuilder, call, const, string
from aio_ray.pine.escape import safe_text
from aio_ray.pine.patterns import PINE_PATTERNS, pattern_condition, pattern_variable
from aio_ray.pine.templates import FALSE
from aio_ray.strategies.engine import BacktestConfig
from aio_ray.strategies.families import Family, get_family
from aio_ray.strategies.families.base import PATTERN_KEY
from aio_ray.strategies.fills import LEVEL_TICK_EPS
from aio_ray.strategies.space import (
    PATTERN_NONE,
    PATTERN_PARAMS,
    ChoiceParam,
    FloatParam,
    IntParam,
    Space,
    validate,
)

__all__ = [
    "KINDS",
    "META_PREFIX",
    "PLOT_SIGNALS",
    "PineGenerationError",
    "ScriptSource",
    "generate",
    "read_meta",
]

Kind = Literal["strategy", "indicator"]
KINDS: tuple[str, ...] = ("strategy", "indicator")
PLOT_SIGNALS: tuple[str, ...] = ("long_entry", "short_entry", "long_exit", "short_exit")
"""Titles of the 0/1 plots of the cleaned conditions (``Signals`` fields of the same name)."""
META_PREFIX = "// @aio-ray "
MINTICK = 1e-5
"""The tick the generated scripts assume for EURUSD-like symbols (``syminfo.mintick``)."""
_ROUND_EPS = LEVEL_TICK_EPS  # ticks: the engine rounds levels the same way (fills.round_level)


class PineGenerationError(AioError, ValueError):
    """A script cannot be generated for these inputs (names the input and the reason)."""


@dataclass(frozen=True)
class ScriptSource:
    """Everything a generated script states about where it comes from.

    Attributes
    ----------
    family, params
        The strategy family and its parameters (validated; become the inputs' defaults).
    timeframe, symbol
        Bars the strategy was tested on (e.g. ``"1h"``, ``"EURUSD"``).
    name
        Display name (user text: escaped); default ``aio <family> <timeframe>``.
    strategy_id
        Library id, if any.
    backtest
        Costs and sizing of the backtest; the script states the ``single`` price model's
        view whatever ``price_model`` says. Default: the engine's default (ECN) costs.
    period_ms
        ``(first, last)`` UTC ms of the data the metrics come from, if known.
    metrics
        Key metrics of the backtest for the header (name -> value), if known.
    warning
        Why the strategy is not to be trusted (a rejected strategy exported anyway: the
        gates it failed and the run's verdict); stated near the top of the header as
        ``// NOT SIGNIFICANT: <warning>`` (escaped). None: no such line.
    """

    family: str
    params: Mapping[str, Any]
    timeframe: str
    symbol: str = "EURUSD"
    name: str | None = None
    strategy_id: str | None = None
    backtest: BacktestConfig = field(default_factory=lambda: BacktestConfig(price_model="single"))
    period_ms: tuple[int, int] | None = None
    metrics: Mapping[str, Any] | None = None
    warning: str | None = None


# --------------------------------------------------------------------------- shared parts

_COLORS = ("color.blue", "color.orange", "color.purple", "color.teal", "color.red", "color.green")
_FILTER_CHOICES = next(p for p in PATTERN_PARAMS if p.name == "pattern_filter")
assert isinstance(_FILTER_CHOICES, ChoiceParam)
assert set(_FILTER_CHOICES.choices) - {PATTERN_NONE} <= set(PINE_PATTERNS), (
    "every pattern_filter choice needs a Pine definition"
)


def _pattern_filter(b: ScriptBuilder, i: dict[str, Expr]) -> tuple[Expr, Expr]:
    """Every filterable candle pattern, the selected one and the entry gate."""
    assert isinstance(_FILTER_CHOICES, ChoiceParam)
    names = [c for c in _FILTER_CHOICES.choices if c != PATTERN_NONE]
    conds = {
        n: b.let(pattern_variable(n), pb.verbatim(pattern_condition(n), "bool")) for n in names
    }
    chosen: Expr = FALSE
    for n in reversed(names):
        chosen = i["pattern_filter"].eq_str(string(n)).choose(conds[n], chosen)
    signal = b.let("pattern_signal", chosen)
    since = b.let("bars_since_pattern", call("ta.barssince", signal))
    off = i["pattern_filter"].eq_str(string(PATTERN_NONE))
    ok = b.let("pattern_ok", off.or_(since.lt(i["pattern_lookback"])))
    return signal, ok


def _pattern_marker(pattern: str) -> dict[str, Expr]:
    """plotshape() style of the marker: bullish below the bar, bearish above, neutral a cross."""
    if pattern in BULLISH:
        style, where, color = "shape.triangleup", "location.belowbar", "color.green"
    elif pattern in BEARISH:
        style, where, color = "shape.triangledown", "location.abovebar", "color.red"
    else:
        style, where, color = "shape.xcross", "location.abovebar", "color.gray"
    return {
        "style": const(style),
        "location": const(where),
        "color": const(color),
        "size": const("size.small"),
        "force_overlay": pb.boolean(True),
    }


# --------------------------------------------------------------------------- header


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.6g}"
    return str(v)


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _costs(cfg: BacktestConfig) -> dict[str, Expr]:
    """The strategy() keywords that state the backtest's costs and sizing."""
    if cfg.sizing != "fixed":
        raise PineGenerationError(
            f"backtest.sizing {cfg.sizing!r}: only 'fixed' sizing is exported to Pine for now"
        )
    if abs(cfg.point_size - MINTICK) > 1e-15:
        raise PineGenerationError(
            f"backtest.point_size {cfg.point_size}: scripts assume a tick of {MINTICK}"
        )
    slip = cfg.slippage_points
    if slip != int(slip):
        raise PineGenerationError(
            f"backtest.slippage_points {slip}: Pine's slippage is a whole number of ticks"
        )
    if cfg.commission_type == "per_lot":
        ctype, cval = "strategy.commission.cash_per_contract", cfg.commission / 100_000.0
    elif cfg.commission_type == "percent":
        ctype, cval = "strategy.commission.percent", cfg.commission
    else:
        ctype, cval = "strategy.commission.cash_per_order", cfg.commission
    return {
        "initial_capital": pb.float_(cfg.initial_capital),
        "default_qty_type": const("strategy.fixed"),
        "default_qty_value": pb.float_(cfg.units),
        "pyramiding": pb.int_(0),
        "commission_type": const(ctype),
        "commission_value": pb.float_(cval),
        "slippage": pb.int_(int(slip)),
        "margin_long": pb.float_(0.0),
        "margin_short": pb.float_(0.0),
        "process_orders_on_close": pb.boolean(False),
        "calc_on_every_tick": pb.boolean(False),
        "calc_on_order_fills": pb.boolean(False),
    }


_NOT_IN_TRADINGVIEW = ("swap_long", "swap_short")
"""Backtest costs TradingView's ``strategy()`` cannot declare (it has no swap)."""


def _meta(src: ScriptSource, params: dict[str, Any], kind: str) -> str:
    cfg = src.backtest
    meta = {
        "family": src.family,
        "params": params,
        "timeframe": src.timeframe,
        "symbol": src.symbol,
        "kind": kind,
        "strategy_id": src.strategy_id,
        # what the script reproduces (and verify-pine replays): no swap in TradingView
        "backtest": cfg.model_copy(update=dict.fromkeys(_NOT_IN_TRADINGVIEW, 0.0)).model_dump(
            mode="json"
        ),
        "not_in_tradingview": {k: getattr(cfg, k) for k in _NOT_IN_TRADINGVIEW},
    }
    text = json.dumps(meta, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    assert "\n" not in text and "\r" not in text
    return META_PREFIX + text


def read_meta(code: str) -> dict[str, Any]:
    """The ``// @aio-ray {...}`` header of a generated script, decoded.

    Raises PineGenerationError when the script has no such line (not generated by aio-ray).
    """
    for line in code.splitlines():
        if line.startswith(META_PREFIX):
            try:
                meta = json.loads(line[len(META_PREFIX) :])
            except json.JSONDecodeError as exc:
                raise PineGenerationError(f"malformed {META_PREFIX.strip()} line: {exc}") from None
            if not isinstance(meta, dict) or "family" not in meta or "params" not in meta:
                raise PineGenerationError(f"{META_PREFIX.strip()} line lacks family/params")
            return meta
    raise PineGenerationError(
        f"no '{META_PREFIX.strip()}' header line: not a script generated by aio-ray"
    )


def _cost_lines(src: ScriptSource, kind: str) -> list[str]:
    """The header's cost comments: what strategy() declares, and what TradingView omits."""
    cfg = src.backtest
    ccy = src.symbol[-3:] if len(src.symbol) == 6 and src.symbol.isalpha() else "account ccy"
    if cfg.commission_type == "per_lot":
        comm = f"{_fmt_value(cfg.commission)} {ccy} per lot (100,000 units) per side"
    elif cfg.commission_type == "percent":
        comm = f"{_fmt_value(cfg.commission)} % of each fill's value"
    else:
        comm = f"{_fmt_value(cfg.commission)} {ccy} per order"
    where = "in strategy() (TradingView models these)" if kind == "strategy" else "of the backtest"
    declared = (
        f"Costs {where}, single price model: capital {_fmt_value(cfg.initial_capital)} {ccy}, "
        f"{_fmt_value(cfg.units)} units per trade, commission {comm}, slippage "
        f"{_fmt_value(cfg.slippage_points)} ticks of {_fmt_value(cfg.point_size)} on market and "
        f"stop fills"
    )
    lines = [declared]
    if cfg.swap_long == 0.0 and cfg.swap_short == 0.0:
        lines.append("Costs TradingView cannot model: none (the backtest charged no swap)")
    else:
        lines.append(
            f"Costs TradingView cannot model, so its results omit them: swap at the 17:00 "
            f"New York rollover, long {cfg.swap_long:+.6g} / short {cfg.swap_short:+.6g} {ccy} "
            f"per lot (100,000 units) per rollover held "
            f"(negative = charged), tripled for the Wednesday close"
        )
        lines.append(
            "The aio-ray backtest figures include the swap; TradingView's net profit and "
            "trade list do not."
        )
    return lines


def _header(
    b: ScriptBuilder, src: ScriptSource, space: Space, params: dict[str, Any], kind: str
) -> None:
    b.raw_header("//@version=6")
    if src.warning:
        b.comment(f"NOT SIGNIFICANT: {src.warning}")
    b.comment(f"Generated by aio-ray ({kind} script). Check it with: aio verify-pine FILE.pine")
    title = src.name or f"aio {src.family} {src.timeframe}"
    b.comment(
        f"Strategy: {title}" + (f" (library id {src.strategy_id})" if src.strategy_id else "")
    )
    b.comment(f"Family: {src.family}. {space.doc}")
    b.comment("Parameters: " + ", ".join(f"{k}={_fmt_value(v)}" for k, v in params.items()))
    if params["pattern_filter"] != PATTERN_NONE:
        n = params["pattern_lookback"]
        b.comment(
            f"Pattern filter: entries only on a bar where {params['pattern_filter']} completed "
            + ("on that bar" if n == 1 else f"within the last {n} bars (that bar included)")
        )
    b.comment(f"Timeframe: {src.timeframe}, symbol {src.symbol}")
    if src.period_ms is not None:
        b.comment(f"Data period: {_iso(src.period_ms[0])} to {_iso(src.period_ms[1])}")
    else:
        b.comment("Data period: not recorded")
    if src.metrics:
        b.comment(
            "Backtest metrics: "
            + ", ".join(f"{k}={_fmt_value(v)}" for k, v in src.metrics.items() if v is not None)
        )
    for line in _cost_lines(src, kind):
        b.comment(line)
    b.comment(
        "Orders fill at the next bar's open; stop and target levels are fixed at the signal bar, "
        "rounded to the tick away from its close."
    )
    b.raw_header(_meta(src, params, kind))
    b.blank()


# --------------------------------------------------------------------------- generation


def _inputs(b: ScriptBuilder, space: Space, params: dict[str, Any]) -> dict[str, Expr]:
    out: dict[str, Expr] = {}
    for p in space.params:
        v = params[p.name]
        tip = string(p.doc or p.name)
        title = string(p.name)
        if isinstance(p, IntParam):
            e = call(
                "input.int",
                pb.int_(int(v)),
                title,
                minval=pb.int_(p.low),
                maxval=pb.int_(p.high),
                step=pb.int_(p.step),
                tooltip=tip,
            )
        elif isinstance(p, FloatParam):
            e = call(
                "input.float",
                pb.float_(v),
                title,
                minval=pb.float_(p.low),
                maxval=pb.float_(p.high),
                step=pb.float_(p.step),
                tooltip=tip,
            )
        else:
            assert isinstance(p, ChoiceParam)
            e = call(
                "input.string", string(v), title, options=pb.string_list(p.choices), tooltip=tip
            )
        out[p.name] = b.let(f"i_{p.name}", e)
    return out


def generate(source: ScriptSource, kind: Kind = "strategy") -> str:
    """The Pine v6 ``strategy`` (orders) or ``indicator`` (overlay) script of ``source``.

    Raises
    ------
    ParameterError
        Invalid family or parameters (from :func:`aio_ray.strategies.space.validate`).
    PineGenerationError
        Unknown ``kind``, or a backtest setting Pine cannot state (risk sizing, fractional
        slippage ticks, a tick other than 1e-5).
    """
    if kind not in KINDS:
        raise PineGenerationError(f"kind must be one of {KINDS}, got {kind!r}")
    params = validate(source.family, source.params)
    family: Family = get_family(source.family)
    costs = _costs(source.backtest) if kind == "strategy" else {}
    b = ScriptBuilder()
    _header(b, source, family.space, params, kind)
    title = string(source.name or f"aio {source.family} {source.timeframe}")
    short = string(f"aio {source.family}")

    # The declaration comes after the inputs' types are known; build the body first.
    body = ScriptBuilder()
    inp = _inputs(body, family.space, params)
    for c in family.space.constraints:
        with body.if_(inp[c.left].ge(inp[c.right])):
            body.do("runtime.error", string(f"{c.left} must be less than {c.right}"))
    body.blank()
    parts = family.pine(body, inp)  # the family's indicators and raw conditions
    atr = body.let("atr_value", call("ta.atr", inp["atr_length"]))
    pattern, pattern_ok = _pattern_filter(body, inp)
    le = body.let("long_entry_raw", parts.long_entry.and_(pattern_ok))
    se = body.let("short_entry_raw", parts.short_entry.and_(pattern_ok))
    lx = body.let("long_exit_raw", parts.long_exit)
    sx = body.let("short_exit_raw", parts.short_exit)
    go_long = body.let("go_long", le.and_(se.not_()))
    go_short = body.let("go_short", se.and_(le.not_()))
    entering = go_long.or_(go_short)
    long_exit = body.let("long_exit", lx.and_(entering.not_()))
    short_exit = body.let("short_exit", sx.and_(entering.not_()))
    body.blank()

    label = safe_text(source.name or f"aio {source.family} {source.timeframe}", 60)
    if kind == "strategy":
        _orders(body, inp, atr, go_long, go_short, long_exit, short_exit, label)

    colors = iter(_COLORS)
    for key, value in parts.indicators.items():
        body.do("plot", value, string(key), color=const(next(colors)))
    body.do(
        "plot", atr, string("atr"), color=const("color.gray"), display=const("display.data_window")
    )
    if params["pattern_filter"] != PATTERN_NONE:  # the value, as Family.indicators has it
        body.do(
            "plot",
            pattern.choose(pb.int_(1), pb.int_(0)),
            string(PATTERN_KEY),
            display=const("display.data_window"),
        )
    body.do(
        "plotshape",
        pattern,
        string(f"{PATTERN_KEY} marker"),
        **_pattern_marker(params["pattern_filter"]),
    )
    signals = {
        "long_entry": go_long,
        "short_entry": go_short,
        "long_exit": long_exit,
        "short_exit": short_exit,
    }
    for key, flag in signals.items():
        body.do(
            "plot",
            flag.choose(pb.int_(1), pb.int_(0)),
            string(key),
            display=const("display.data_window"),
        )
    if kind == "indicator":
        for key, flag in signals.items():
            words = key.replace("_", " ")
            body.do(
                "alertcondition",
                flag,
                title=string(words),
                message=string(f"{label}: {words}"),
            )

    if kind == "strategy" and f"currency.{source.symbol[3:6].upper()}" in pb.CONSTANTS:
        costs["currency"] = const(f"currency.{source.symbol[3:6].upper()}")
    b.declaration(kind, title, shorttitle=short, overlay=pb.boolean(parts.overlay), **costs)
    b.blank()
    b.lines.extend(body.lines)
    return b.source()


def _orders(
    b: ScriptBuilder,
    inp: dict[str, Expr],
    atr: Expr,
    go_long: Expr,
    go_short: Expr,
    long_exit: Expr,
    short_exit: Expr,
    label: str,
) -> None:
    na = pb.na
    stop_dist = b.let("stop_dist", inp["stop_atr"].gt(0.0).choose(inp["stop_atr"] * atr, na))
    take_dist = b.let("take_dist", inp["take_atr"].gt(0.0).choose(inp["take_atr"] * atr, na))
    ls, lt, ss, st = (
        b.var_float(n) for n in ("long_stop", "long_take", "short_stop", "short_take")
    )
    pos = b.let("position", pb.POSITION_SIZE)
    close, tick = pb.SERIES["close"], pb.MINTICK

    # The level is the tick at or beyond the raw level (away from the close), stored a
    # quarter tick back toward the close: a broker emulator that rounds order prices to the
    # nearest tick and one that rounds them away from the close (PineTS) both land on that
    # tick, and the stored value never equals a close (closes sit on half ticks).
    def down(x: Expr) -> Expr:  # long stop, short target: the tick at or below x
        return (call("math.floor", x / tick + _ROUND_EPS) + 0.25) * tick

    def up(x: Expr) -> Expr:  # long target, short stop: the tick at or above x
        return (call("math.ceil", x / tick - _ROUND_EPS) - 0.25) * tick

    with b.if_(go_long.and_(pos.le(0.0))):
        b.assign(ls.code, down(close - stop_dist))
        b.assign(lt.code, up(close + take_dist))
        b.do("strategy.entry", string("L"), const("strategy.long"))
        b.do("alert", string(f"{label}: long entry"), const("alert.freq_once_per_bar_close"))
    with b.if_(go_short.and_(pos.ge(0.0))):
        b.assign(ss.code, up(close + stop_dist))
        b.assign(st.code, down(close - take_dist))
        b.do("strategy.entry", string("S"), const("strategy.short"))
        b.do("alert", string(f"{label}: short entry"), const("alert.freq_once_per_bar_close"))
    with b.if_(long_exit.and_(pos.gt(0.0))):
        b.do("strategy.close", string("L"))
        b.do("alert", string(f"{label}: long exit"), const("alert.freq_once_per_bar_close"))
    with b.if_(short_exit.and_(pos.lt(0.0))):
        b.do("strategy.close", string("S"))
        b.do("alert", string(f"{label}: short exit"), const("alert.freq_once_per_bar_close"))
    b.do("strategy.exit", string("XL"), string("L"), stop=ls, limit=lt)
    b.do("strategy.exit", string("XS"), string("S"), stop=ss, limit=st)
    b.blank()
