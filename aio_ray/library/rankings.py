"""Rankings and verdicts of runs in the library, and the top of a ranking with its
strategies and holdout metrics. Used through :class:`aio_ray.library.repo.Library`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, select

from aio_ray.library.engine import HOLDOUT, RANKINGS, RUNS, STRATEGIES, VERDICTS, LibraryBase
from aio_ray.library.models import (
    METRIC_COLUMNS,
    RankedRecord,
    StrategyRecord,
    field_of,
    now_ms,
    to_plain,
)

__all__ = ["RankingsMixin"]


class RankingsMixin(LibraryBase):
    """Rankings and verdicts: save them, find the newest judged run, read its top."""

    def save_ranking(self, run_id: str, rows: Sequence[Any]) -> None:
        """Replace the ranking of ``run_id`` with ``rows`` (best first; rank = position + 1).

        Each row is a :class:`aio_ray.strategies.ranking.RankedStrategy` or a mapping / object
        with ``strategy_id``, ``score``, ``criteria`` (mapping), and optionally
        ``contributions`` (mapping) and ``rationale`` (str).
        """
        t = now_ms()
        out = []
        for i, r in enumerate(rows):
            sid = field_of(r, "strategy_id")
            score = float(field_of(r, "score"))
            if sid is None or math.isnan(score):
                raise ValueError(f"ranking row {i}: needs a strategy_id and a finite score")
            out.append(
                {
                    "run_id": run_id,
                    "rank": i + 1,
                    "strategy_id": sid,
                    "score": score,
                    "criteria_json": json.dumps(
                        to_plain(dict(field_of(r, "criteria", {}))),
                        sort_keys=True,
                        ensure_ascii=False,
                    ),
                    "contributions_json": json.dumps(
                        to_plain(dict(field_of(r, "contributions", {}) or {})),
                        sort_keys=True,
                        ensure_ascii=False,
                    ),
                    "rationale": str(field_of(r, "rationale", "") or ""),
                    "created_ms": t,
                }
            )

        def run(conn: Connection) -> None:
            self._upsert(conn, RANKINGS, out, ["run_id", "rank"])
            conn.execute(
                delete(RANKINGS).where(RANKINGS.c.run_id == run_id, RANKINGS.c.rank > len(out))
            )

        self._tx(run, f"save ranking of run {run_id!r}")

    def save_verdict(self, run_id: str, verdict: Mapping[str, Any]) -> None:
        """Store (replace) the verdict of ``run_id`` (``aio_ray.strategies.verdict``)."""
        row = {
            "run_id": run_id,
            "verdict": str(verdict["verdict"]),
            "passed": int(verdict["passed"]),
            "verdict_json": json.dumps(
                to_plain(dict(verdict)), sort_keys=True, ensure_ascii=False, allow_nan=False
            ),
            "created_ms": now_ms(),
        }
        self._tx(
            lambda c: self._upsert(c, VERDICTS, [row], ["run_id"]),
            f"save verdict of run {run_id!r}",
        )

    def verdict(self, run_id: str | None = None) -> dict[str, Any] | None:
        """The stored verdict of ``run_id`` (default: the newest judged run), or None."""
        rid = run_id if run_id is not None else self.latest_ranked_run()
        if rid is None:
            return None
        q = select(VERDICTS.c.verdict_json).where(VERDICTS.c.run_id == rid)
        got = self._tx(lambda c: c.execute(q).scalar(), f"read verdict of run {rid!r}")
        if got is None:
            return None
        out: dict[str, Any] = json.loads(got)
        out.setdefault("run_id", rid)
        return out

    def latest_ranked_run(self) -> str | None:
        """The id of the newest run (by first start) that has a verdict or a saved ranking
        (a run where nothing passed has a verdict and an empty ranking), or None."""
        judged = select(VERDICTS.c.run_id).union(select(RANKINGS.c.run_id))
        q = (
            select(RUNS.c.id)
            .where(RUNS.c.id.in_(judged))
            .order_by(RUNS.c.created_ms.desc(), RUNS.c.id.desc())
            .limit(1)
        )
        return self._tx(lambda c: c.execute(q).scalar(), "find latest ranked run")

    def top(self, run_id: str | None = None, n: int = 5) -> list[RankedRecord]:
        """The best ``n`` of a run's saved ranking (default: the newest ranked run).

        Each row carries its strategy and the run's holdout metrics for it (reported beside
        the score, never part of it). Empty when there is no ranking.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        rid = run_id if run_id is not None else self.latest_ranked_run()
        if rid is None:
            return []
        s, r, h = STRATEGIES, RANKINGS, HOLDOUT
        q = (
            select(
                r,
                *[col.label(f"s_{col.key}") for col in s.c],
                *[h.c[m].label(f"h_{m}") for m in METRIC_COLUMNS],
                h.c.run_id.label("h_present"),
            )
            .join(s, s.c.id == r.c.strategy_id)
            .outerjoin(h, (h.c.run_id == r.c.run_id) & (h.c.strategy_id == r.c.strategy_id))
            .where(r.c.run_id == rid)
            .order_by(r.c.rank)
            .limit(n)
        )
        out = []
        for row in self._tx(lambda c: c.execute(q).all(), f"read ranking of run {rid!r}"):
            m = row._mapping
            strat = StrategyRecord(
                id=m["s_id"],
                family=m["s_family"],
                name=m["s_name"],
                params=json.loads(m["s_params_json"]),
                timeframe=m["s_timeframe"],
                symbol=m["s_symbol"],
                run_id=m["s_run_id"],
                created_ms=m["s_created_ms"],
            )
            hold = None if m["h_present"] is None else {k: m[f"h_{k}"] for k in METRIC_COLUMNS}
            out.append(
                RankedRecord(
                    run_id=m["run_id"],
                    rank=m["rank"],
                    score=m["score"],
                    criteria=json.loads(m["criteria_json"]),
                    contributions=json.loads(m["contributions_json"]),
                    rationale=m["rationale"],
                    created_ms=m["created_ms"],
                    strategy=strat,
                    holdout=hold,
                )
            )
        return out
