"""Verification of a generated Pine script: syntax, then execution parity with our engine.

1. **Syntax**: the script parses with pynescript (an ANTLR grammar of Pine; LGPL, a
   test/verification dependency). The first parse in a process costs seconds of parser
   warm-up, later ones milliseconds: keep the process (a test session, a server) alive
   (:func:`check_syntax`, from :mod:`aio_ray.pine.parser_cache`).
2. **Execution**: PineTS (:mod:`aio_ray.pine.runner`) runs the script on the bars.
3. **Parity** with the engine's ``single`` price model on the same bars:

   - every plotted indicator equals ``Family.indicators`` to :data:`INDICATOR_TOL` (absolute)
     where either is defined, and both are ``na`` on the same bars;
   - the four 0/1 condition plots equal the family's ``Signals`` exactly, bar for bar;
   - (strategy scripts) the trade list: same entry and exit bars, side, size, entry and
     exit prices (to :data:`PRICE_TOL`) and profit net of commission (to
     :data:`PROFIT_TOL`); the engine's final ``"end"`` trade matches PineTS' open trade
     (TradingView leaves the last trade open).

Rules modelled on our side, so that the engine's numbers are what the Pine runtime
computes (each is stated in the script's header and in :mod:`aio_ray.pine.generate`):

- **10-decimal values.** Pine runtimes keep series values to 10 decimals (PineTS rounds
  every assigned value): the family's rules are evaluated on its indicators rounded the
  same way (:func:`pine_signals`), so two moving averages equal to 10 decimals do not
  "cross" on floating-point noise.
- **TradingView's fill rules.** The engine runs with :func:`pine_config`: ``single``
  prices, ``intrabar="tradingview"`` (a bar touching both levels: the one on the path
  the broker emulator assumes) and ``level_tick`` = the mintick (levels rounded to the tick
  away from the signal close, as the script and PineTS do); see
  :mod:`aio_ray.strategies.fills`.

Known differences, reported but not failures (``VerificationReport.known_differences``);
the trades after one are still compared one to one:

- ``both_levels_touched``: a bar reaching both the stop and the target where the two
  sides still exit differently (none expected since ``intrabar="tradingview"``).
- ``pinets_limit_slippage``: PineTS applies slippage to limit (target) fills (its open
  issue #274); TradingView and the engine do not.
- ``level_touched_exactly``: a bar's price equals the stop or target level as a decimal
  price. The level is ``k * 1e-5`` in floating point, the price the nearest double of its
  decimal: which one is larger is decided by the last bit, and PineTS re-rounds a level
  that a close has reached to the tick on the close's other side. The two sides may exit
  a bar apart (or at the level vs the open).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from aio_ray.bars.arrays import BarArrays
from aio_ray.pine.generate import PLOT_SIGNALS, read_meta
from aio_ray.pine.parser_cache import SyntaxResult, check_syntax, save_parser_cache
from aio_ray.pine.runner import PineRun, PineRunError, PineRuntime, run_pinets
from aio_ray.strategies.engine import BacktestConfig, BacktestResult, run_backtest
from aio_ray.strategies.families import Family, get_family
from aio_ray.strategies.fills import round_level
from aio_ray.strategies.signals import Signals
from aio_ray.strategies.space import validate

__all__ = [
    "INDICATOR_TOL",
    "PRICE_TOL",
    "PROFIT_TOL",
    "Expected",
    "SyntaxResult",
    "VerificationReport",
    "check_syntax",
    "expected_run",
    "pine_config",
    "pine_precision",
    "pine_signals",
    "verify_script",
    "verify_scripts",
]

INDICATOR_TOL = 1e-8
"""Absolute tolerance on indicator values (price units or indicator points)."""
PRICE_TOL = 1e-9
"""Absolute tolerance on fill prices (quote currency; a tick is 1e-5)."""
PROFIT_TOL = 1e-6
"""Absolute tolerance on a trade's profit, account currency."""
TIE_TOL = 1e-9
"""Two compared values closer than this (relative, at least absolute) are a numerical tie."""


# --------------------------------------------------------------------------- our side


