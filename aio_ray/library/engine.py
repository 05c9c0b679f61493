"""The library's database plumbing: URL checks, engine, schema, transactions and upserts.

:class:`LibraryBase` opens the engine (SQLite in WAL mode with ``BEGIN IMMEDIATE`` and a busy
timeout, or PostgreSQL with pre-ping and a connect timeout), creates the tables and runs every
statement through :meth:`LibraryBase._tx`, which retries transient failures and turns driver
errors into :class:`LibraryError`. The per-job mixins (:mod:`~aio_ray.library.runs`,
:mod:`~aio_ray.library.results`, :mod:`~aio_ray.library.rankings`,
:mod:`~aio_ray.library.pine`, :mod:`~aio_ray.library.control`) build on it, and
:class:`aio_ray.library.repo.Library` assembles them.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, Self, TypeVar

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
)
from sqlmodel import SQLModel

from aio_ray.errors import AioError
from aio_ray.library.config import DEFAULT_URL, ensure_sqlite_dir
from aio_ray.library.models import (
    ALL_TABLES,
    CandidateRow,
    ControlEvent,
    FoldMetric,
    HoldoutMetric,
    PineVerification,
    RankingRow,
    Run,
    Strategy,
    TradeRow,
    TrialResult,
    VerdictRow,
    table_of,
    to_plain,
)

__all__ = [
    "CANDIDATES",
    "CONTROL",
    "FOLDS",
    "HOLDOUT",
    "PINE",
    "RANKINGS",
    "RUNS",
    "STRATEGIES",
    "TRADES",
    "TRIALS",
    "VERDICTS",
    "LibraryBase",
    "LibraryError",
    "LibraryUnavailableError",
    "redact_url",
]

RUNS, STRATEGIES, TRIALS, FOLDS, HOLDOUT, TRADES, RANKINGS, PINE = (
    table_of(m)
    for m in (
        Run,
        Strategy,
        TrialResult,
        FoldMetric,
        HoldoutMetric,
        TradeRow,
        RankingRow,
        PineVerification,
    )
)

CONTROL = table_of(ControlEvent)
CANDIDATES = table_of(CandidateRow)
VERDICTS = table_of(VerdictRow)

_T = TypeVar("_T")


class LibraryError(AioError):
    """A library operation failed. ``url`` is the database URL with the password hidden."""

    def __init__(self, url: str, problem: str) -> None:
        super().__init__(f"library {url}: {problem}")
        self.url = url
        self.problem = problem


class LibraryUnavailableError(LibraryError):
    """The database URL is malformed, its driver is missing, or the server/file is unreachable."""


# ----------------------------------------------------------------------------- pure helpers


def redact_url(url: str) -> str:
    """``url`` with its password hidden (``postgresql://user:***@host/db``), for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL must still be named, minus any secret
        if "@" in url and "://" in url:
            scheme, rest = url.split("://", 1)
            creds, host = rest.rsplit("@", 1)
            return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
        return url


_PG_ADVISORY_KEY = 0x41494F_4C4942  # "AIO" "LIB": serializes concurrent create_all on PostgreSQL


def _new_id(result: Any) -> int:
    """The primary key an INSERT gave its row."""
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the database returned no key for the inserted row")
    return int(key[0])


def _finite_json(value: Any) -> Any:
    """``value`` as plain JSON types with NaN/inf floats replaced by None."""
    v = to_plain(value)
    if isinstance(v, dict):
        return {k: _finite_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_finite_json(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


# ----------------------------------------------------------------------------- the base


class LibraryBase:
    """Engine, schema and transactions of the library at ``url`` (see
    :class:`aio_ray.library.repo.Library` for the parameters)."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        retries: int = 8,
        connect_timeout_s: float = 5.0,
        busy_timeout_s: float = 30.0,
    ) -> None:
        self._url = url
        self.safe_url = redact_url(url)
        self._retries = retries
        self._connect_timeout_s = connect_timeout_s
        self._busy_timeout_s = busy_timeout_s
        try:
            parsed: URL = make_url(url)
        except ArgumentError as exc:
            raise LibraryUnavailableError(self.safe_url, f"malformed database URL: {exc}") from None
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise LibraryUnavailableError(
                self.safe_url, f"unsupported database {self.dialect!r}; use sqlite or postgresql"
            )
        if self.dialect == "sqlite":
            try:
                ensure_sqlite_dir(url)
            except OSError as exc:
                raise LibraryUnavailableError(
                    self.safe_url, f"cannot create the database's folder: {exc}"
                ) from None
        try:
            self.engine: Engine = self._make_engine(parsed)
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise LibraryUnavailableError(self.safe_url, f"cannot use this URL: {exc}") from None
        self.create_all()

    def __repr__(self) -> str:
        return f"Library({self.safe_url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def _make_engine(self, parsed: URL) -> Engine:
        if self.dialect == "sqlite":
            busy_ms = max(0, int(self._busy_timeout_s * 1000))
            engine = create_engine(parsed, connect_args={"timeout": busy_ms / 1000})

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
                cur = dbapi_conn.cursor()
                cur.execute(f"PRAGMA busy_timeout = {busy_ms:d}")
                cur.execute("PRAGMA journal_mode = WAL")
                cur.execute("PRAGMA synchronous = NORMAL")
                cur.execute("PRAGMA foreign_keys = ON")
                cur.close()

            @event.listens_for(engine, "begin")
            def _on_begin(conn: Connection) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

            return engine
        return create_engine(
            parsed,
            pool_pre_ping=True,
            connect_args={"connect_timeout": max(1, math.ceil(self._connect_timeout_s))},
        )

    # ------------------------------------------------------------------ transactions

    def _transient(self, exc: DBAPIError) -> bool:
        if self.dialect == "sqlite":
            msg = str(exc.orig).lower()
            return "locked" in msg or "busy" in msg
        state = getattr(exc.orig, "sqlstate", None) or ""
        return (
            state in ("40001", "40P01")
            or state.startswith("08")
            or bool(exc.connection_invalidated)
        )

    def _tx(self, fn: Callable[[Connection], _T], what: str) -> _T:
        """Run ``fn`` in one transaction, retrying transient failures; errors -> LibraryError."""
        delay = 0.02
        for attempt in range(self._retries + 1):
            try:
                with self.engine.begin() as conn:
                    return fn(conn)
            except IntegrityError as exc:
                raise LibraryError(
                    self.safe_url, f"{what}: integrity violation: {exc.orig}"
                ) from None
            except DBAPIError as exc:
                if attempt < self._retries and self._transient(exc):
                    time.sleep(delay * (1 + random.random()))
                    delay = min(delay * 2, 1.0)
                    continue
                if isinstance(exc, OperationalError):
                    raise LibraryUnavailableError(self.safe_url, f"{what}: {exc.orig}") from None
                raise LibraryError(self.safe_url, f"{what}: {exc.orig}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _insert(self, table: Table) -> Any:
        """The dialect's INSERT (both offer ``on_conflict_do_update/nothing`` and ``excluded``)."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _upsert(
        self,
        conn: Connection,
        table: Table,
        rows: list[dict[str, Any]],
        keys: Sequence[str],
        *,
        update_cols: Sequence[str] | None = None,
    ) -> None:
        """INSERT ... ON CONFLICT (keys) DO UPDATE (or DO NOTHING when update_cols == ())."""
        if not rows:
            return
        rows = sorted(rows, key=lambda r: tuple(r[k] for k in keys))  # fixed lock order
        ins = self._insert(table)
        cols = [c for c in rows[0] if c not in keys] if update_cols is None else list(update_cols)
        if cols:
            stmt = ins.on_conflict_do_update(
                index_elements=list(keys), set_={c: ins.excluded[c] for c in cols}
            )
        else:
            stmt = ins.on_conflict_do_nothing(index_elements=list(keys))
        conn.execute(stmt, rows)

    def create_all(self) -> None:
        """Create the library's tables and indexes that do not exist yet (safe concurrently)."""
        tables = [table_of(m) for m in ALL_TABLES]

        def run(conn: Connection) -> None:
            if self.dialect == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_ADVISORY_KEY})")
            SQLModel.metadata.create_all(conn, tables=tables)

        self._tx(run, "open")
