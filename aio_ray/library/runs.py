"""Runs of the library: start, finish (with trial / candidate counts), read back.

A run is keyed by its id; a restart of the same id updates its config and seeds and keeps
its first start time. Used through :class:`aio_ray.library.repo.Library`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, func, select, update

from aio_ray.library.engine import CANDIDATES, RUNS, TRIALS, LibraryBase, LibraryError
from aio_ray.library.models import RunRecord, canonical_json, check_text, now_ms, run_record

__all__ = ["RunsMixin"]


class RunsMixin(LibraryBase):
    """Runs: :meth:`start_run`, :meth:`finish_run`, :meth:`get_run`, :meth:`list_runs`."""

    def start_run(
        self,
        run_id: str,
        config: Mapping[str, Any] | BaseModel,
        seeds: Mapping[str, Any],
        *,
        config_id: str | None = None,
    ) -> None:
        """Record the start (or restart) of run ``run_id`` with its config and seeds.

        A restart keeps ``created_ms``, updates config/seeds, sets status "running" and clears
        ``finished_ms``. ``config_id`` defaults to :func:`aio_ray.config.config_id` of a pydantic
        config, or the same hash of a mapping's canonical JSON.
        """
        check_text("run_id", run_id)
        cfg = config.model_dump(mode="json") if isinstance(config, BaseModel) else dict(config)
        cfg_json = canonical_json(cfg)
        cid = (
            config_id
            or hashlib.sha256(
                json.dumps(cfg, sort_keys=True, separators=(",", ":"), default=str).encode()
            ).hexdigest()[:12]
        )
        t = now_ms()
        row = {
            "id": run_id,
            "config_json": cfg_json,
            "config_id": cid,
            "seeds_json": canonical_json(dict(seeds)),
            "status": "running",
            "created_ms": t,
            "started_ms": t,
            "finished_ms": None,
            "trials_done": 0,
            "trials_failed": 0,
        }
        cols = ["config_json", "config_id", "seeds_json", "status", "started_ms", "finished_ms"]
        self._tx(
            lambda c: self._upsert(c, RUNS, [row], ["id"], update_cols=cols),
            f"start run {run_id!r}",
        )

    def finish_run(self, run_id: str, status: str = "finished") -> RunRecord:
        """Mark ``run_id`` finished (or "failed"/"cancelled"), counting its ok/failed trials
        (or, for a population search, its ok/failed candidates)."""
        if status not in ("finished", "failed", "cancelled"):
            raise ValueError(f"status must be finished, failed or cancelled, got {status!r}")

        def run(conn: Connection) -> RunRecord:
            counts: dict[str, int] = {}
            for table in (TRIALS, CANDIDATES):  # trials of per-trial runs, candidates of
                for st, k in conn.execute(  # population runs (a run has one or the other)
                    select(table.c.status, func.count())
                    .where(table.c.run_id == run_id)
                    .group_by(table.c.status)
                ).all():
                    counts[st] = counts.get(st, 0) + int(k)
            res = conn.execute(
                update(RUNS)
                .where(RUNS.c.id == run_id)
                .values(
                    status=status,
                    finished_ms=now_ms(),
                    trials_done=counts.get("ok", 0),
                    trials_failed=counts.get("failed", 0),
                )
            )
            if res.rowcount != 1:
                raise LibraryError(self.safe_url, f"finish run {run_id!r}: no such run")
            return run_record(conn.execute(select(RUNS).where(RUNS.c.id == run_id)).one())

        return self._tx(run, f"finish run {run_id!r}")

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run ``run_id``, or None."""
        row = self._tx(
            lambda c: c.execute(select(RUNS).where(RUNS.c.id == run_id)).first(), "get run"
        )
        return None if row is None else run_record(row)

    def list_runs(self) -> list[RunRecord]:
        """Every run, newest first (by first start time, then id)."""
        rows = self._tx(
            lambda c: c.execute(
                select(RUNS).order_by(RUNS.c.created_ms.desc(), RUNS.c.id.desc())
            ).all(),
            "list runs",
        )
        return [run_record(r) for r in rows]