def pine_precision(x: np.ndarray) -> np.ndarray:
    """Values as a Pine runtime keeps them: rounded to 10 decimals (half up, like
    JavaScript's ``Math.round(x * 1e10) / 1e10``); NaN stays NaN."""
    a = np.asarray(x, dtype=np.float64)
    return np.floor(a * 1e10 + 0.5) / 1e10


def _pine_family(family: Family) -> Family:
    base = type(family)

    def _indicators(self: Family, bars: BarArrays, p: dict[str, Any]) -> dict[str, np.ndarray]:
        return {k: pine_precision(v) for k, v in base._indicators(self, bars, p).items()}

    cls = type(f"Pine{base.__name__}", (base,), {"_indicators": _indicators})
    pine_family: Family = cls()
    return pine_family


def pine_signals(family: str, bars: BarArrays, params: Mapping[str, Any]) -> Signals:
    """``get_family(family).signals(bars, params)`` with the rules evaluated on indicator
    values rounded to 10 decimals (:func:`pine_precision`), as a Pine runtime sees them."""
    return _pine_family(get_family(family)).signals(bars, params)


def pine_config(cfg: BacktestConfig | None = None, tick: float = 1e-5) -> BacktestConfig:
    """``cfg`` (default: ``BacktestConfig()``) with TradingView's fill rules: the ``single``
    price model, ``intrabar="tradingview"`` and levels rounded to ``tick`` (the mintick)."""
    return (cfg or BacktestConfig()).model_copy(
        update={"price_model": "single", "intrabar": "tradingview", "level_tick": tick}
    )


@dataclass(frozen=True)
class Expected:
    """Our side of a parity check: indicators, cleaned conditions and the backtest."""

    indicators: dict[str, np.ndarray]
    signals: Signals
    result: BacktestResult | None


def expected_run(
    family: str,
    params: Mapping[str, Any],
    bars: BarArrays,
    cfg: BacktestConfig | None = None,
    *,
    with_trades: bool = True,
    tick: float = 1e-5,
) -> Expected:
    """What a generated script must reproduce on ``bars`` (engine, ``single`` price model)."""
    fam = get_family(family)
    p = validate(family, params)
    sig = pine_signals(family, bars, p)
    res = None
    if with_trades:
        cfg = pine_config(cfg, tick)
        res = run_backtest(bars, sig, cfg)
    return Expected(fam.indicators(bars, p), sig, res)


# --------------------------------------------------------------------------- report


