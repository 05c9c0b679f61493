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
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Self, TypeVar

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, Table, create_engine, delete, event, func, select, update
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
from aio_ray.library.models import (
    ALL_TABLES,
    METRIC_COLUMNS,
    SAMPLES,
    TRADE_FIELDS,
    TRIAL_STATUSES,
    CandidateRow,
    ControlEvent,
    FoldMetric,
    HoldoutMetric,
    PineVerification,
    RankedRecord,
    RankingRow,
    Run,
    RunRecord,
    Strategy,
    StrategyRecord,
    TradeRow,
    TrialResult,
    VerdictRow,
    canonical_json,
    check_text,
    field_of,
    metric_row,
    now_ms,
    run_record,
    strategy_id,
    strategy_record,
    table_of,
    to_plain,
    ts_ms,
)

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

DEFAULT_URL = "sqlite:///aio_library.db"
"""Used by :func:`open_library` when neither an argument nor ``AIO_LIBRARY_URL`` is given."""

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


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL must still be named, minus any secret
        if "@" in url and "://" in url:
            scheme, rest = url.split("://", 1)
            creds, host = rest.rsplit("@", 1)
            return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
        return url


# ----------------------------------------------------------------------------- the library


_PG_ADVISORY_KEY = 0x41494F_4C4942  # "AIO" "LIB": serializes concurrent create_all on PostgreSQL


def _new_id(result: Any) -> int:
    """The primary key an INSERT gave its row."""
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the database returned no key for the inserted row")
    return int(key[0])


