"""A population of candidates (one family, one timeframe) over every walk-forward window, in
one kernel call (pure; Ray wraps it in :mod:`aio_ray.strategies.search`).

What :func:`evaluate_population` does for ``P`` parameter sets and ``k`` folds:

1. Each set is validated (an invalid one is a failed candidate with its error, the others go
   on). Signals are computed once per set on the whole walk-forward series, on
   :class:`~aio_ray.strategies.families.base.MemoBars`: an indicator that several sets share
   (the same SMA length, RSI length, ATR length, candle pattern) is computed once for the
   population. Every indicator is causal, so the signals of bars ``[0, end)`` equal those
   computed on that prefix alone, which is what :func:`aio_ray.strategies.evaluate.evaluate_window`
   does window by window (a test pins the equality).
2. The bars are validated once (:func:`~aio_ray.strategies.kernel_inputs.kernel_prices`,
   cached on the bars: every population of a search on them reuses it); then
   :func:`aio_ray.strategies._population_nb.batch_windows` backtests every set on the
   in-sample and out-of-sample window of every fold, each from a flat account, with the same
   fill rules as every other backtest here.
3. Fold metrics become the search objective exactly as in
   :func:`aio_ray.strategies.evaluate.objective_value` (vectorized), and the per-bar returns
   are compounded into per-period returns (UTC days by default): the out-of-sample windows
   share one series of columns (concatenated, as :func:`~aio_ray.strategies.evaluate.evaluate_candidate`
   compounds them), each in-sample window has its own columns (see :class:`WindowLayout`).

The result equals ``evaluate_candidate`` candidate by candidate (objective, fold metrics, DSR
moments) and costs a few tens of microseconds per candidate instead of tens of milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aio_ray.bars.arrays import BarArrays
from aio_ray.bars.timeframes import infer_bar_ms
from aio_ray.strategies import engine as eng
from aio_ray.strategies._engine_layout import N_METRICS
from aio_ray.strategies._population_nb import batch_windows
from aio_ray.strategies.config import DAY_MS, ObjectiveConfig
from aio_ray.strategies.evaluate import _family, selection_config
from aio_ray.strategies.families import Family
from aio_ray.strategies.families.base import MemoBars
from aio_ray.strategies.kernel_inputs import kernel_prices, swap_units_of
from aio_ray.strategies.sessions import period_keys
from aio_ray.strategies.space import validate
from aio_ray.strategies.walkforward import Fold, SearchError, window_bounds

__all__ = [
    "METRIC_INDEX",
    "PopulationResult",
    "WindowLayout",
    "evaluate_population",
    "finite_or_none",
    "window_layout",
]

METRIC_INDEX: dict[str, int] = {name: j for j, name in enumerate(eng.METRIC_NAMES)}
"""Column of each metric in :attr:`PopulationResult.metrics` (``engine.METRIC_NAMES`` order)."""

_SHARPE = METRIC_INDEX["sharpe"]
_TRADES = METRIC_INDEX["trades"]
_DD = METRIC_INDEX["max_drawdown"]


@dataclass(frozen=True, eq=False)
class WindowLayout:
    """The walk-forward windows of a population and the period columns of its returns.

    Attributes
    ----------
    windows
        (W, 2) int64 bar ranges ``[start, end)``: fold ``f``'s in-sample window is row
        ``2 f``, its out-of-sample window row ``2 f + 1``; with ``k`` folds, row ``2 k`` (when
        present) is the final in-sample window before the holdout.
    fold, sample
        Per window: fold number and ``"is"`` / ``"oos"`` / ``"final"``.
    period_start_ms
        (D,) UTC ms: each return column's period key (:func:`sessions.period_keys`): for a
        day, the trading day's date at 00:00 UTC (the day that ends at 17:00 New York, so its
        first hours lie on the calendar day before); else the period's start.
    period_window
        (D,) int64: the window a column belongs to; out-of-sample columns, shared by the
        out-of-sample windows, carry the first out-of-sample window that has a bar in them.
    oos_columns
        Indices of the out-of-sample columns, in time order (the concatenated OOS record).
    period_col
        (W, n) int64: the column of bar ``i``'s return in window ``w`` (-1: none; a window's
        first bar has no return).
    period_ms
        Length of a period, ms.
    """

    windows: np.ndarray
    fold: tuple[int, ...]
    sample: tuple[str, ...]
    period_start_ms: np.ndarray
    period_window: np.ndarray
    oos_columns: np.ndarray
    period_col: np.ndarray
    period_ms: int

    @property
    def n_windows(self) -> int:
        return int(self.windows.shape[0])

    @property
    def n_columns(self) -> int:
        return int(self.period_start_ms.shape[0])

    @property
    def selection_windows(self) -> tuple[int, ...]:
        """The windows parameters are chosen on, in order: each fold's in-sample window,
        then the final one (when present). Selection window ``j < k`` chooses for fold ``j``."""
        return tuple(w for w, s in enumerate(self.sample) if s in ("is", "final"))

    def oos_window(self, fold: int) -> int:
        """The out-of-sample window of ``fold``."""
        return 2 * fold + 1

    def columns_of(self, window: int) -> np.ndarray:
        """The return columns of ``window`` (an OOS window: the OOS columns it owns)."""
        return np.flatnonzero(self.period_window == window)

    def describe(self) -> dict[str, Any]:
        """JSON-able layout (what the library stores beside the return series)."""
        return {
            "period_ms": self.period_ms,
            "windows": [
                {"fold": f, "sample": s, "start_bar": int(a), "end_bar": int(b)}
                for f, s, (a, b) in zip(self.fold, self.sample, self.windows.tolist(), strict=True)
            ],
            "period_start_ms": [int(x) for x in self.period_start_ms],
            "period_window": [int(x) for x in self.period_window],
            "oos_columns": [int(x) for x in self.oos_columns],
        }


def window_layout(
    ts: np.ndarray,
    folds: Sequence[Fold],
    period_ms: int = DAY_MS,
    final: tuple[int, int] | None = None,
) -> WindowLayout:
    """The windows of ``folds`` over bars with open times ``ts`` (int64 UTC ms) and their
    period columns (:func:`aio_ray.strategies.sessions.period_keys`: trading days for a day).

    ``final`` adds the in-sample window the exported parameters are chosen on
    (:func:`aio_ray.strategies.walkforward.final_window`) as the last window, sample
    ``"final"``, fold ``len(folds)``, with its own columns."""
    if not folds:
        raise SearchError("no folds to evaluate")
    t = np.asarray(ts, dtype=np.int64)
    n = t.shape[0]
    rows: list[tuple[int, int]] = []
    fold: list[int] = []
    sample: list[str] = []
    for f in folds:
        for s, (a, b) in (("is", f.is_range), ("oos", f.oos_range)):
            _, lo, hi = window_bounds(a, b)
            if not 0 <= lo < hi <= n:
                raise SearchError(f"window [{a}, {b}) is outside the {n} bars")
            rows.append((lo, hi))
            fold.append(f.index)
            sample.append(s)
    if final is not None:
        _, lo, hi = window_bounds(*final)
        if not 0 <= lo < hi <= n:
            raise SearchError(f"final window [{lo}, {hi}) is outside the {n} bars")
        rows.append((lo, hi))
        fold.append(len(folds))
        sample.append("final")
    windows = np.asarray(rows, dtype=np.int64)
    keys = period_keys(t, period_ms)
    period_col = np.full((len(rows), n), -1, dtype=np.int64)
    starts: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    # out-of-sample windows: one shared set of columns over their concatenated returns
    oos_w = [w for w, s in enumerate(sample) if s == "oos"]
    oos_keys = np.concatenate([keys[windows[w, 0] + 1 : windows[w, 1]] for w in oos_w])
    uniq = np.unique(oos_keys)
    owner = np.full(uniq.size, -1, dtype=np.int64)
    for w in oos_w:
        a, b = windows[w]
        cols = np.searchsorted(uniq, keys[a + 1 : b])
        period_col[w, a + 1 : b] = cols
        fresh = owner[cols] < 0
        owner[cols[fresh]] = w
    starts.append(uniq)
    owners.append(owner)
    offset = uniq.size
    oos_columns = np.arange(uniq.size, dtype=np.int64)
    for w, s in enumerate(sample):
        if s not in ("is", "final"):
            continue
        a, b = windows[w]
        u = np.unique(keys[a + 1 : b])
        period_col[w, a + 1 : b] = offset + np.searchsorted(u, keys[a + 1 : b])
        starts.append(u)
        owners.append(np.full(u.size, w, dtype=np.int64))
        offset += u.size
    return WindowLayout(
        windows=windows,
        fold=tuple(fold),
        sample=tuple(sample),
        period_start_ms=np.concatenate(starts).astype(np.int64),
        period_window=np.concatenate(owners),
        oos_columns=oos_columns,
        period_col=period_col,
        period_ms=int(period_ms),
    )


@dataclass(frozen=True, eq=False)
class PopulationResult:
    """Every candidate of a population, evaluated (arrays aligned with ``params``).

    Attributes
    ----------
    family, timeframe
        What the population is.
    params
        The parameter sets as given (normalized by ``validate`` where valid).
    error
        None for an evaluated candidate, else the reason it failed (``Type: message``).
    metrics
        (P, W, len(METRIC_NAMES)) float64 per window (:data:`METRIC_INDEX`); NaN when failed.
    end_exits
        (P, W) int64: trades closed only because the window ended (forced exits).
    returns
        (P, D) float64 per-period simple returns in :attr:`layout`'s columns; NaN when failed.
    objective, oos_sharpe, oos_max_drawdown, oos_trades
        (P,) as in :class:`aio_ray.strategies.evaluate.CandidateResult`; NaN / 0 when failed.
    sharpe, skew, kurtosis, n_obs
        (P,) moments of the concatenated out-of-sample period returns (for the DSR).
    selection
        (P, S) the in-sample objective (:func:`~aio_ray.strategies.evaluate.fold_value` of
        the window's Sharpe and trades, with ``min_is_trades``) on each of ``layout.selection_windows``; NaN when
        failed. This, never an out-of-sample figure, is what samplers are told and what
        parameters are chosen by.
    layout
        The windows and the return columns.
    """

    family: str
    timeframe: str
    params: list[dict[str, Any]]
    error: list[str | None]
    metrics: np.ndarray
    end_exits: np.ndarray
    returns: np.ndarray
    objective: np.ndarray
    oos_sharpe: np.ndarray
    oos_max_drawdown: np.ndarray
    oos_trades: np.ndarray
    sharpe: np.ndarray
    skew: np.ndarray
    kurtosis: np.ndarray
    n_obs: np.ndarray
    selection: np.ndarray
    layout: WindowLayout

    def __len__(self) -> int:
        return len(self.params)

    @property
    def ok(self) -> np.ndarray:
        """(P,) bool: candidates that were evaluated."""
        return np.array([e is None for e in self.error], dtype=bool)

    def window_metrics(self, p: int, w: int) -> dict[str, float]:
        """Metrics of candidate ``p`` on window ``w`` as a name -> value mapping."""
        return {name: float(self.metrics[p, w, j]) for name, j in METRIC_INDEX.items()}


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _window_config(cfg: eng.BacktestConfig, ts: np.ndarray, a: int, b: int) -> np.ndarray:
    """The kernel configuration of window ``[a, b)`` of bars with open times ``ts`` (UTC ms):
    annualization and span of its own bars, as ``run_backtest`` on that slice computes them."""
    part = ts[a:b]
    return eng._config_vector(cfg, part, infer_bar_ms(part))


def _fold_values(sharpe: np.ndarray, trades: np.ndarray, cfg: ObjectiveConfig) -> np.ndarray:
    """Vectorized :func:`aio_ray.strategies.evaluate.fold_value` over (P, k) arrays."""
    s = np.where(np.isfinite(sharpe), np.clip(sharpe, -cfg.sharpe_cap, cfg.sharpe_cap), 0.0)
    few = ~(trades >= cfg.min_trades)
    return np.where(few, np.minimum(s, 0.0) - cfg.few_trades_penalty, s)


def _moments(r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vectorized :func:`aio_ray.strategies.dsr.return_moments` over rows of ``r`` (no NaN)."""
    # heavy dependency: scipy.stats costs about 1 s to import, only paid where moments are computed
    from scipy.stats import kurtosis as _kurtosis
    from scipy.stats import skew as _skew

    p, n = r.shape
    nan = np.full(p, np.nan)
    if n < 2 or p == 0:
        return nan, nan.copy(), nan.copy(), np.full(p, n, dtype=np.int64)
    sd = np.std(r, axis=1, ddof=1)
    good = sd > 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        sharpe = np.where(good, np.mean(r, axis=1) / np.where(good, sd, 1.0), np.nan)
        sk = np.where(good, _skew(r, axis=1, bias=True), np.nan)
        ku = np.where(good, _kurtosis(r, axis=1, fisher=False, bias=True), np.nan)
    return sharpe, sk, ku, np.full(p, n, dtype=np.int64)


def evaluate_population(
    bars: BarArrays,
    family: str | Family,
    params: Sequence[Mapping[str, Any]],
    folds: Sequence[Fold],
    bt_cfg: eng.BacktestConfig | None = None,
    objective: ObjectiveConfig | None = None,
    *,
    threads: int = 1,
    layout: WindowLayout | None = None,
) -> PopulationResult:
    """Evaluate every parameter set of ``family`` on every fold of ``bars`` (see module doc).

    Parameters
    ----------
    bars
        One timeframe's walk-forward bars (the holdout already cut off).
    family
        Family name or object.
    params
        The population: P parameter sets (invalid ones become failed candidates).
    folds
        From :func:`aio_ray.strategies.walkforward.make_folds` on ``len(bars)``.
    bt_cfg, objective
        Costs / price model and objective, as for ``evaluate_candidate``.
    threads
        Threads sharing the sets (a Ray task holding one CPU: 1).
    layout
        A precomputed :func:`window_layout` of these bars and folds (reused across
        populations of a search); built here when None.

    Never raises for a bad candidate or bad bars: a failure is recorded per candidate (bars
    that fail validation, e.g. NaN prices, fail every candidate with that message).
    """
    bt_cfg = bt_cfg or eng.BacktestConfig()
    objective = objective or ObjectiveConfig()
    fam = _family(family)
    lay = layout or window_layout(bars.ts, folds, objective.period_ms)
    n, n_sets, n_win, n_cols = len(bars), len(params), lay.n_windows, lay.n_columns
    errors: list[str | None] = [None] * n_sets
    norm: list[dict[str, Any]] = [dict(p) for p in params]
    px: np.ndarray | None = None
    swap = np.empty(0)
    try:
        px = kernel_prices(bars, bt_cfg.price_model)  # validated once per bars, then cached
        swap = swap_units_of(bars)
    except Exception as exc:  # noqa: BLE001 - bad bars fail every candidate, with the reason
        errors = [f"bars: {_error(exc)}"] * n_sets
    le = np.zeros((n_sets, n), dtype=np.bool_)
    se = np.zeros_like(le)
    lx = np.zeros_like(le)
    sx = np.zeros_like(le)
    dist_rows: dict[Any, int] = {None: 0}
    dist_arrays: list[np.ndarray] = [np.full(n, np.nan)]
    sd_idx = np.zeros(n_sets, dtype=np.int64)
    td_idx = np.zeros(n_sets, dtype=np.int64)
    if px is not None:
        mb = MemoBars.of(bars)
        for p in range(n_sets):
            try:
                q = validate(fam.name, params[p])
                norm[p] = q
                sig = fam.signals(mb, q, checked=True)
                le[p], se[p], lx[p], sx[p] = (
                    sig.long_entry,
                    sig.short_entry,
                    sig.long_exit,
                    sig.short_exit,
                )
                for idx, mult, arr in (
                    (sd_idx, "stop_atr", sig.stop_dist),
                    (td_idx, "take_atr", sig.take_dist),
                ):
                    key = (mult, q["atr_length"], q[mult]) if q[mult] > 0 else None
                    if key not in dist_rows:
                        eng._distances(f"signals.{mult}", arr, n)
                        dist_rows[key] = len(dist_arrays)
                        dist_arrays.append(np.ascontiguousarray(arr, dtype=np.float64))
                    idx[p] = dist_rows[key]
            except Exception as exc:  # noqa: BLE001 - one bad candidate must not stop the rest
                errors[p] = _error(exc)
    ok = np.array([e is None for e in errors], dtype=bool)
    metrics = np.full((n_sets, n_win, N_METRICS), np.nan)
    end_exits = np.zeros((n_sets, n_win), dtype=np.int64)
    growth = np.full((n_sets, n_cols), np.nan)
    sel = np.flatnonzero(ok)
    if sel.size and px is not None:
        cvs = np.stack([_window_config(bt_cfg, bars.ts, int(a), int(b)) for a, b in lay.windows])
        m_ok = np.empty((sel.size, n_win, N_METRICS))
        e_ok = np.empty((sel.size, n_win), dtype=np.int64)
        g_ok = np.empty((sel.size, n_cols))
        rows = np.stack(dist_arrays)
        whole = sel.size == n_sets
        batch_windows(
            px,
            swap,
            cvs,
            lay.windows,
            le if whole else le[sel],
            se if whole else se[sel],
            lx if whole else lx[sel],
            sx if whole else sx[sel],
            rows,
            sd_idx[sel],
            rows,
            td_idx[sel],
            lay.period_col,
            max(1, int(threads)),
            m_ok,
            e_ok,
            g_ok,
        )
        metrics[sel], end_exits[sel], growth[sel] = m_ok, e_ok, g_ok
    oos = np.array([s == "oos" for s in lay.sample])
    f_sharpe = metrics[:, oos, _SHARPE]
    f_trades = metrics[:, oos, _TRADES]
    values = _fold_values(f_sharpe, f_trades, objective)
    obj = np.mean(values, axis=1) - objective.dispersion_penalty * np.std(values, axis=1)
    dds = metrics[:, oos, _DD]
    max_dd = np.where(np.all(np.isfinite(dds), axis=1), np.max(dds, axis=1), np.nan)
    sh, sk, ku, nobs = _moments(growth[:, lay.oos_columns][ok])
    sharpe = np.full(n_sets, np.nan)
    skew = np.full(n_sets, np.nan)
    kurt = np.full(n_sets, np.nan)
    n_obs = np.zeros(n_sets, dtype=np.int64)
    sharpe[ok], skew[ok], kurt[ok], n_obs[ok] = sh, sk, ku, nobs
    sw = list(lay.selection_windows)
    sel_v = _fold_values(
        metrics[:, sw, _SHARPE], metrics[:, sw, _TRADES], selection_config(objective)
    )
    return PopulationResult(
        family=fam.name,
        timeframe=bars.timeframe,
        params=norm,
        error=errors,
        metrics=metrics,
        end_exits=end_exits,
        returns=growth,
        objective=np.where(ok, obj, np.nan),
        oos_sharpe=np.where(ok, np.mean(values, axis=1), np.nan),
        oos_max_drawdown=np.where(ok, max_dd, np.nan),
        oos_trades=np.where(ok, np.nansum(f_trades, axis=1), 0).astype(np.int64),
        sharpe=sharpe,
        skew=skew,
        kurtosis=kurt,
        n_obs=n_obs,
        selection=np.where(ok[:, None], sel_v, np.nan),
        layout=lay,
    )


def finite_or_none(x: float) -> float | None:
    """``x`` as a float when finite, else None (for JSON and the library)."""
    return float(x) if math.isfinite(x) else None
