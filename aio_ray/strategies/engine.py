"""The compiled backtest engine: public surface over :mod:`aio_ray.strategies._engine_nb`.

- :class:`BacktestConfig`: frozen, strict costs / sizing / price model of a run.
- :func:`run_backtest`: one signal set -> :class:`BacktestResult` (trade list, per-bar
  equity, metrics).
- :func:`run_batch`: many signal sets of one family on the same bars -> metrics matrix,
  parallel over parameter sets (no trade lists), for a search trial.
- :func:`run_crossover_batch`: the same for two-line crossovers, with the signals derived
  inside the kernel from shared line series (no per-set signal arrays at all);
  :func:`cross_signals` gives the same signals as :class:`Signals` for a single run.

Every run takes :class:`~aio_ray.bars.arrays.BarArrays`: the signal series and, for
``price_model="bidask"``, the bid/ask OHLC of the same bars. The kernel's price matrix, the
rollovers and the bar spacing are validated and computed once per bars object and cached on it
(:func:`~aio_ray.strategies.kernel_inputs.kernel_prices`), so many runs on one fold validate it once.

The fill rules live in :mod:`aio_ray.strategies.fills`; the metric formulas in
:mod:`aio_ray.strategies.metrics`. Prices are float64 in quote currency, ``ts`` int64 UTC ms
(bar open time), money in account currency (= quote currency, USD for EURUSD).

Costs are on by default, at levels typical of a EUR/USD ECN account: commission 3.5 USD per
lot (100,000 units) per side, 1 point (0.1 pip) of slippage on market and stop fills, and swap
at the 17:00 New York rollover, -7.0 USD per lot held long and +2.0 held short, tripled for the
Wednesday close. A comparison with an engine that models fewer costs sets the others to 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numba
import numpy as np
import polars as pl

from aio_ray.bars.arrays import BarArrays
from aio_ray.strategies import _batch_nb, fills
from aio_ray.strategies import _engine_layout as layout
from aio_ray.strategies import _engine_nb as nb
from aio_ray.strategies import metrics as mt
from aio_ray.strategies.config import (
    DEFAULT_COMMISSION_PER_LOT,  # noqa: F401 - its old home
    BacktestConfig,
    BacktestConfigError,
    BacktestError,
)
from aio_ray.strategies.kernel_inputs import kernel_prices, swap_units_of
from aio_ray.strategies.signals import Signals

__all__ = [
    "METRIC_NAMES",
    "TRADE_SCHEMA",
    "BacktestConfig",
    "BacktestConfigError",
    "BacktestError",
    "BacktestResult",
    "cross_signals",
    "metrics_frame",
    "run_backtest",
    "run_batch",
    "run_crossover_batch",
]

METRIC_NAMES = mt.METRIC_NAMES
TRADE_SCHEMA: dict[str, pl.DataType] = {
    "entry_bar": pl.Int64(),
    "exit_bar": pl.Int64(),
    "entry_ts": pl.Datetime("ms", "UTC"),
    "exit_ts": pl.Datetime("ms", "UTC"),
    "side": pl.Utf8(),
    "size": pl.Float64(),
    "entry_price": pl.Float64(),
    "exit_price": pl.Float64(),
    "pnl_pips": pl.Float64(),
    "pnl": pl.Float64(),
    "commission": pl.Float64(),
    "swap": pl.Float64(),
    "exit_reason": pl.Utf8(),
}
"""Columns of ``BacktestResult.trades``: bars are 0-based indices; ``size`` in units;
prices in quote currency; ``pnl_pips`` gross of commission and swap; ``pnl``,
``commission`` (entry + exit, >= 0) and ``swap`` (every rollover the trade was held across;
negative = charged) in account currency, ``pnl`` net of both, so the trades' ``pnl`` sum to
the net profit (TradingView's trade list has no swap: its profit is ``pnl - swap``); ``side``
"long"/"short"; ``exit_reason`` one of ``fills.EXIT_REASONS``."""


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """The outcome of :func:`run_backtest`.

    Attributes
    ----------
    trades
        One row per closed trade, columns :data:`TRADE_SCHEMA`, in entry order.
    equity
        Equity at each bar's close (account currency), after the bar's fills; ``equity[0]``
        is the initial capital and ``equity[-1]`` includes the ``"end"`` close.
    ts
        The bars' open times (int64 UTC ms), aligned with ``equity``.
    metrics
        :data:`METRIC_NAMES` -> value (see :mod:`aio_ray.strategies.metrics`).
    config
        The configuration of the run.
    """

    trades: pl.DataFrame
    equity: np.ndarray
    ts: np.ndarray
    metrics: dict[str, float]
    config: BacktestConfig = field(repr=False)

    def equity_frame(self) -> pl.DataFrame:
        """The equity curve as a table: ``ts`` (UTC ms) and ``equity``."""
        return pl.DataFrame({"ts": self.ts, "equity": self.equity}).with_columns(
            pl.col("ts").cast(pl.Datetime("ms", "UTC"))
        )


# ----------------------------------------------------------------------------- validation


def _kernel_prices(bars: BarArrays, cfg: BacktestConfig) -> np.ndarray:
    """``bars``' price matrix for ``cfg.price_model`` (validated once per bars, then cached)."""
    if not isinstance(bars, BarArrays):
        raise BacktestError(
            f"bars: expected aio_ray.bars.arrays.BarArrays, got {type(bars).__name__}"
        )
    return kernel_prices(bars, cfg.price_model)


def _flags(name: str, x: Any, n: int) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1 or a.shape[0] != n:
        raise BacktestError(f"{name}: expected {n} values (one per bar), got shape {a.shape}")
    if a.dtype != np.bool_:
        raise BacktestError(f"{name}: expected a boolean array, got dtype {a.dtype}")
    return np.ascontiguousarray(a)


def _distances(name: str, x: Any, n: int) -> np.ndarray:
    a = np.ascontiguousarray(x, dtype=np.float64)
    if a.ndim != 1 or a.shape[0] != n:
        raise BacktestError(f"{name}: expected {n} values (one per bar), got shape {a.shape}")
    bad = ~(np.isnan(a) | (np.isfinite(a) & (a > 0)))
    if bad.any():
        i = int(np.argmax(bad))
        raise BacktestError(
            f"{name}: {a[i]} at bar {i}; distances must be > 0 (price) or NaN (none)"
        )
    return a


def _signal_arrays(sig: Signals, n: int, where: str = "signals") -> tuple[np.ndarray, ...]:
    return (
        _flags(f"{where}.long_entry", sig.long_entry, n),
        _flags(f"{where}.short_entry", sig.short_entry, n),
        _flags(f"{where}.long_exit", sig.long_exit, n),
        _flags(f"{where}.short_exit", sig.short_exit, n),
        _distances(f"{where}.stop_dist", sig.stop_dist, n),
        _distances(f"{where}.take_dist", sig.take_dist, n),
    )


def _config_vector(cfg: BacktestConfig, ts: np.ndarray, bar_ms: int) -> np.ndarray:
    """The kernel's configuration vector (``_engine_nb.C_*`` slots) for bars with open times
    ``ts`` (int64 UTC ms) spaced ``bar_ms`` apart."""
    cv = np.empty(layout.N_CONFIG, dtype=np.float64)
    cv[layout.C_INITIAL] = cfg.initial_capital
    cv[layout.C_SIZING] = fills.SIZING_MODES.index(cfg.sizing)
    cv[layout.C_UNITS] = cfg.units
    cv[layout.C_RISK] = cfg.risk_fraction
    cv[layout.C_LOT_STEP] = cfg.lot_step
    cv[layout.C_COMM_KIND] = fills.COMMISSION_TYPES.index(cfg.commission_type)
    cv[layout.C_COMM_RATE] = cfg.commission
    cv[layout.C_SLIP] = cfg.slippage_points * cfg.point_size
    cv[layout.C_PIP] = cfg.pip_size
    cv[layout.C_BARS_PER_YEAR] = (
        cfg.bars_per_year if cfg.bars_per_year is not None else mt.bars_per_year(bar_ms)
    )
    cv[layout.C_YEARS] = mt.span_years(ts, bar_ms)
    cv[layout.C_INTRABAR] = fills.INTRABAR_MODES.index(cfg.intrabar)
    cv[layout.C_TICK] = cfg.level_tick if cfg.level_tick is not None else 0.0
    cv[layout.C_SWAP_LONG] = cfg.swap_long
    cv[layout.C_SWAP_SHORT] = cfg.swap_short
    return cv


# ----------------------------------------------------------------------------- single run


def run_backtest(
    bars: BarArrays, signals: Signals, cfg: BacktestConfig | None = None
) -> BacktestResult:
    """Backtest one signal set on ``bars`` with the rules of :mod:`aio_ray.strategies.fills`.

    Parameters
    ----------
    bars
        The signal series (``ts`` int64 UTC ms, OHLC float64 quote currency); with
        ``price_model="single"`` fills use these prices, with ``"bidask"`` the bars' bid/ask
        OHLC (which must then be present).
    signals
        Per-bar orders decided at each bar's close (same length as ``bars``).
    cfg
        Costs, sizing and price model (default: ``BacktestConfig()``: bidask, ECN costs).

    Raises
    ------
    BacktestError
        Mismatched lengths, non-finite or inconsistent prices, too few bars, bad distances,
        or missing bid/ask OHLC; the message names the argument.
    """
    cfg = cfg or BacktestConfig()
    px = _kernel_prices(bars, cfg)
    n = len(bars)
    le, se, lx, sx, sd, td = _signal_arrays(signals, n)
    trades = np.zeros((n, layout.N_TRADE_COLS), dtype=np.float64)
    equity = np.empty(n, dtype=np.float64)
    out = np.empty(layout.N_METRICS, dtype=np.float64)
    cv = _config_vector(cfg, bars.ts, bars.bar_ms)
    k = nb.simulate(px, swap_units_of(bars), cv, le, se, lx, sx, sd, td, trades, equity, out)
    return BacktestResult(
        trades=_trade_frame(trades[:k], bars.ts),
        equity=equity,
        ts=bars.ts,
        metrics={name: float(v) for name, v in zip(METRIC_NAMES, out, strict=True)},
        config=cfg,
    )


def _trade_frame(rec: np.ndarray, ts: np.ndarray) -> pl.DataFrame:
    e0 = rec[:, layout.TC_ENTRY_BAR].astype(np.int64)
    e1 = rec[:, layout.TC_EXIT_BAR].astype(np.int64)
    reasons = np.array(fills.EXIT_REASONS, dtype=object)
    df = pl.DataFrame(
        {
            "entry_bar": e0,
            "exit_bar": e1,
            "entry_ts": ts[e0],
            "exit_ts": ts[e1],
            "side": np.where(rec[:, layout.TC_SIDE] > 0, "long", "short").astype(object),
            "size": rec[:, layout.TC_UNITS],
            "entry_price": rec[:, layout.TC_ENTRY_PRICE],
            "exit_price": rec[:, layout.TC_EXIT_PRICE],
            "pnl_pips": rec[:, layout.TC_PNL_PIPS],
            "pnl": rec[:, layout.TC_PNL],
            "commission": rec[:, layout.TC_COMMISSION],
            "swap": rec[:, layout.TC_SWAP],
            "exit_reason": reasons[rec[:, layout.TC_REASON].astype(np.int64)],
        },
        schema={k: (pl.Int64 if k.endswith("_ts") else v) for k, v in TRADE_SCHEMA.items()},
    )
    return df.with_columns(pl.col("entry_ts", "exit_ts").cast(pl.Datetime("ms", "UTC")))


# ----------------------------------------------------------------------------- batches


def run_batch(
    bars: BarArrays,
    signals: Sequence[Signals],
    cfg: BacktestConfig | None = None,
    *,
    threads: int | None = None,
) -> np.ndarray:
    """Metrics of many signal sets (e.g. one family's parameter sets) on the same bars.

    Runs the same kernel as :func:`run_backtest` for each set, in parallel over sets
    (``numba.prange``), without trade lists. Returns a float64 matrix of shape
    ``(len(signals), len(METRIC_NAMES))``; row ``p`` equals ``run_backtest(bars,
    signals[p], cfg).metrics``. Stop/target distances shared by every set are stored
    once. ``threads``: how many threads share the sets (default: numba's thread count; in a
    Ray task holding ``k`` CPUs pass ``k``, or set ``NUMBA_NUM_THREADS``).
    """
    cfg = cfg or BacktestConfig()
    px = _kernel_prices(bars, cfg)
    n = len(bars)
    if len(signals) == 0:
        raise BacktestError("signals: empty sequence; need at least one signal set")
    cols: list[list[np.ndarray]] = [[] for _ in range(6)]
    for p, sig in enumerate(signals):
        for j, a in enumerate(_signal_arrays(sig, n, where=f"signals[{p}]")):
            cols[j].append(a)
    le, se, lx, sx = (np.stack(c) for c in cols[:4])
    sd, td = (_shared_rows(c) for c in cols[4:])
    out = np.empty((len(signals), layout.N_METRICS), dtype=np.float64)
    cv = _config_vector(cfg, bars.ts, bars.bar_ms)
    _batch_nb.batch_signals(
        px, swap_units_of(bars), cv, le, se, lx, sx, sd, td, _threads(threads), out
    )
    return out


def _threads(threads: int | None) -> int:
    if threads is None:
        return int(numba.get_num_threads())
    if threads < 1:
        raise BacktestError(f"threads: must be >= 1, got {threads}")
    return min(int(threads), int(numba.get_num_threads()))


def _shared_rows(rows: list[np.ndarray]) -> np.ndarray:
    first = rows[0]
    if all(r is first or np.array_equal(r, first, equal_nan=True) for r in rows[1:]):
        return first[None, :]
    return np.stack(rows)


def run_crossover_batch(
    bars: BarArrays,
    lines: np.ndarray,
    fast: np.ndarray,
    slow: np.ndarray,
    cfg: BacktestConfig | None = None,
    *,
    base_dist: np.ndarray | None = None,
    stop_mult: np.ndarray | float | None = None,
    take_mult: np.ndarray | float | None = None,
    direction: Literal["both", "long", "short"] = "both",
    threads: int | None = None,
) -> np.ndarray:
    """Metrics of many two-line crossover strategies, signals derived inside the kernel.

    Parameter set ``p`` trades ``lines[fast[p]]`` against ``lines[slow[p]]`` exactly as
    ``run_backtest(bars, cross_signals(lines[fast[p]], lines[slow[p]], ...), cfg)``
    would, so each distinct line (e.g. one SMA per length) is computed once for the grid.

    Parameters
    ----------
    lines
        (K, n) float64 line series (NaN during warm-up).
    fast, slow
        (P,) integer row indices into ``lines``.
    base_dist
        (n,) price distance (e.g. ATR) that the stop/target multipliers scale; required when
        a multiplier is given.
    stop_mult, take_mult
        Scalar or (P,) multipliers of ``base_dist``; NaN or None: no stop / no target.
    direction
        "both": crosses enter and reverse; "long": cross over enters long, cross under exits;
        "short": mirrored.
    threads
        Threads sharing the sets (default: numba's thread count; see :func:`run_batch`).

    Returns
    -------
    np.ndarray
        (P, len(METRIC_NAMES)) float64.
    """
    cfg = cfg or BacktestConfig()
    px = _kernel_prices(bars, cfg)
    n = len(bars)
    lines = np.ascontiguousarray(lines, dtype=np.float64)
    if lines.ndim != 2 or lines.shape[1] != n:
        raise BacktestError(f"lines: expected shape (K, {n}), got {lines.shape}")
    k_lines = lines.shape[0]
    idx = []
    for name, a in (("fast", fast), ("slow", slow)):
        arr = np.asarray(a)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise BacktestError(
                f"{name}: expected a 1-D integer array of row indices, got {arr.dtype} {arr.shape}"
            )
        if arr.size and (arr.min() < 0 or arr.max() >= k_lines):
            raise BacktestError(
                f"{name}: row indices must lie in [0, {k_lines}), got {arr.min()}..{arr.max()}"
            )
        idx.append(np.ascontiguousarray(arr, dtype=np.int64))
    if idx[0].shape != idx[1].shape or idx[0].size == 0:
        raise BacktestError(
            f"fast, slow: need the same non-zero length, got {idx[0].size} and {idx[1].size}"
        )
    n_sets = idx[0].size
    mults = [
        _mults(nm, m, n_sets) for nm, m in (("stop_mult", stop_mult), ("take_mult", take_mult))
    ]
    if base_dist is None:
        if any(np.isfinite(m).any() for m in mults):
            raise BacktestError("base_dist: required when stop_mult or take_mult is given")
        base = np.full(n, np.nan)
    else:
        base = np.ascontiguousarray(base_dist, dtype=np.float64)
        if base.shape != (n,):
            raise BacktestError(
                f"base_dist: expected {n} values (one per bar), got shape {base.shape}"
            )
        if np.any(base[np.isfinite(base)] <= 0):
            raise BacktestError("base_dist: values must be > 0 or NaN")
    directions = {"both": 0, "long": 1, "short": -1}
    if direction not in directions:
        raise BacktestError(f"direction: {direction!r} is not one of {tuple(directions)}")
    out = np.empty((n_sets, layout.N_METRICS), dtype=np.float64)
    _batch_nb.batch_crossover(
        px,
        swap_units_of(bars),
        _config_vector(cfg, bars.ts, bars.bar_ms),
        lines,
        idx[0],
        idx[1],
        base,
        mults[0],
        mults[1],
        directions[direction],
        _threads(threads),
        out,
    )
    return out


def _mults(name: str, m: np.ndarray | float | None, n_sets: int) -> np.ndarray:
    if m is None:
        return np.full(n_sets, np.nan)
    a = np.asarray(m, dtype=np.float64)
    if a.ndim == 0:
        a = np.full(n_sets, float(a))
    if a.shape != (n_sets,):
        raise BacktestError(f"{name}: expected a scalar or {n_sets} values, got shape {a.shape}")
    if np.any(a[np.isfinite(a)] <= 0) or np.isinf(a).any():
        raise BacktestError(f"{name}: multipliers must be > 0 and finite, or NaN (none)")
    return np.ascontiguousarray(a)


def cross_signals(
    fast: np.ndarray,
    slow: np.ndarray,
    direction: Literal["both", "long", "short"] = "both",
    stop_dist: np.ndarray | None = None,
    take_dist: np.ndarray | None = None,
) -> Signals:
    """The signals :func:`run_crossover_batch` derives in its kernel, as :class:`Signals`.

    Cross over (TradingView ``ta.crossover``): ``fast > slow and fast[1] <= slow[1]``; cross
    under mirrored; NaN never crosses. "both": over -> long entry, under -> short entry;
    "long": over -> long entry, under -> long exit; "short": under -> short entry, over ->
    short exit. ``stop_dist``/``take_dist`` default to NaN (none).
    """
    f = np.asarray(fast, dtype=np.float64)
    s = np.asarray(slow, dtype=np.float64)
    n = f.shape[0]
    fp = np.concatenate(([np.nan], f[:-1]))
    sp = np.concatenate(([np.nan], s[:-1]))
    with np.errstate(invalid="ignore"):
        up = (f > s) & (fp <= sp)
        dn = (f < s) & (fp >= sp)
    none = np.zeros(n, dtype=bool)
    nan = np.full(n, np.nan)
    sd = nan if stop_dist is None else np.asarray(stop_dist, dtype=np.float64)
    td = nan if take_dist is None else np.asarray(take_dist, dtype=np.float64)
    if direction == "both":
        return Signals(up, dn, none, none.copy(), sd, td)
    if direction == "long":
        return Signals(up, none, dn, none.copy(), sd, td)
    if direction == "short":
        return Signals(none, dn, none.copy(), up, sd, td)
    raise BacktestError(f"direction: {direction!r} is not one of ('both', 'long', 'short')")


def metrics_frame(matrix: np.ndarray, params: pl.DataFrame | None = None) -> pl.DataFrame:
    """A metrics matrix from :func:`run_batch` as a table (``params`` columns first, if any)."""
    m = pl.DataFrame({name: matrix[:, j] for j, name in enumerate(METRIC_NAMES)})
    return m if params is None else pl.concat([params, m], how="horizontal")