class Library:
    """The strategy library at ``url``; tables are created on open.

    Parameters
    ----------
    url
        SQLAlchemy URL: ``sqlite:///path/to/library.db`` (the directory must exist) or
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

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        retries: int = 8,
        connect_timeout_s: float = 5.0,
        busy_timeout_s: float = 30.0,
    ) -> None:
        self._url = url
        self.safe_url = _safe_url(url)
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
        try:
            self.engine: Engine = self._make_engine(parsed)
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise LibraryUnavailableError(self.safe_url, f"cannot use this URL: {exc}") from None
        self.create_all()

    # pickling by URL lets a Library travel to Ray workers / spawned processes
    def __reduce__(self) -> tuple[Any, ...]:
        return (_reopen, (self._url, self._retries, self._connect_timeout_s, self._busy_timeout_s))

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

    # ------------------------------------------------------------------ runs

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

    # ------------------------------------------------------------------ strategies and trials

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

    # ------------------------------------------------------------------ rankings

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
            "verdict_json": json.dumps(to_plain(dict(verdict)), sort_keys=True,
                                       ensure_ascii=False, allow_nan=False),
            "created_ms": now_ms(),
        }
        self._tx(lambda c: self._upsert(c, VERDICTS, [row], ["run_id"]),
                 f"save verdict of run {run_id!r}")

    def verdict(self, run_id: str | None = None) -> dict[str, Any] | None:
        """The stored verdict of ``run_id`` (default: the newest judged run), or None."""
        rid = run_id if run_id is not None else self.latest_ranked_run()
        if rid is None:
            return None
        q = select(VERDICTS.c.verdict_json).where(VERDICTS.c.run_id == rid)
        got = self._tx(lambda c: c.execute(q).scalar(), f"read verdict of run {rid!r}")
        if got is None:
            return None
        out = json.loads(got)
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

    # ------------------------------------------------------------------ Pine verification

    def record_pine_verification(
        self,
        strategy_id: str,
        kind: str,
        *,
        parsed: bool,
        parity_passed: bool | None,
        first_diff_bar: int | None,
        report: Mapping[str, Any],
    ) -> int:
        """Store one check of a strategy's generated Pine script; returns the row id.

        ``kind`` is "strategy" or "indicator"; ``parity_passed`` None means parity was not
        run (syntax error or runtime failure); ``report`` is the full JSON-able report
        (non-finite floats are stored as null). Every check is kept; the latest is read by
        :meth:`pine_verification`.
        """
        check_text("strategy_id", strategy_id)
        if kind not in ("strategy", "indicator"):
            raise ValueError(f"kind must be 'strategy' or 'indicator', got {kind!r}")
        row = {
            "strategy_id": strategy_id,
            "kind": kind,
            "parsed": bool(parsed),
            "parity_passed": None if parity_passed is None else bool(parity_passed),
            "first_diff_bar": None if first_diff_bar is None else int(first_diff_bar),
            "report_json": canonical_json(_finite_json(report)),
            "checked_ms": now_ms(),
        }
        return int(
            self._tx(
                lambda c: _new_id(c.execute(PINE.insert().values(**row))),
                f"record Pine verification of {strategy_id}",
            )
        )

    def pine_verification(self, strategy_id: str, kind: str | None = None) -> dict[str, Any] | None:
        """The latest Pine check of a strategy (optionally of one ``kind``), or None.

        Keys: ``id, strategy_id, kind, parsed, parity_passed, first_diff_bar, checked_ms``
        and ``report`` (decoded).
        """
        q = select(PINE).where(PINE.c.strategy_id == strategy_id)
        if kind is not None:
            q = q.where(PINE.c.kind == kind)
        q = q.order_by(PINE.c.checked_ms.desc(), PINE.c.id.desc()).limit(1)
        row = self._tx(lambda c: c.execute(q).first(), "read Pine verification")
        if row is None:
            return None
        out = dict(row._mapping)
        out["report"] = json.loads(out.pop("report_json"))
        return out

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

    # ------------------------------------------------------------------ live control

    def record_control(
        self, strategy_id: str | None, action: str, payload: Mapping[str, Any], who: str
    ) -> int:
        """Store one operator action (``pause``, ``resume``, ``params``, ``config_reload``, ...)
        on a strategy (None: the whole app) with who did it; the time is now (UTC ms).

        Returns the event id; ids grow, so the newest event has the largest id.
        """
        check_text("action", action)
        check_text("who", who)
        if strategy_id is not None:
            check_text("strategy_id", strategy_id)
        row = {
            "strategy_id": strategy_id,
            "action": action,
            "payload_json": canonical_json(_finite_json(dict(payload))),
            "who": who,
            "at_ms": now_ms(),
        }
        return int(
            self._tx(
                lambda c: _new_id(c.execute(CONTROL.insert().values(**row))),
                f"record control {action!r} of {strategy_id}",
            )
        )

    def control_events(
        self, strategy_id: str | None = None, *, limit: int = 100, after_id: int = 0
    ) -> list[dict[str, Any]]:
        """Control events, newest first (optionally of one strategy, only ids > ``after_id``).

        Keys: ``id, strategy_id, action, payload`` (decoded), ``who, at_ms`` (UTC ms).
        """
        q = select(CONTROL).where(CONTROL.c.id > after_id)
        if strategy_id is not None:
            q = q.where(CONTROL.c.strategy_id == strategy_id)
        q = q.order_by(CONTROL.c.id.desc()).limit(max(1, int(limit)))
        out = []
        for r in self._tx(lambda c: c.execute(q).all(), "read control events"):
            d = dict(r._mapping)
            d["payload"] = json.loads(d.pop("payload_json"))
            out.append(d)
        return out

    def control_state(self) -> dict[str, dict[str, Any]]:
        """The live state of every strategy that has control events, replayed in order.

        Per strategy id: ``paused`` (bool: the latest pause/resume was a pause), ``params``
        (the latest ``params`` event's ``payload["params"]``, None when never overridden),
        ``updated_ms`` (UTC ms) and ``updated_by`` of its latest event.
        """
        q = (
            select(
                CONTROL.c.strategy_id,
                CONTROL.c.action,
                CONTROL.c.payload_json,
                CONTROL.c.who,
                CONTROL.c.at_ms,
            )
            .where(CONTROL.c.strategy_id.is_not(None))
            .where(CONTROL.c.action.in_(("pause", "resume", "params")))
            .order_by(CONTROL.c.id)
        )
        state: dict[str, dict[str, Any]] = {}
        for sid, action, payload, who, at in self._tx(lambda c: c.execute(q).all(), "read state"):
            s = state.setdefault(sid, {"paused": False, "params": None})
            if action == "params":
                s["params"] = json.loads(payload).get("params")
            else:
                s["paused"] = action == "pause"
            s["updated_ms"], s["updated_by"] = at, who
        return state

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
    import os

    return Library(url or os.environ.get("AIO_LIBRARY_URL") or DEFAULT_URL, **kwargs)
