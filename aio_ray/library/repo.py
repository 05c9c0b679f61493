"""Reads and writes of the strategy library, on SQLite (default) or PostgreSQL.

Every write is an upsert on the table's natural key, in one short transaction, so a rerun of
a run id replaces rows instead of duplicating them and concurrent writers (Ray workers, OS
processes) can record the same run at once. On SQLite the file runs in WAL mode with a busy
timeout, transactions begin ``IMMEDIATE`` (so two writers never deadlock on a lock upgrade)
and a write that still meets "database is locked" is retried with backoff; on PostgreSQL
writes use ``INSERT ... ON CONFLICT`` with rows in key order, and deadlocks / serialization
failures are retried. User values only ever travel as bound parameters.

A :class:`Library` pickles as its URL, so it can be handed to Ray tasks: each worker opens
its own connection pool.

The work is split by job: :mod:`~aio_ray.library.engine` (URL checks, engine, schema,
transactions, upserts), :mod:`~aio_ray.library.runs`, :mod:`~aio_ray.library.results`
(strategies, trials, metrics, trades), :mod:`~aio_ray.library.rankings` (rankings and
verdicts), :mod:`~aio_ray.library.pine` (Pine verification) and
:mod:`~aio_ray.library.control` (control audit); :class:`Library` assembles them. The default
URL is :data:`aio_ray.library.config.DEFAULT_URL`.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import func, select

from aio_ray.library.config import DEFAULT_URL
from aio_ray.library.control import ControlMixin
from aio_ray.library.engine import (  # noqa: F401 - the private helpers' old home
    _PG_ADVISORY_KEY,
    CANDIDATES,
    CONTROL,
    FOLDS,
    HOLDOUT,
    PINE,
    RANKINGS,
    RUNS,
    STRATEGIES,
    TRADES,
    TRIALS,
    VERDICTS,
    LibraryError,
    LibraryUnavailableError,
    _finite_json,
    _new_id,
)
from aio_ray.library.models import ALL_TABLES, RankedRecord, RunRecord, StrategyRecord, table_of
from aio_ray.library.pine import PineMixin
from aio_ray.library.rankings import RankingsMixin
from aio_ray.library.results import ResultsMixin
from aio_ray.library.runs import RunsMixin

__all__ = [
    "CANDIDATES",
    "CONTROL",
    "DEFAULT_URL",
    "FOLDS",
    "HOLDOUT",
    "PINE",
    "RANKINGS",
    "RUNS",
    "STRATEGIES",
    "TRADES",
    "TRIALS",
    "VERDICTS",
    "Library",
    "LibraryError",
    "LibraryUnavailableError",
    "RankedRecord",
    "RunRecord",
    "StrategyRecord",
    "open_library",
]


class Library(RunsMixin, ResultsMixin, RankingsMixin, PineMixin, ControlMixin):
    """The strategy library at ``url``; tables are created on open.

    Parameters
    ----------
    url
        SQLAlchemy URL: ``sqlite:///path/to/library.db`` (a missing folder is created) or
        ``postgresql+psycopg://user:password@host:port/database``.
    retries
        Extra attempts of a write that meets a transient failure (SQLite "database is locked",
        PostgreSQL deadlock / serialization failure / dropped connection).
    connect_timeout_s
        Seconds to wait for a PostgreSQL server before reporting it unreachable.
    busy_timeout_s
        Seconds a SQLite statement waits for another writer's lock before "database is
        locked" (which is then retried ``retries`` times with backoff).

    Raises
    ------
    LibraryUnavailableError
        The URL is malformed, names an unknown driver, or the database cannot be opened; the
        message names the URL without its password.
    """

    # pickling by URL lets a Library travel to Ray workers / spawned processes
    def __reduce__(self) -> tuple[Any, ...]:
        return (_reopen, (self._url, self._retries, self._connect_timeout_s, self._busy_timeout_s))

    # ------------------------------------------------------------------ counts (tests, dashboards)

    def count(self, table: str, run_id: str | None = None) -> int:
        """Rows in library table ``table`` (e.g. "trades"), optionally only those of ``run_id``."""
        models = {m.__tablename__: m for m in ALL_TABLES}
        if table not in models:
            raise ValueError(f"unknown table {table!r}; known: {sorted(models)}")
        t = table_of(models[table])
        q = select(func.count()).select_from(t)
        if run_id is not None:
            col = t.c.get("run_id") if table != "runs" else t.c.id
            if col is None:
                raise ValueError(f"table {table!r} has no run_id")
            q = q.where(col == run_id)
        return int(self._tx(lambda c: c.execute(q).scalar_one(), f"count {table}"))

    # ------------------------------------------------------------------ change marker

    def change_marker(self) -> tuple[int, ...]:
        """A cheap fingerprint that changes when a run starts or finishes, a ranking or a
        verdict is saved, or a Pine check or a control event is recorded (readers key their
        caches on it)."""
        q = select(
            select(func.coalesce(func.max(VERDICTS.c.created_ms), 0)).scalar_subquery(),
            select(func.count()).select_from(VERDICTS).scalar_subquery(),
            select(func.coalesce(func.max(CONTROL.c.id), 0)).scalar_subquery(),
            select(func.coalesce(func.max(PINE.c.id), 0)).scalar_subquery(),
            select(func.coalesce(func.max(RANKINGS.c.created_ms), 0)).scalar_subquery(),
            select(func.count()).select_from(RANKINGS).scalar_subquery(),
            select(func.coalesce(func.max(RUNS.c.finished_ms), 0)).scalar_subquery(),
            select(func.count()).select_from(RUNS).scalar_subquery(),
        )
        return tuple(int(v) for v in self._tx(lambda c: c.execute(q).one(), "read change marker"))


def _reopen(url: str, retries: int, connect_timeout_s: float, busy_timeout_s: float) -> Library:
    return Library(
        url, retries=retries, connect_timeout_s=connect_timeout_s, busy_timeout_s=busy_timeout_s
    )


def open_library(url: str | None = None, **kwargs: Any) -> Library:
    """Open (creating tables if needed) the library at ``url``.

    ``url`` None: the ``AIO_LIBRARY_URL`` environment variable, else :data:`DEFAULT_URL`.
    Raises :class:`LibraryUnavailableError` naming the URL (password hidden) when the URL is
    malformed or the database is unreachable.
    """
    return Library(url or os.environ.get("AIO_LIBRARY_URL") or DEFAULT_URL, **kwargs)
