"""Equity and drawdown curves of a library strategy, recomputed from its bars.

The backtest is the one the search ran (the run's backtest settings: costs, sizing, price
model) over the whole period after the warm-up bars, with the parameters as ranked (live
parameter overrides do not rewrite history). The holdout start is the run's shared cut, so
the chart shows which part of the curve the ranking never saw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from aio_ray.strategies.engine import BacktestConfig
from aio_ray.strategies.evaluate import evaluate_window, split_holdout

__all__ = ["MAX_POINTS", "drawdown", "equity_from_trades", "equity_of", "thin"]

MAX_POINTS = 4_000
"""Curves longer than this are thinned (every k-th bar, the last bar and the trough kept)."""


def drawdown(equity: np.ndarray) -> np.ndarray:
    """Drawdown at each point: ``equity / running peak - 1`` (a fraction, 0 or negative)."""
    e = np.asarray(equity, dtype=np.float64)
    if e.size == 0:
        return e
    peak = np.maximum.accumulate(e)
    return np.where(peak > 0, e / peak - 1.0, 0.0)


def thin(n: int, keep: Sequence[int] = (), max_points: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most about ``max_points`` of ``n`` points: a regular stride plus the
    last point and the indices in ``keep`` (e.g. the deepest drawdown), sorted."""
    if n <= max_points:
        return np.arange(n)
    step = int(np.ceil(n / max_points))
    idx = np.concatenate([np.arange(0, n, step), [n - 1], np.asarray(keep, dtype=np.int64)])
    return np.unique(idx)


def _trade_rows(trades: pl.DataFrame) -> list[dict[str, Any]]:
    if trades.height == 0:
        return []
    cols = ["side", "entry_ts", "exit_ts", "entry_price", "exit_price", "size", "pnl",
            "pnl_pips", "exit_reason"]  # fmt: skip
    df = trades.select(cols).with_columns(
        pl.col("entry_ts", "exit_ts").cast(pl.Datetime("ms", "UTC")).dt.epoch("ms")
    )
    return df.to_dicts()


def equity_of(
    strategy: Any, frames: Mapping[str, pl.DataFrame], search: Mapping[str, Any]
) -> dict[str, Any]:
    """Backtest ``strategy`` (a library StrategyRecord) over its bars and return its curves.

    Parameters
    ----------
    strategy
        Has ``id``, ``family``, ``params``, ``timeframe``.
    frames
        Bar frames (BAR_SCHEMA) of every timeframe of the run (they fix the holdout cut),
        including the strategy's own.
    search
        The run's search settings as stored (``backtest``, ``warmup_bars``,
        ``holdout_fraction``); empty: defaults and no holdout.

    Returns
    -------
    dict
        ``ts`` (UTC ms, bar open), ``equity`` (account currency, at the bar's close),
        ``drawdown`` (fraction below the running peak, <= 0), ``trades`` (UTC ms, quote
        currency), ``metrics`` of the whole period, ``holdout_start_ms`` and
        ``initial_capital``.
    """
    bt = BacktestConfig.model_validate(search.get("backtest") or {})
    hf = float(search.get("holdout_fraction") or 0.0)
    _, full, cut, _ = split_holdout(dict(frames), hf)
    mb = full[strategy.timeframe]
    n = len(mb)
    warm = int(max(0, min(int(search.get("warmup_bars") or 0), n - 2)))
    res = evaluate_window(mb, strategy.family, strategy.params, warm, n, bt)
    eq = np.asarray(res.equity, dtype=np.float64)
    dd = drawdown(eq)
    idx = thin(eq.size, keep=[int(np.argmin(dd))] if dd.size else [])
    return {
        "strategy_id": strategy.id,
        "source": "backtest",
        "timeframe": strategy.timeframe,
        "price_model": bt.price_model,
        "initial_capital": bt.initial_capital,
        "params": strategy.params,
        "ts": np.asarray(res.ts, dtype=np.int64)[idx].tolist(),
        "equity": eq[idx].tolist(),
        "drawdown": dd[idx].tolist(),
        "points": int(eq.size),
        "holdout_start_ms": cut,
        "metrics": dict(res.metrics),
        "trades": _trade_rows(res.trades),
    }


def equity_from_trades(
    trades: Sequence[Mapping[str, Any]], search: Mapping[str, Any], note: str = ""
) -> dict[str, Any]:
    """Curves from stored (holdout) trades alone, stepping at each exit, for when the bars
    are not available to the app; ``note`` says why."""
    cap = BacktestConfig.model_validate(search.get("backtest") or {}).initial_capital
    rows = sorted(trades, key=lambda t: t["exit_ts"])
    ts = ([rows[0]["entry_ts"]] if rows else []) + [int(t["exit_ts"]) for t in rows]
    pnl = np.array([float(t["pnl"]) for t in rows], dtype=np.float64)
    eq: np.ndarray = cap + np.concatenate([[0.0], np.cumsum(pnl)]) if rows else np.empty(0)
    keys = ("side", "entry_ts", "exit_ts", "entry_price", "exit_price", "size", "pnl",
            "pnl_pips", "exit_reason")  # fmt: skip
    return {
        "source": "holdout_trades",
        "note": note,
        "initial_capital": cap,
        "ts": ts,
        "equity": eq.tolist(),
        "drawdown": drawdown(eq).tolist(),
        "points": int(eq.size),
        "holdout_start_ms": rows[0]["entry_ts"] if rows else None,
        "metrics": {},
        "trades": [{k: t[k] for k in keys} for t in rows],
    }
