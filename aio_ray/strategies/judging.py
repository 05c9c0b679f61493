"""Judging a finished search: nested walk-forward selection, the verdict, then the holdout.

Every recorded candidate of the run (read back from the library, or from the run's Parquet
spool without one) goes through :class:`~aio_ray.strategies.selection.Selector`; the
procedures' out-of-sample records are gated, scored and ranked by
:func:`aio_ray.strategies.verdict.judge`. Only then are the picks evaluated on the final
holdout (:func:`holdout_results`): its figures are reported beside the verdict
(:func:`with_holdout`), never part of a score. Timestamps are UTC ms.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aio_ray.bars.arrays import BarArrays
from aio_ray.library import Library, strategy_id
from aio_ray.library.candidates import iter_candidates
from aio_ray.strategies.config import SearchConfig
from aio_ray.strategies.evaluate import HoldoutResult, evaluate_holdout
from aio_ray.strategies.islands import island_windows
from aio_ray.strategies.population import window_layout
from aio_ray.strategies.ranking import Candidate, RankedStrategy
from aio_ray.strategies.selection import Selector, spool_batches
from aio_ray.strategies.space import describe
from aio_ray.strategies.verdict import Judgement, judge, plain_json
from aio_ray.strategies.walkforward import SearchError

log = logging.getLogger(__name__)

__all__ = ["holdout_results", "judge_run", "param_ranges", "window_layouts", "with_holdout"]

_CANDIDATE_COLUMNS = [
    "number",
    "family",
    "timeframe",
    "guide",
    "status",
    "error",
    "params_json",
    "returns",
    "window_metrics",
]


def window_layouts(wf: Mapping[str, BarArrays], cfg: SearchConfig) -> dict[str, dict[str, Any]]:
    """Each timeframe's window / return-column layout (where the folds can be made)."""
    out: dict[str, dict[str, Any]] = {}
    for tf, mb in wf.items():
        try:
            folds, final = island_windows(len(mb), cfg)
            lay = window_layout(mb.ts, folds, cfg.objective_config.period_ms, final)
        except SearchError:
            continue
        out[tf] = lay.describe()
    return out


def param_ranges(families: Sequence[str]) -> dict[str, dict[str, tuple[float, float]]]:
    """family -> numeric parameter name -> (low, high) of its space (for parameter distances)."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for fam in families:
        out[fam] = {
            p["name"]: (float(p["low"]), float(p["high"]))
            for p in describe(fam)["params"]
            if "low" in p
        }
    return out


def judge_run(
    lib: Library | None,
    run_id: str,
    layouts: Mapping[str, dict[str, Any]],
    spool: Path,
    cfg: SearchConfig,
) -> Judgement:
    """Nested walk-forward selection over every recorded candidate, then the verdict."""
    t0 = time.perf_counter()
    sel = Selector(
        layouts, cfg.objective_config, matrix_candidates=cfg.matrix_candidates, seed=cfg.seed
    )
    batches: Iterable[list[dict[str, Any]]]
    if lib is not None:
        batches = iter_candidates(lib, run_id, columns=_CANDIDATE_COLUMNS)
    else:
        batches = spool_batches(spool)
    for b in batches:
        sel.add(b)
    records = sel.records()
    n_failed = sum(sel.errors.values())
    out = judge(
        records,
        sel.samples(),
        strategy_id=lambda fam, params, tf: strategy_id(fam, params, tf, cfg.symbol),
        config=cfg.ranking,
        top=cfg.top,
        param_ranges=param_ranges(cfg.family_names()),
        n_failed=n_failed,
        errors=sel.errors,
        pbo_blocks=cfg.ranking.pbo_blocks,
        seed=cfg.seed,
    )
    log.info(
        "search %s: judged %d procedures in %.1f s", run_id, len(records), time.perf_counter() - t0
    )
    return out


def holdout_results(
    ranking: Sequence[RankedStrategy],
    candidates: Mapping[str, Candidate],
    full: Mapping[str, BarArrays],
    hold_ranges: Mapping[str, tuple[int, int]],
    cfg: SearchConfig,
) -> dict[str, HoldoutResult]:
    """``strategy_id`` -> the ranked strategy on its timeframe's holdout bars ``hold_ranges``
    (bar index range ``[h0, h1)`` of ``full``); a holdout of fewer than 2 bars is skipped."""
    holdout: dict[str, HoldoutResult] = {}
    for r in ranking:
        c = candidates[r.strategy_id]
        h0, h1 = hold_ranges[c.timeframe]
        if h1 - h0 >= 2:
            holdout[r.strategy_id] = evaluate_holdout(
                full[c.timeframe], c.family, c.params, (h0, h1), cfg.backtest, c.timeframe
            )
    return holdout


def with_holdout(
    v: dict[str, Any],
    holdout: Mapping[str, HoldoutResult],
    run_id: str,
    cfg: SearchConfig,
    cut: int | None,
) -> dict[str, Any]:
    """The verdict with the picks' holdout figures (touched once, after ranking), the run,
    the costs and how the parameters were chosen (``cut``: UTC ms where the holdout starts)."""
    out = dict(v)
    out["run_id"] = run_id
    for s in out["strategies"]:
        h = holdout.get(s["strategy_id"])
        s["holdout"] = (
            None
            if h is None
            else plain_json(
                {
                    k: h.metrics.get(k)
                    for k in ("net_profit", "sharpe", "max_drawdown", "profit_factor", "trades")
                }
            )
        )
    bt = cfg.backtest
    out["costs"] = plain_json(
        {
            k: getattr(bt, k)
            for k in type(bt).model_fields
            if k
            in (
                "commission_type",
                "commission",
                "slippage_points",
                "swap_long",
                "swap_short",
                "price_model",
            )
        }
    )
    out["selection"] = {
        "method": "nested walk-forward: each fold's parameters chosen on its in-sample window "
        "only; exported parameters chosen on the last in-sample window before the "
        "holdout",
        "folds": cfg.n_folds,
        "scheme": cfg.scheme,
        "embargo_bars": cfg.embargo(),
        "sampler": cfg.sampler_name(),
        "holdout_start_ms": cut,
    }
    return out
