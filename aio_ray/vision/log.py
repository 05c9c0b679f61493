"""The analysis log: every AnalysisRecord, buffered and written to Parquet (zstd).

Stable public API::

    AnalysisLog(path_dir, *, flush_rows=1000, flush_bytes=4 MiB)   # .append / .extend / .flush / .close
    read_log(path_dir) -> pyarrow.Table                             # LOG_SCHEMA, oldest file first
    read_log_tolerant(path_dir, files=None) -> (pyarrow.Table, [problems])   # skips bad files
    log_files(path_dir) -> [Path]                                   # the log's files, by name
    compact_log(path_dir, *, max_rows=None, max_age_ms=None) -> CompactReport
    LOG_SCHEMA                                                      # RECORD_SCHEMA + logged_at

Each flush writes one file ``analyses-<UTC time, µs>-<pid>-<seq>-<token>.parquet`` through a
hidden temporary file and an atomic rename, so a reader never sees half a file. The buffer
is flushed when it holds ``flush_rows`` records or about ``flush_bytes`` bytes of payload,
on :meth:`AnalysisLog.close` / context exit, when the log object is garbage-collected, and
at interpreter exit (a :func:`weakref.finalize` hook) for a log that was never closed. Only
a hard kill (SIGKILL, ``os._exit``) loses the unflushed buffer.

:func:`compact_log` merges every file of the log into one (``analyses-<time>-compact-...``),
newest window first, keeping at most ``max_rows`` records and none logged more than
``max_age_ms`` ago; the merged file is renamed into place before the old ones are removed, so
a reader never misses a record (it may see one twice for an instant, between the rename and
the removals; a reader that wants exactly-once drops duplicate rows). Compactions of one log
directory are serialized by a lock file (``.compact.lock``, same host); a file it cannot read
is moved to ``_unreadable/`` and reported.
"""

from __future__ import annotations

import fcntl
import os
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple, Self

import pyarrow as pa
import pyarrow.compute
import pyarrow.parquet as pq

from aio_ray.errors import AioError
from aio_ray.schema import TS_TYPE
from aio_ray.vision.analysis import RECORD_SCHEMA, AnalysisRecord, records_to_table

__all__ = [
    "LOG_SCHEMA",
    "AnalysisLog",
    "CompactReport",
    "LogError",
    "compact_log",
    "log_files",
    "read_log",
    "read_log_tolerant",
]

LOG_SCHEMA = RECORD_SCHEMA.append(pa.field("logged_at", TS_TYPE, nullable=False))
"""Columns of the log: the record columns plus when the record was logged (UTC ms)."""

_PREFIX = "analyses-"
_FIXED_BYTES = 96  # ids, timestamps, floats of one row, roughly


class LogError(AioError):
    """The analysis log cannot be written or read (names the directory or file)."""


def _record_bytes(rec: AnalysisRecord) -> int:
    n = _FIXED_BYTES + len(rec.instrument) + len(rec.timeframe) + len(rec.model)
    n += len(rec.raw_text or "") + len(rec.error or "")
    if rec.analysis is not None:
        a = rec.analysis
        n += len(a.rationale) + sum(len(p) for p in a.patterns) + 8 * len(a.levels)
    return n