@dataclass
class VerificationReport:
    """The outcome of :func:`verify_script` (JSON-able through :meth:`to_dict`).

    ``parity_passed`` is None when parity was not checked (syntax error, PineTS failure);
    ``first_diff_bar`` is the earliest bar index where something differs, ``first_diff``
    says what.
    """

    kind: str
    family: str
    params: dict[str, Any]
    timeframe: str
    bars: int
    parsed: bool
    syntax_error: dict[str, Any] | None = None
    ran: bool = False
    run_error: str | None = None
    parity_passed: bool | None = None
    first_diff_bar: int | None = None
    first_diff: str | None = None
    indicators: dict[str, dict[str, Any]] = field(default_factory=dict)
    signals: dict[str, dict[str, int]] = field(default_factory=dict)
    trades: dict[str, int] = field(default_factory=dict)
    known_differences: list[dict[str, Any]] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line for people."""
        if not self.parsed:
            e = self.syntax_error or {}
            return (
                f"syntax error at line {e.get('line')}, column {e.get('column')}: {e.get('error')}"
            )
        if not self.ran:
            return f"parsed; PineTS failed: {self.run_error}"
        head = f"{self.kind} {self.family} on {self.bars} bars: parsed, ran, " + (
            "parity PASSED" if self.parity_passed else f"parity FAILED at bar {self.first_diff_bar}"
        )
        if self.trades:
            head += f"; trades ours {self.trades.get('ours')} / PineTS {self.trades.get('pine')}"
        if self.known_differences:
            head += f"; {len(self.known_differences)} known difference(s)"
        if not self.parity_passed and self.first_diff:
            head += f": {self.first_diff}"
        return head


class _Diffs:
    def __init__(self) -> None:
        self.bar: int | None = None
        self.what: str | None = None

    def add(self, bar: int, what: str) -> None:
        if self.bar is None or bar < self.bar:
            self.bar, self.what = bar, what


def _compare_indicators(
    ours: dict[str, np.ndarray], run: PineRun, rep: VerificationReport, diffs: _Diffs
) -> None:
    for key, a in ours.items():
        b = run.plots.get(key)
        if b is None:
            diffs.add(0, f"plot {key!r} missing from the script")
            continue
        na_a, na_b = np.isnan(a), np.isnan(b)
        both = ~na_a & ~na_b
        err = np.abs(a - b)
        err[~both] = 0.0
        bad = (na_a != na_b) | (err > INDICATOR_TOL)
        rep.indicators[key] = {
            "max_abs_diff": float(err.max()) if both.any() else 0.0,
            "compared": int(both.sum()),
            "first_value_bar": int(np.argmax(~na_a)) if (~na_a).any() else None,
        }
        if bad.any():
            i = int(np.argmax(bad))
            diffs.add(i, f"indicator {key} at bar {i}: ours {a[i]!r}, PineTS {b[i]!r}")


def _tie_bars(ind: dict[str, np.ndarray], bars: BarArrays, params: Mapping[str, Any]) -> np.ndarray:
    """Bars where two of the values a rule compares (indicators, close, levels) are within
    :data:`TIE_TOL` of each other: a crossover there is decided by rounding noise."""
    series = [v for k, v in ind.items() if k not in ("atr", "pattern")] + [bars.close]
    levels = [50.0] + [float(params[k]) for k in ("lower", "upper", "adx_threshold") if k in params]
    n = len(bars)
    tie = np.zeros(n, dtype=bool)
    with np.errstate(invalid="ignore"):
        for a_i, a in enumerate(series):
            scale = np.maximum(1.0, np.abs(a))
            for b in series[a_i + 1 :]:
                tie |= np.abs(a - b) <= TIE_TOL * scale
            for lv in levels:
                tie |= np.abs(a - lv) <= TIE_TOL * scale
    tie[1:] |= tie[:-1]  # a crossover also compares the previous bar
    return tie


def _compare_signals(
    sig: Signals, run: PineRun, tie: np.ndarray, rep: VerificationReport, diffs: _Diffs
) -> None:
    for key in PLOT_SIGNALS:
        a = getattr(sig, key).astype(bool)
        b = run.plots.get(key)
        if b is None:
            diffs.add(0, f"condition plot {key!r} missing from the script")
            continue
        bb = np.nan_to_num(b, nan=0.0) != 0.0
        rep.signals[key] = {"ours": int(a.sum()), "pine": int(bb.sum())}
        bad = a != bb
        for i in np.flatnonzero(bad & tie)[:20]:
            rep.known_differences.append(
                {
                    "kind": "numerical_tie",
                    "condition": key,
                    "bar": int(i),
                    "ours": bool(a[i]),
                    "pine": bool(bb[i]),
                }
            )
        bad &= ~tie
        if bad.any():
            i = int(np.argmax(bad))
            diffs.add(i, f"condition {key} at bar {i}: ours {bool(a[i])}, PineTS {bool(bb[i])}")


def _close(a: float | None, b: float | None, tol: float) -> bool:
    return a is not None and b is not None and abs(a - b) <= tol * max(1.0, abs(a))


_RESYNC_TRADES = 5  # trades either side may differ after a known difference before it fails


def _compare_trades(
    res: BacktestResult,
    sig: Signals,
    bars: BarArrays,
    run: PineRun,
    cfg: BacktestConfig,
    rep: VerificationReport,
    diffs: _Diffs,
) -> None:
    ours = res.trades.to_dicts()
    pine = [dict(t, open=False) for t in run.closed_trades]
    pine += [dict(t, open=True) for t in run.open_trades]
    rep.trades = {"ours": len(ours), "pine": len(pine), "compared": 0}
    slip = cfg.slippage_points * cfg.point_size
    i = j = 0
    while i < len(ours) and j < len(pine):
        a, b = ours[i], pine[j]
        side = 1.0 if a["side"] == "long" else -1.0
        problem = _trade_problem(i, a, b, side)
        if problem is None:
            if a["exit_reason"] == "end" or (
                a["exit_bar"] == b["exit_bar"]
                and _close(a["exit_price"], b["exit_price"], PRICE_TOL)
                and _close(a["pnl"], b["profit"], PROFIT_TOL)
            ):
                i, j = i + 1, j + 1
                rep.trades["compared"] += 1
                continue
            known = _known_difference(i, a, b, sig, bars, slip, side, cfg.level_tick or 0.0)
            if known is not None:
                rep.known_differences.append(known)
                i, j = i + 1, j + 1
                rep.trades["compared"] += 1
                continue
            problem = (
                min(a["exit_bar"], b["exit_bar"] if b["exit_bar"] is not None else a["exit_bar"]),
                f"trade {i} exit: ours {_trade_text(a)}, PineTS {_ptrade_text(b)}",
            )
        # After a known difference the two sides may hold different positions for a while:
        # find where their trades line up again (same entry bar and side).
        last_known = _last_known_bar(rep.known_differences)
        sync = (
            _resync(ours, pine, i, j)
            if last_known is not None and problem[0] >= last_known
            else None
        )
        if sync is None:
            diffs.add(*problem)
            return
        rep.known_differences.append(
            {
                "kind": "resynced",
                "from_bar": int(problem[0]),
                "ours_trades": sync[0] - i,
                "pine_trades": sync[1] - j,
            }
        )
        i, j = sync
    if i < len(ours) or j < len(pine):
        rest = ours[i:] if i < len(ours) else pine[j:]
        diffs.add(
            int(rest[0]["entry_bar"]), f"trade counts differ: ours {len(ours)}, PineTS {len(pine)}"
        )


def _trade_problem(
    k: int, a: dict[str, Any], b: dict[str, Any], side: float
) -> tuple[int, str] | None:
    where = min(a["entry_bar"], b["entry_bar"] if b["entry_bar"] is not None else a["entry_bar"])
    if a["entry_bar"] != b["entry_bar"] or (b["size"] or 0.0) * side <= 0:
        return where, f"trade {k}: ours {_trade_text(a)}, PineTS {_ptrade_text(b)}"
    if not (
        _close(a["size"], abs(b["size"]), 1e-9)
        and _close(a["entry_price"], b["entry_price"], PRICE_TOL)
    ):
        return where, f"trade {k} entry: ours {_trade_text(a)}, PineTS {_ptrade_text(b)}"
    if (a["exit_reason"] == "end") != bool(b["open"]):
        return a["exit_bar"], f"trade {k}: ours {_trade_text(a)}, PineTS {_ptrade_text(b)}"
    return None


def _last_known_bar(known: list[dict[str, Any]]) -> int | None:
    bars: list[int] = []
    for d in known:
        if d["kind"] == "resynced":
            continue
        found = [d[k] for k in ("bar", "ours_exit_bar", "pine_exit_bar") if d.get(k) is not None]
        bars.extend(int(x) for x in found)
    return min(bars) if bars else None


def _resync(
    ours: list[dict[str, Any]], pine: list[dict[str, Any]], i: int, j: int
) -> tuple[int, int] | None:
    for di in range(_RESYNC_TRADES + 1):
        for dj in range(_RESYNC_TRADES + 1):
            if (di or dj) and i + di < len(ours) and j + dj < len(pine):
                a, b = ours[i + di], pine[j + dj]
                side = 1.0 if a["side"] == "long" else -1.0
                if a["entry_bar"] == b["entry_bar"] and (b["size"] or 0.0) * side > 0:
                    return i + di, j + dj
    return None


def _known_difference(
    k: int,
    a: dict[str, Any],
    b: dict[str, Any],
    sig: Signals,
    bars: BarArrays,
    slip: float,
    side: float,
    tick: float,
) -> dict[str, Any] | None:
    s = a["entry_bar"] - 1
    c = bars.close[s]
    stop = round_level(c - side * sig.stop_dist[s], c, tick)
    take = round_level(c + side * sig.take_dist[s], c, tick)
    info = {
        "trade": k,
        "ours_exit_bar": a["exit_bar"],
        "pine_exit_bar": b["exit_bar"],
        "ours_exit": a["exit_price"],
        "pine_exit": b["exit_price"],
    }
    lo_bar, hi_bar = a["entry_bar"], max(a["exit_bar"], b["exit_bar"])
    if a["exit_bar"] == b["exit_bar"] and a["exit_reason"] in ("stop", "take"):
        i = a["exit_bar"]
        hi, lo, op = bars.high[i], bars.low[i], bars.open[i]
        if side > 0:
            gap = op <= stop or op >= take
            both = lo <= stop and hi >= take
        else:
            gap = op >= stop or op <= take
            both = hi >= stop and lo <= take
        if both and not gap:
            return {"kind": "both_levels_touched", **info}
        if (
            a["exit_reason"] == "take"
            and slip > 0
            and _close(a["exit_price"] - side * slip, b["exit_price"], PRICE_TOL)
        ):
            return {"kind": "pinets_limit_slippage", **info}
    # A level equal to a price of the bars (the same decimal price): whether it was
    # "touched" then depends on the last bit of two doubles (a tick level is computed as
    # k * 1e-5, the data are decimal prices), and PineTS re-rounds a level that a close
    # reached. Both sides may then exit a bar apart.
    window = slice(lo_bar, hi_bar + 1)
    prices = np.concatenate(
        [bars.open[window], bars.high[window], bars.low[window], bars.close[window]]
    )
    for level in (stop, take):
        if math.isfinite(level) and np.any(np.abs(prices - level) < 1e-12):
            return {"kind": "level_touched_exactly", "level": float(level), **info}
    return None


def _trade_text(t: dict[str, Any]) -> str:
    return (
        f"{t['side']} bars {t['entry_bar']}->{t['exit_bar']} @ {t['entry_price']!r}->"
        f"{t['exit_price']!r} pnl {t['pnl']:.6f} ({t['exit_reason']})"
    )


def _ptrade_text(t: dict[str, Any]) -> str:
    side = "long" if (t.get("size") or 0) > 0 else "short"
    if t.get("open"):
        return f"{side} open from bar {t['entry_bar']} @ {t['entry_price']!r}"
    return (
        f"{side} bars {t['entry_bar']}->{t['exit_bar']} @ {t['entry_price']!r}->"
        f"{t['exit_price']!r} profit {t['profit']!r} ({t.get('exit_id')})"
    )


def verify_script(
    code: str,
    bars: BarArrays,
    *,
    meta: Mapping[str, Any] | None = None,
    timeframe: str | None = None,
    syntax: bool | SyntaxResult = True,
    timeout_s: float = 600.0,
    runtime: PineRuntime | None = None,
) -> VerificationReport:
    """Check a generated script: syntax, PineTS run, parity with the engine on ``bars``.

    Parameters
    ----------
    code : a script from :func:`aio_ray.pine.generate.generate`.
    bars : the bars to run on (one price series, e.g. mid; ``single`` price model).
    meta : family, params, timeframe, symbol, kind, backtest; default: the script's own
        ``// @aio-ray`` header (:func:`aio_ray.pine.generate.read_meta`).
    timeframe : the bars' timeframe (default: the one in ``meta``).
    syntax : parse with pynescript first (a syntax error stops the check); or the
        :class:`SyntaxResult` of ``code`` already parsed.
    timeout_s : limit for the PineTS subprocess, seconds.
    runtime : a :class:`~aio_ray.pine.runner.PineRuntime` to run in (its Node process is
        reused); default: a one-shot Node process for this script.

    Raises
    ------
    PineGenerationError
        No ``meta`` and no header line.
    PineRuntimeUnavailable
        Node or PineTS is missing.
    """
    m = dict(meta) if meta is not None else read_meta(code)
    kind = str(m.get("kind", "strategy"))
    family = str(m["family"])
    params = validate(family, m["params"])
    timeframe = str(timeframe or m["timeframe"])
    cfg = pine_config(BacktestConfig.model_validate(m.get("backtest") or {}))
    rep = VerificationReport(kind, family, params, timeframe, len(bars), parsed=True)
    if syntax is not False:
        sx = syntax if isinstance(syntax, SyntaxResult) else check_syntax(code)
        rep.timings_s["parse"] = sx.seconds
        if not sx.ok:
            rep.parsed = False
            rep.syntax_error = {"error": sx.error, "line": sx.line, "column": sx.column}
            rep.first_diff = "syntax error"
            return rep
    t0 = time.perf_counter()
    try:
        sym = str(m.get("symbol", "EURUSD"))
        if runtime is None:
            run = run_pinets(code, bars, timeframe, symbol=sym, timeout_s=timeout_s)
        else:
            run = runtime.run(code, bars, timeframe, symbol=sym, timeout_s=timeout_s)
    except PineRunError as exc:
        rep.timings_s["pinets"] = time.perf_counter() - t0
        rep.run_error = str(exc)
        return rep
    rep.timings_s["pinets"] = run.wall_s
    rep.ran = True
    t1 = time.perf_counter()
    exp = expected_run(family, params, bars, cfg, with_trades=kind == "strategy")
    diffs = _Diffs()
    _compare_indicators(exp.indicators, run, rep, diffs)
    tie = _tie_bars({k: pine_precision(v) for k, v in exp.indicators.items()}, bars, params)
    _compare_signals(exp.signals, run, tie, rep, diffs)
    if exp.result is not None:
        _compare_trades(exp.result, exp.signals, bars, run, cfg, rep, diffs)
    rep.timings_s["compare"] = time.perf_counter() - t1
    rep.parity_passed = diffs.bar is None
    rep.first_diff_bar = diffs.bar
    rep.first_diff = diffs.what
    return rep


def verify_scripts(
    codes: Sequence[str],
    bars: BarArrays | Sequence[BarArrays],
    *,
    metas: Sequence[Mapping[str, Any] | None] | None = None,
    timeframe: str | Sequence[str | None] | None = None,
    syntax: bool = True,
    timeout_s: float = 600.0,
    runtime: PineRuntime | None = None,
) -> list[VerificationReport]:
    """:func:`verify_script` for many scripts at once: one warm parser (this process', whose
    learnt prediction cache is saved for the next process) and one PineTS process
    (``runtime``, default: one started and closed here) for all.

    ``bars`` and ``timeframe`` are one for all scripts or one per script; ``metas`` one per
    script (None: the script's header). Returns one report per script, in order; a script
    with a syntax error, a PineTS error, a timeout or a crash of the Node process fails only
    its own report (the process is restarted for the next script).
    """
    n = len(codes)
    bars_list = [bars] * n if isinstance(bars, BarArrays) else list(bars)
    tf_list = (
        [timeframe] * n if timeframe is None or isinstance(timeframe, str) else list(timeframe)
    )
    meta_list = [None] * n if metas is None else list(metas)
    if not (len(bars_list) == len(tf_list) == len(meta_list) == n):
        raise ValueError("verify_scripts: give one bars, timeframe and meta per script (or one)")
    own = runtime is None
    rt = PineRuntime(timeout_s=timeout_s) if runtime is None else runtime
    # Parsing (pure Python) runs in a thread while PineTS (another process) runs the
    # previous script: the main thread mostly waits on Node's pipe, which frees the GIL.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pine-syntax")
    parsed = [pool.submit(check_syntax, c) for c in codes] if syntax else [None] * n
    try:
        return [
            verify_script(
                code, b, meta=m, timeframe=tf,
                syntax=False if sx is None else sx.result(), timeout_s=timeout_s, runtime=rt,
            )
            for code, b, m, tf, sx in zip(codes, bars_list, meta_list, tf_list, parsed,
                                          strict=True)
        ]  # fmt: skip
    finally:
        for f in parsed:
            if f is not None:
                f.cancel()
        pool.shutdown(wait=True)
        if own:
            rt.close()
        if syntax:
            save_parser_cache()
