"""Results of a search in the library: strategies, trials, walk-forward fold metrics,
holdout metrics and trades.

Every write is an upsert on the table's natural key (see :mod:`aio_ray.library.repo`); NaN
metrics are stored as NULL. Population-search candidates are in
:mod:`aio_ray.library.candidates`. Used through :class:`aio_ray.library.repo.Library`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, delete, select

from aio_ray.library.engine import FOLDS, HOLDOUT, STRATEGIES, TRADES, TRIALS, LibraryBase
from aio_ray.library.models import (
    METRIC_COLUMNS,
    SAMPLES,
    TRADE_FIELDS,
    TRIAL_STATUSES,
    StrategyRecord,
    canonical_json,
    check_text,
    metric_row,
    now_ms,
    strategy_id,
    strategy_record,
    ts_ms,
)

__all__ = ["ResultsMixin"]


class ResultsMixin(LibraryBase):
    """Strategies, trials, fold / holdout metrics and trades of runs."""

    def upsert_strategy(
        self,
        run_id: str,
        family: str,
        params: Mapping[str, Any],
        timeframe: str,
        symbol: str,
        *,
        name: str | None = None,
    ) -> str:
        """Store a strategy once and return its stable id (see :func:`strategy_id`).

        The first run that finds a strategy owns the row; later finds (any run) leave it as is.
        """
        for arg, val in (
            ("run_id", run_id),
            ("family", family),
            ("timeframe", timeframe),
            ("symbol", symbol),
        ):
            check_text(arg, val)
        if name is not None:
            check_text("name", name)
        sid = strategy_id(family, params, timeframe, symbol)
        row = {
            "id": sid,
            "family": family,
            "name": name or family,
            "params_json": canonical_json(dict(params)),
            "timeframe": timeframe,
            "symbol": symbol,
            "run_id": run_id,
            "created_ms": now_ms(),
        }
        self._tx(
            lambda c: self._upsert(c, STRATEGIES, [row], ["id"], update_cols=()),
            f"upsert strategy {sid}",
        )
        return sid

    def get_strategy(self, strategy_id: str) -> StrategyRecord | None:
        """The strategy with this id, or None."""
        row = self._tx(
            lambda c: c.execute(select(STRATEGIES).where(STRATEGIES.c.id == strategy_id)).first(),
            "get strategy",
        )
        return None if row is None else strategy_record(row)

    def record_trial(
        self,
        run_id: str,
        trial_number: int,
        *,
        strategy_id: str | None = None,
        status: str = "ok",
        error: str | None = None,
        objective: float | None = None,
        duration_s: float | None = None,
    ) -> None:
        """Record search trial ``trial_number`` of ``run_id`` (replacing an earlier record of it).

        ``status`` is "ok" or "failed"; a failed trial should carry ``error`` (the message).
        """
        if status not in TRIAL_STATUSES:
            raise ValueError(f"status must be one of {TRIAL_STATUSES}, got {status!r}")
        obj = None if objective is None or math.isnan(float(objective)) else float(objective)
        row = {
            "run_id": run_id,
            "trial_number": int(trial_number),
            "strategy_id": strategy_id,
            "status": status,
            "objective": obj,
            "error": error,
            "duration_s": duration_s,
            "recorded_ms": now_ms(),
        }
        self._tx(
            lambda c: self._upsert(c, TRIALS, [row], ["run_id", "trial_number"]),
            f"record trial {trial_number} of run {run_id!r}",
        )

    def trials(self, run_id: str) -> list[dict[str, Any]]:
        """The trials of ``run_id`` in trial order, as plain dicts."""
        rows = self._tx(
            lambda c: c.execute(
                select(TRIALS).where(TRIALS.c.run_id == run_id).order_by(TRIALS.c.trial_number)
            ).all(),
            "list trials",
        )
        return [dict(r._mapping) for r in rows]

    # ------------------------------------------------------------------ metrics

    def record_fold_metrics(
        self,
        run_id: str,
        strategy_id: str,
        folds: Iterable[Mapping[str, Any]],
        *,
        replace: bool = False,
    ) -> None:
        """Store walk-forward metrics of one strategy: one mapping per (fold, sample).

        Each mapping holds ``fold`` (0-based int), ``sample`` ("is" or "oos") and any of
        :data:`~aio_ray.library.models.METRIC_COLUMNS` (missing or NaN metrics become NULL).
        Rows for the same (run, strategy, fold, sample) are replaced; other folds stay, so
        folds may be recorded one call at a time. ``replace=True`` makes ``folds`` the complete
        set: rows of this run and strategy that are not in it are deleted.
        """
        rows = []
        for f in folds:
            sample = f.get("sample")
            if sample not in SAMPLES:
                raise ValueError(
                    f"fold metrics of {strategy_id}: sample must be one of {SAMPLES}, "
                    f"got {sample!r}"
                )
            where = f"fold metrics of {strategy_id} fold {f.get('fold')!r}"
            row = metric_row(f, ("fold", "sample"), where)
            row.update(run_id=run_id, strategy_id=strategy_id, fold=int(f["fold"]), sample=sample)
            rows.append(row)
        keys = ["run_id", "strategy_id", "fold", "sample"]
        if len({tuple(r[k] for k in keys) for r in rows}) != len(rows):
            raise ValueError(f"fold metrics of {strategy_id}: a (fold, sample) pair appears twice")
        given = {(r["fold"], r["sample"]) for r in rows}

        def run(conn: Connection) -> None:
            self._upsert(conn, FOLDS, rows, keys)
            if replace:
                t = FOLDS
                mine = (t.c.run_id == run_id) & (t.c.strategy_id == strategy_id)
                stale = [
                    k
                    for k in conn.execute(select(t.c.fold, t.c.sample).where(mine)).all()
                    if (k[0], k[1]) not in given
                ]
                for fold, sample in stale:
                    conn.execute(
                        delete(t).where(mine & (t.c.fold == fold) & (t.c.sample == sample))
                    )

        self._tx(run, f"record fold metrics of {strategy_id}")

    def fold_metrics(self, run_id: str, strategy_id: str | None = None) -> list[dict[str, Any]]:
        """Fold metric rows of a run (optionally one strategy), by strategy, fold, sample."""
        q = select(FOLDS).where(FOLDS.c.run_id == run_id)
        if strategy_id is not None:
            q = q.where(FOLDS.c.strategy_id == strategy_id)
        q = q.order_by(FOLDS.c.strategy_id, FOLDS.c.fold, FOLDS.c.sample)
        return [
            dict(r._mapping) for r in self._tx(lambda c: c.execute(q).all(), "read fold metrics")
        ]

    def record_holdout(self, run_id: str, strategy_id: str, metrics: Mapping[str, Any]) -> None:
        """Store (or replace) the holdout metrics of one strategy in one run."""
        row = metric_row(metrics, (), f"holdout of {strategy_id}")
        row.update(run_id=run_id, strategy_id=strategy_id)
        self._tx(
            lambda c: self._upsert(c, HOLDOUT, [row], ["run_id", "strategy_id"]),
            f"record holdout of {strategy_id}",
        )

    def holdout(self, run_id: str, strategy_id: str) -> dict[str, float | int | None] | None:
        """The holdout metrics of a strategy in a run, or None."""
        q = select(HOLDOUT).where(HOLDOUT.c.run_id == run_id, HOLDOUT.c.strategy_id == strategy_id)
        row = self._tx(lambda c: c.execute(q).first(), "read holdout")
        return None if row is None else {k: row._mapping[k] for k in METRIC_COLUMNS}

    # ------------------------------------------------------------------ trades

    def record_trades(
        self, run_id: str, strategy_id: str, segment: str, trades: Iterable[Mapping[str, Any]] | Any
    ) -> int:
        """Replace one strategy's trades in one segment ("holdout", "full", ...); returns count.

        ``trades`` is an iterable of mappings with :data:`TRADE_FIELDS` (``entry_ts``/``exit_ts``
        as UTC epoch ms, datetimes or datetime64; prices in quote currency; ``size`` in base
        units; ``pnl`` in quote currency; ``pnl_pips`` in pips), or a pyarrow/polars table with
        those columns. Order is kept (``seq`` = position).
        """
        check_text("segment", segment)
        if hasattr(trades, "to_pylist"):
            trades = trades.to_pylist()
        elif hasattr(trades, "to_dicts"):
            trades = trades.to_dicts()
        rows = []
        for i, t in enumerate(trades):
            where = f"trade {i} of {strategy_id} ({segment})"
            missing = [f for f in TRADE_FIELDS if f not in t]
            if missing:
                raise ValueError(f"{where}: missing field(s) {missing}")
            side = t["side"]
            if side not in ("long", "short"):
                raise ValueError(f"{where}: side must be 'long' or 'short', got {side!r}")
            rows.append(
                {
                    "run_id": run_id,
                    "strategy_id": strategy_id,
                    "segment": segment,
                    "seq": i,
                    "side": side,
                    "entry_ts": ts_ms(t["entry_ts"], where),
                    "exit_ts": ts_ms(t["exit_ts"], where),
                    "entry_price": float(t["entry_price"]),
                    "exit_price": float(t["exit_price"]),
                    "size": float(t["size"]),
                    "pnl": float(t["pnl"]),
                    "pnl_pips": float(t["pnl_pips"]),
                    "exit_reason": str(t["exit_reason"]),
                }
            )

        def run(conn: Connection) -> None:
            self._upsert(conn, TRADES, rows, ["run_id", "strategy_id", "segment", "seq"])
            conn.execute(
                delete(TRADES).where(
                    TRADES.c.run_id == run_id,
                    TRADES.c.strategy_id == strategy_id,
                    TRADES.c.segment == segment,
                    TRADES.c.seq >= len(rows),
                )
            )

        self._tx(run, f"record trades of {strategy_id} ({segment})")
        return len(rows)

    def trades(self, run_id: str, strategy_id: str, segment: str) -> list[dict[str, Any]]:
        """The trades of one strategy in one segment, in order, as plain dicts."""
        q = (
            select(TRADES)
            .where(
                TRADES.c.run_id == run_id,
                TRADES.c.strategy_id == strategy_id,
                TRADES.c.segment == segment,
            )
            .order_by(TRADES.c.seq)
        )
        return [dict(r._mapping) for r in self._tx(lambda c: c.execute(q).all(), "read trades")]
