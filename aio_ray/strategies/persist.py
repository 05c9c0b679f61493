"""Storing a search in the library: the return layouts first, the outcome at the end.

Every candidate is written while the search runs (by the
:class:`~aio_ray.strategies.recorder.CandidateRecorder`); what is stored here is the layout
those return series follow (:func:`record_layouts`) and, once judged, the finalists, the
exported picks with their out-of-sample fold records, the holdout figures and trades, the
ranking and the verdict (:func:`store_outcome`). Timestamps are UTC ms.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aio_ray.library import METRIC_COLUMNS, TRADE_FIELDS, Library
from aio_ray.library.candidates import record_layout
from aio_ray.strategies.search_outcome import SearchOutcome
from aio_ray.strategies.verdict import Judgement

__all__ = ["HOLDOUT_TRADE_COLUMNS", "record_layouts", "store_outcome"]

HOLDOUT_TRADE_COLUMNS = TRADE_FIELDS
"""The trade columns stored for a ranked strategy's holdout."""


def record_layouts(lib: Library, run_id: str, layouts: Mapping[str, Mapping[str, Any]]) -> None:
    """Store each timeframe's window / return-column layout of the run's candidates."""
    for tf, lay in layouts.items():
        record_layout(lib, run_id, tf, lay)


def store_outcome(lib: Library, out: SearchOutcome, judgement: Judgement) -> None:
    """Write the finalists (strategies and fold metrics), each procedure's exported pick with
    its nested walk-forward record as its OOS fold metrics, holdout metrics and trades of the
    ranked strategies, the ranking and the verdict (every candidate is already stored)."""
    run_id, symbol = out.run_id, out.config.symbol
    seen: set[str] = set()
    for f in out.finalists:  # best first: a strategy found twice keeps its best folds
        if f["strategy_id"] in seen:
            continue
        seen.add(f["strategy_id"])
        sid = lib.upsert_strategy(run_id, f["family"], f["params"], f["timeframe"], symbol)
        lib.record_fold_metrics(  # the final in-sample window is in-sample window k
            run_id,
            sid,
            [
                {
                    "fold": r["fold"],
                    "sample": "is" if r["sample"] == "final" else r["sample"],
                    **{k: r[k] for k in METRIC_COLUMNS},
                }
                for r in f["folds"]
            ],
        )
    for sid, c in judgement.candidates.items():
        rec = judgement.records[sid]
        lib.upsert_strategy(run_id, c.family, dict(c.params), c.timeframe, symbol)
        rows = [
            {"fold": f.fold, "sample": "oos", **{k: f.oos.get(k) for k in METRIC_COLUMNS}}
            for f in rec.folds
            if f.number >= 0
        ]
        lib.record_fold_metrics(run_id, sid, rows)
    for sid, h in out.holdout.items():
        lib.record_holdout(run_id, sid, {k: h.metrics[k] for k in METRIC_COLUMNS})
        lib.record_trades(run_id, sid, "holdout", h.trades.select(*HOLDOUT_TRADE_COLUMNS))
    lib.save_ranking(run_id, list(out.ranking))
    if out.verdict is not None:
        lib.save_verdict(run_id, out.verdict)