class _LogState:
    """Everything the exit hook needs, without a reference to the AnalysisLog itself."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.lock = threading.Lock()
        self.records: list[AnalysisRecord] = []
        self.logged_at: list[int] = []
        self.bytes = 0
        self.seq = 0
        self.files: list[Path] = []
        self.token = uuid.uuid4().hex[:8]

    def flush(self) -> Path | None:
        with self.lock:
            if not self.records:
                return None
            table = records_to_table(self.records).append_column(
                LOG_SCHEMA.field("logged_at"),
                pa.array(self.logged_at, type=pa.int64()).cast(TS_TYPE),
            )
            ns = time.time_ns()
            stamp = (
                time.strftime("%Y%m%dT%H%M%S", time.gmtime(ns // 10**9))
                + f"{ns % 10**9 // 1000:06d}"
            )
            name = f"{_PREFIX}{stamp}-{os.getpid()}-{self.seq:06d}-{self.token}.parquet"
            final = self.directory / name
            tmp = self.directory / f".{name}.tmp"
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                pq.write_table(table, tmp, compression="zstd")
                os.replace(tmp, final)
            except OSError as exc:
                raise LogError(f"{final}: cannot write the analysis log: {exc}") from exc
            self.seq += 1
            self.records, self.logged_at, self.bytes = [], [], 0
            self.files.append(final)
            return final


def _flush_quietly(state: _LogState) -> None:
    try:
        state.flush()
    except Exception as exc:  # noqa: BLE001 - at exit there is nobody left to raise to
        print(f"aio-ray: analysis log not flushed: {exc}", file=sys.stderr)


class AnalysisLog:
    """Buffered Parquet writer of :class:`AnalysisRecord` rows (one file per flush).

    Parameters
    ----------
    path_dir : directory of the log (created on the first flush).
    flush_rows : flush when this many records are buffered (>= 1).
    flush_bytes : flush when the buffered payload (texts, ids, levels) reaches about this
        many bytes (>= 1).
    """

    def __init__(
        self, path_dir: str | Path, *, flush_rows: int = 1000, flush_bytes: int = 4 << 20
    ) -> None:
        if flush_rows < 1 or flush_bytes < 1:
            raise LogError(
                f"{path_dir}: flush_rows and flush_bytes must be >= 1, got {flush_rows}, {flush_bytes}"
            )
        self.path = Path(path_dir)
        if self.path.exists() and not self.path.is_dir():
            raise LogError(f"{self.path}: the analysis log path exists and is not a directory")
        self.flush_rows = flush_rows
        self.flush_bytes = flush_bytes
        self._state = _LogState(self.path)
        self._closed = False
        self._finalizer = weakref.finalize(self, _flush_quietly, self._state)

    @property
    def pending(self) -> int:
        """Records buffered, not yet written."""
        return len(self._state.records)

    @property
    def files(self) -> list[Path]:
        """Files this log has written, in order."""
        return list(self._state.files)

    def append(self, record: AnalysisRecord) -> None:
        """Buffer one record (flushes when a threshold is reached)."""
        self.extend([record])

    def extend(self, records: Iterable[AnalysisRecord]) -> None:
        """Buffer records (flushes whenever a threshold is reached)."""
        if self._closed:
            raise LogError(f"{self.path}: the analysis log is closed")
        st = self._state
        for rec in records:
            if not isinstance(rec, AnalysisRecord):
                raise LogError(
                    f"{self.path}: can only log AnalysisRecord, got {type(rec).__name__}"
                )
            with st.lock:
                st.records.append(rec)
                st.logged_at.append(time.time_ns() // 1_000_000)
                st.bytes += _record_bytes(rec)
                full = len(st.records) >= self.flush_rows or st.bytes >= self.flush_bytes
            if full:
                st.flush()

    def flush(self) -> Path | None:
        """Write the buffer now; the new file's path, or None when nothing was buffered."""
        return self._state.flush()

    def close(self) -> None:
        """Flush and stop accepting records (idempotent)."""
        if self._closed:
            return
        self._state.flush()
        self._closed = True
        self._finalizer.detach()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def log_files(path_dir: str | Path) -> list[Path]:
    """The log's files, oldest name first (no temporaries; empty for a missing directory)."""
    root = Path(path_dir)
    return sorted(root.glob(f"{_PREFIX}*.parquet")) if root.is_dir() else []


def _read_file(f: Path) -> pa.Table:
    try:
        t = pq.read_table(f)
    except (OSError, pa.ArrowInvalid) as exc:
        raise LogError(f"{f}: cannot read analysis log file: {exc}") from exc
    missing = [c for c in LOG_SCHEMA.names if c not in t.column_names]
    if missing:
        raise LogError(f"{f}: not an analysis log file (missing {missing})")
    try:
        return t.select(LOG_SCHEMA.names).cast(LOG_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        raise LogError(f"{f}: columns of the wrong type: {exc}") from exc


def read_log_tolerant(
    path_dir: str | Path, files: Iterable[Path] | None = None
) -> tuple[pa.Table, list[str]]:
    """Like :func:`read_log`, but a file that cannot be read is skipped and reported.

    Returns the records of the readable files (``files``: only those, default all) and one
    problem message per skipped file (it names the file); a file that vanished between the
    listing and the read (a compaction removed it) is skipped silently.
    """
    tables, problems = [], []
    for f in log_files(path_dir) if files is None else files:
        if not f.exists():
            continue
        try:
            tables.append(_read_file(f))
        except LogError as exc:
            if f.exists():
                problems.append(str(exc))
    return (pa.concat_tables(tables) if tables else LOG_SCHEMA.empty_table()), problems


class CompactReport(NamedTuple):
    """What :func:`compact_log` did: files merged, rows kept, rows dropped (age or count),
    files skipped as unreadable (moved to ``_unreadable/``, named in ``problems``), the new
    file."""

    merged: int
    kept: int
    dropped: int
    problems: list[str]
    path: Path | None


def compact_log(
    path_dir: str | Path,
    *,
    max_rows: int | None = None,
    max_age_ms: int | None = None,
    now_ms: int | None = None,
) -> CompactReport:
    """Merge the log's files into one, newest window first, bounded by count and age.

    Parameters
    ----------
    max_rows : keep at most this many records (the newest windows, then the newest
        logged); None: no bound.
    max_age_ms : drop records logged more than this many ms before ``now_ms``; None: none.
    now_ms : the present, UTC ms (default: the clock).

    Unreadable files are moved to ``_unreadable/`` inside the log and reported (their
    messages in ``problems``). Nothing else happens (``path`` None) when there
    is at most one file and no bound drops a row.
    """
    root = Path(path_dir)
    if not root.is_dir():
        return CompactReport(0, 0, 0, [], None)
    with open(root / ".compact.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            files = log_files(root)
            good, problems, tables = [], [], []
            for f in files:
                try:
                    tables.append(_read_file(f))
                    good.append(f)
                except LogError as exc:  # set aside, so it is reported once, not at every read
                    problems.append(str(exc))
                    aside = root / "_unreadable"
                    try:
                        aside.mkdir(exist_ok=True)
                        os.replace(f, aside / f.name)
                    except OSError:
                        pass
            if not tables:
                return CompactReport(0, 0, 0, problems, None)
            table = pa.concat_tables(tables)
            n = table.num_rows
            if max_age_ms is not None:
                now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
                cut = pa.scalar(now - max_age_ms, pa.int64()).cast(TS_TYPE)
                table = table.filter(pa.compute.greater_equal(table["logged_at"], cut))
            order = pa.compute.sort_indices(
                table, sort_keys=[("window_end", "descending"), ("logged_at", "descending")]
            )
            table = table.take(order)
            if max_rows is not None:
                table = table.slice(0, max_rows)
            if len(good) <= 1 and table.num_rows == n:
                return CompactReport(len(good), n, 0, problems, None)
            ns = time.time_ns()
            stamp = (
                time.strftime("%Y%m%dT%H%M%S", time.gmtime(ns // 10**9))
                + f"{ns % 10**9 // 1000:06d}"
            )
            name = f"{_PREFIX}{stamp}-compact-{os.getpid()}-{uuid.uuid4().hex[:8]}.parquet"
            final, tmp = root / name, root / f".{name}.tmp"
            try:
                pq.write_table(table, tmp, compression="zstd", row_group_size=4096)
                os.replace(tmp, final)
                for f in good:
                    f.unlink(missing_ok=True)
            except OSError as exc:
                raise LogError(f"{final}: cannot compact the analysis log: {exc}") from exc
            return CompactReport(len(good), table.num_rows, n - table.num_rows, problems, final)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_log(path_dir: str | Path) -> pa.Table:
    """All records of a log directory, oldest file first (empty table if there are none).

    Raises
    ------
    LogError
        a log file cannot be read or lacks the log's columns (names the file).
    """
    tables = [_read_file(f) for f in log_files(path_dir)]
    if not tables:
        return LOG_SCHEMA.empty_table()
    return pa.concat_tables(tables)
