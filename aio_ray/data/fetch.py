"""Fetch Dukascopy hour files (HTTP with retries and a local cache, or a local mirror), on Ray.

Every hour comes back as an :class:`HourResult`; a problem with one hour never raises, it is
reported in the result so that an ingest can name every gap. The status of an hour means:

``"ok"``
    The file was found and decoded; ``table`` holds its ticks (canonical
    :data:`aio_ray.schema.TICK_SCHEMA`).
``"empty"``
    The file exists but has zero bytes: no ticks in that hour (weekends, holidays). Not an
    error; ``table`` is an empty tick table.
``"missing"``
    HTTP 404, or the file is absent from the mirror. Final: never retried.
``"failed"``
    Timeouts, 5xx/429 responses, connection errors, after all retries; or an unexpected
    HTTP status (other 4xx), which is not retried.
``"corrupt"``
    The bytes do not decode (truncated LZMA, decoded length not a multiple of the 20-byte
    record) or the body is shorter than its Content-Length, after all retries.

Sources, in order: with ``mirror`` set, files are read from that directory (Dukascopy's
layout, no HTTP at all, no cache). Otherwise the cache (if any) is consulted first: a cached
hour is never downloaded again. Then ``{base_url}/{hour_path}`` is requested with
``timeout_s`` per request and ``retries`` more attempts after the first, sleeping
``backoff_s * 2**k`` before retry ``k + 1``. Only bytes that decoded are cached (zero-byte
files included), written atomically (temporary file + ``os.replace``), so concurrent tasks
and interrupted runs never leave a half-written cache file.

Typical use (the ingest)::

    hours = hours_between(date(2019, 2, 4), date(2019, 2, 6))
    for day, results in by_day(fetch_hours_ray("EURUSD", hours, cfg=cfg, cache_dir=cache), hours):
        write(day, day_table(results))
    report = summarize(all_results)
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import pyarrow as pa

from aio_ray.data.config import DukascopyConfig
from aio_ray.data.dukascopy import decode_ticks, hour_path
from aio_ray.errors import CorruptFileError, SourceError
from aio_ray.schema import TICK_SCHEMA, empty_ticks

__all__ = [
    "PROBLEM_STATUSES",
    "STATUSES",
    "HourResult",
    "Status",
    "by_day",
    "day_table",
    "fetch_batch",
    "fetch_hour",
    "fetch_hours_local",
    "fetch_hours_ray",
    "hours_between",
    "plan_batches",
    "summarize",
]

log = logging.getLogger(__name__)

Status = Literal["ok", "empty", "missing", "failed", "corrupt"]
STATUSES: tuple[Status, ...] = ("ok", "empty", "missing", "failed", "corrupt")
PROBLEM_STATUSES: tuple[Status, ...] = ("missing", "failed", "corrupt")

_USER_AGENT = "aio-ray/0.1 (+dukascopy hour fetcher)"
_RETRY_STATUS = frozenset({408, 425, 429})  # plus every 5xx


@dataclass(frozen=True)
class HourResult:
    """The outcome of fetching one hour file.

    Attributes
    ----------
    symbol : str
        Instrument, upper case (``"EURUSD"``).
    hour : datetime
        Start of the hour, UTC (timezone-aware).
    status : {"ok", "empty", "missing", "failed", "corrupt"}
        See the module docstring.
    table : pyarrow.Table or None
        Canonical ticks for "ok", an empty tick table for "empty", None otherwise.
    error : str or None
        For "missing"/"failed"/"corrupt": what went wrong, naming the URL or file.
    attempts : int
        Reads or HTTP requests made: 0 for a cache hit, 1 for a mirror read.
    source : str
        Where the bytes came from (or were last looked for): URL, mirror or cache file.
    """

    symbol: str
    hour: dt.datetime
    status: Status
    table: pa.Table | None
    error: str | None
    attempts: int
    source: str = ""

    @property
    def path(self) -> str:
        """The hour's relative path in Dukascopy's layout (``EURUSD/2019/01/04/15h_ticks.bi5``)."""
        return hour_path(self.symbol, self.hour)

    @property
    def ticks(self) -> int:
        """Number of ticks (0 unless "ok")."""
        return 0 if self.table is None else self.table.num_rows


# --------------------------------------------------------------------------- hours


def hours_between(start: dt.date, end: dt.date) -> list[dt.datetime]:
    """Every UTC hour start from ``start`` 00:00 up to ``end`` 00:00 (exclusive).

    Parameters
    ----------
    start, end : date
        First day included, first day excluded. ``end <= start`` gives an empty list.
    """
    if isinstance(start, dt.datetime) or isinstance(end, dt.datetime):
        raise TypeError("hours_between takes dates (start, end), not datetimes")
    first = dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC)
    n = max(0, (end - start).days * 24)
    return [first + dt.timedelta(hours=i) for i in range(n)]


def _utc_hour(hour: dt.datetime) -> dt.datetime:
    if not isinstance(hour, dt.datetime):
        raise TypeError(f"hour must be a datetime, got {type(hour).__name__}")
    h = hour.replace(tzinfo=dt.UTC) if hour.tzinfo is None else hour.astimezone(dt.UTC)
    if (h.minute, h.second, h.microsecond) != (0, 0, 0):
        raise ValueError(f"hour must start on the hour (UTC), got {hour.isoformat()}")
    return h


def _check_symbol(symbol: str) -> str:
    if not (isinstance(symbol, str) and len(symbol) == 6 and symbol.isalpha()):
        raise ValueError(f"symbol must be six letters such as EURUSD, got {symbol!r}")
    return symbol.upper()


def _resolve_cache(cfg: DukascopyConfig, cache_dir: str | Path | None) -> Path | None:
    if cache_dir is not None:
        return Path(cache_dir)
    return cfg.cache_dir


# --------------------------------------------------------------------------- one hour


def _decoded(raw: bytes, hour: dt.datetime, symbol: str, name: str) -> tuple[Status, pa.Table]:
    table = decode_ticks(raw, hour, symbol, name)
    return ("ok" if raw else "empty"), table


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _from_mirror(symbol: str, hour: dt.datetime, mirror: Path) -> HourResult:
    file = mirror / hour_path(symbol, hour)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        return HourResult(symbol, hour, "missing", None, f"{file}: not in the mirror", 1, str(file))
    except OSError as exc:
        problem = f"{file}: cannot read ({exc})"
        return HourResult(symbol, hour, "failed", None, problem, 1, str(file))
    try:
        status, table = _decoded(raw, hour, symbol, str(file))
    except CorruptFileError as exc:
        return HourResult(symbol, hour, "corrupt", None, str(exc), 1, str(file))
    return HourResult(symbol, hour, status, table, None, 1, str(file))


def _from_cache(symbol: str, hour: dt.datetime, file: Path) -> HourResult | None:
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("%s: cannot read cached hour, downloading it again (%s)", file, exc)
        return None
    try:
        status, table = _decoded(raw, hour, symbol, str(file))
    except CorruptFileError as exc:
        # Only decodable bytes are ever cached, so this file was damaged afterwards.
        log.warning("%s; discarding the cached file and downloading it again", exc)
        try:
            file.unlink()
        except OSError:
            pass
        return None
    return HourResult(symbol, hour, status, table, None, 0, str(file))


class _Retryable(Exception):
    """One attempt failed in a way worth retrying; ``kind`` is the status if it stays so."""

    def __init__(self, kind: Status, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _get_once(client: httpx.Client, url: str, timeout_s: float) -> tuple[int, bytes]:
    """One GET: (HTTP status, full body). Raises _Retryable for transport or length problems."""
    t0 = time.monotonic()
    try:
        with client.stream("GET", url) as resp:
            if resp.status_code != 200:
                return resp.status_code, b""
            expected = resp.headers.get("content-length")
            chunks: list[bytes] = []
            try:
                for chunk in resp.iter_bytes():
                    chunks.append(chunk)
                    if time.monotonic() - t0 > timeout_s:
                        raise _Retryable(
                            "failed", f"{url}: response took longer than {timeout_s:g} s"
                        )
            except httpx.RemoteProtocolError as exc:
                got = resp.num_bytes_downloaded
                if expected is not None and expected.isdigit() and got < int(expected):
                    raise _Retryable(
                        "corrupt",
                        f"{url}: body shorter than Content-Length (got {got} of {expected} bytes)",
                    ) from exc
                raise _Retryable("failed", f"{url}: connection broke mid-body ({exc})") from exc
            body = b"".join(chunks)
            got = resp.num_bytes_downloaded
            if expected is not None and expected.isdigit() and got != int(expected):
                raise _Retryable(
                    "corrupt",
                    f"{url}: body length {got} differs from Content-Length {expected}",
                )
            return 200, body
    except httpx.TimeoutException as exc:
        raise _Retryable(
            "failed", f"{url}: timed out after {timeout_s:g} s ({type(exc).__name__})"
        ) from exc
    except httpx.HTTPError as exc:  # connection, protocol and content-decoding errors
        raise _Retryable("failed", f"{url}: {type(exc).__name__}: {exc}") from exc


def _from_http(
    symbol: str,
    hour: dt.datetime,
    cfg: DukascopyConfig,
    client: httpx.Client,
    cache_file: Path | None,
) -> HourResult:
    rel = hour_path(symbol, hour)
    url = f"{cfg.base_url.rstrip('/')}/{rel}"
    attempts = 0
    last: _Retryable | None = None
    for attempt in range(cfg.retries + 1):
        if attempt:
            time.sleep(cfg.backoff_s * 2 ** (attempt - 1))
        attempts += 1
        try:
            code, body = _get_once(client, url, cfg.timeout_s)
        except _Retryable as exc:
            last = exc
            continue
        if code == 404:
            problem = f"{url}: HTTP 404 (no such hour file)"
            return HourResult(symbol, hour, "missing", None, problem, attempts, url)
        if code != 200:
            if code >= 500 or code in _RETRY_STATUS:
                last = _Retryable("failed", f"{url}: HTTP {code}")
                continue
            problem = f"{url}: HTTP {code} (not retried)"
            return HourResult(symbol, hour, "failed", None, problem, attempts, url)
        try:
            status, table = _decoded(body, hour, symbol, url)
        except CorruptFileError as exc:
            last = _Retryable("corrupt", str(exc))
            continue
        if cache_file is not None:
            try:
                _write_atomic(cache_file, body)
            except OSError as exc:
                log.warning("%s: cannot write cache file (%s); the hour is fine", cache_file, exc)
        return HourResult(symbol, hour, status, table, None, attempts, url)
    assert last is not None
    return HourResult(
        symbol, hour, last.kind, None, f"{last} (after {attempts} attempt(s))", attempts, url
    )


def _client(cfg: DukascopyConfig) -> httpx.Client:
    return httpx.Client(
        timeout=httpx.Timeout(cfg.timeout_s),
        headers={"User-Agent": _USER_AGENT},
        follow_redirects=True,
    )


def fetch_hour(
    symbol: str,
    hour: dt.datetime,
    *,
    mirror: str | Path | None = None,
    cfg: DukascopyConfig = DukascopyConfig(),
    cache_dir: str | Path | None = None,
    client: httpx.Client | None = None,
) -> HourResult:
    """Get one hour of ticks from a mirror directory, the cache, or over HTTP.

    Parameters
    ----------
    symbol : str
        Six letters, e.g. ``"EURUSD"``.
    hour : datetime
        Start of the hour; naive is taken as UTC, aware is converted to UTC.
    mirror : path, optional
        Directory in Dukascopy's layout; when set, no HTTP request and no cache are used.
    cfg : DukascopyConfig
        ``base_url``, ``timeout_s`` (seconds per request), ``retries``, ``backoff_s``.
    cache_dir : path, optional
        Cache directory (Dukascopy's layout); None falls back to ``cfg.cache_dir``; both
        None: no cache.
    client : httpx.Client, optional
        Reused across calls by :func:`fetch_batch`; one is made (and closed) when None.

    Returns
    -------
    HourResult
        Never raises for a problem with the hour itself (see the module docstring).
    """
    symbol = _check_symbol(symbol)
    hour = _utc_hour(hour)
    if mirror is not None:
        return _from_mirror(symbol, hour, Path(mirror))
    cache = _resolve_cache(cfg, cache_dir)
    cache_file = None if cache is None else cache / hour_path(symbol, hour)
    if cache_file is not None:
        hit = _from_cache(symbol, hour, cache_file)
        if hit is not None:
            return hit
    if client is not None:
        return _from_http(symbol, hour, cfg, client, cache_file)
    with _client(cfg) as own:
        return _from_http(symbol, hour, cfg, own, cache_file)


# --------------------------------------------------------------------------- batches


def fetch_batch(
    symbol: str,
    hours: Sequence[dt.datetime],
    *,
    mirror: str | Path | None = None,
    cfg: DukascopyConfig = DukascopyConfig(),
    cache_dir: str | Path | None = None,
) -> list[HourResult]:
    """Fetch ``hours`` one after another with one HTTP client; results in the order given.

    Same parameters as :func:`fetch_hour`. This is the body of one Ray task.
    """
    if mirror is not None:
        return [fetch_hour(symbol, h, mirror=mirror, cfg=cfg) for h in hours]
    with _client(cfg) as client:
        return [fetch_hour(symbol, h, cfg=cfg, cache_dir=cache_dir, client=client) for h in hours]


def plan_batches(hours: Iterable[dt.datetime], hours_per_task: int) -> list[list[dt.datetime]]:
    """Sort and de-duplicate ``hours`` (UTC) and cut them into batches of at most
    ``hours_per_task``; a batch never spans two UTC days, so a day is complete as soon as
    its batches are."""
    if hours_per_task < 1:
        raise ValueError(f"hours_per_task must be >= 1, got {hours_per_task}")
    days: dict[dt.date, list[dt.datetime]] = defaultdict(list)
    for h in sorted({_utc_hour(h) for h in hours}):
        days[h.date()].append(h)
    batches: list[list[dt.datetime]] = []
    for day in sorted(days):
        hs = days[day]
        batches.extend(hs[i : i + hours_per_task] for i in range(0, len(hs), hours_per_task))
    return batches


def _check_mirror(mirror: str | Path | None) -> Path | None:
    if mirror is None:
        return None
    path = Path(mirror)
    if not path.is_dir():
        raise SourceError(str(path), "mirror directory does not exist")
    return path


def fetch_hours_local(
    symbol: str,
    hours: Iterable[dt.datetime],
    *,
    mirror: str | Path | None = None,
    cfg: DukascopyConfig = DukascopyConfig(),
    cache_dir: str | Path | None = None,
) -> Iterator[list[HourResult]]:
    """In-process twin of :func:`fetch_hours_ray`: yields the same batches, in time order.

    Raises SourceError if ``mirror`` is given but is not a directory; ValueError for a bad
    symbol or an hour that does not start on the hour.
    """
    symbol = _check_symbol(symbol)
    mirror_dir = _check_mirror(mirror)
    for batch in plan_batches(hours, cfg.hours_per_task):
        yield fetch_batch(symbol, batch, mirror=mirror_dir, cfg=cfg, cache_dir=cache_dir)


def fetch_hours_ray(
    symbol: str,
    hours: Iterable[dt.datetime],
    *,
    mirror: str | Path | None = None,
    cfg: DukascopyConfig = DukascopyConfig(),
    cache_dir: str | Path | None = None,
    num_cpus: float = 0.25,
    max_in_flight: int = 16,
) -> Iterator[list[HourResult]]:
    """Fetch ``hours`` as Ray tasks of ``cfg.hours_per_task`` hours; yield each batch's
    results as soon as its task finishes (completion order, not time order).

    Every requested hour (sorted, de-duplicated) is yielded exactly once. A batch never
    spans two UTC days (see :func:`plan_batches`; :func:`by_day` regroups by day). Tables
    travel through the object store. ``mirror`` and ``cache_dir`` must be visible from every
    worker (the same machine or a shared file system); a cache that is not shared is still
    correct, merely less effective.

    Parameters
    ----------
    num_cpus : float
        CPUs reserved per task (fetching is mostly waiting on the network).
    max_in_flight : int
        Tasks submitted but not yet consumed; bounds object-store use when the caller is
        slower than the fetch.

    If a task itself dies (worker crash after Ray's retries), its hours are reported as
    "failed" naming the error, never dropped. Ray must already be initialised or it is
    started with defaults by the first task.
    """
    import ray  # optional heavy dependency: Ray only for the parallel download (not the mirror)

    symbol = _check_symbol(symbol)
    mirror_dir = _check_mirror(mirror)
    if max_in_flight < 1:
        raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
    if num_cpus <= 0:
        raise ValueError(f"num_cpus must be > 0, got {num_cpus}")
    batches = plan_batches(hours, cfg.hours_per_task)
    remote: Any = ray.remote(fetch_batch).options(  # Ray's stubs type no keyword arguments
        num_cpus=num_cpus, max_retries=3, name="dukascopy_fetch"
    )
    pending: dict[Any, list[dt.datetime]] = {}
    todo = iter(batches)

    def submit() -> bool:
        batch = next(todo, None)
        if batch is None:
            return False
        ref = remote.remote(symbol, batch, mirror=mirror_dir, cfg=cfg, cache_dir=cache_dir)
        pending[ref] = batch
        return True

    while len(pending) < max_in_flight and submit():
        pass
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            batch = pending.pop(ref)
            try:
                results: list[HourResult] = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - a dead task must not hide its hours
                log.error("fetch task for %s..%s died: %s", batch[0], batch[-1], exc)
                why = f"fetch task died ({type(exc).__name__}: {exc})"
                results = [
                    HourResult(symbol, h, "failed", None, f"{hour_path(symbol, h)}: {why}", 0)
                    for h in batch
                ]
            submit()
            yield results
    finally:
        # The caller stopped early (break, error): do not leave tasks fetching for nobody.
        for ref in pending:
            ray.cancel(ref)


# --------------------------------------------------------------------------- after the fetch


def by_day(
    batches: Iterable[list[HourResult]], hours: Iterable[dt.datetime]
) -> Iterator[tuple[dt.date, list[HourResult]]]:
    """Regroup fetched batches by UTC day; yield ``(day, results sorted by hour)`` as soon as
    every requested hour of that day has arrived (so a day can be written right away).

    ``hours`` are the hours that were requested; results for other hours are ignored.
    """
    expected: dict[dt.date, set[dt.datetime]] = defaultdict(set)
    for h in hours:
        h = _utc_hour(h)
        expected[h.date()].add(h)
    got: dict[dt.date, dict[dt.datetime, HourResult]] = defaultdict(dict)
    for batch in batches:
        for r in batch:
            day = r.hour.date()
            if r.hour not in expected.get(day, ()):
                continue
            got[day][r.hour] = r
            if len(got[day]) == len(expected[day]):
                done = got.pop(day)
                del expected[day]
                yield day, [done[h] for h in sorted(done)]


def day_table(results: Iterable[HourResult]) -> pa.Table:
    """Concatenate the "ok" tables of ``results`` in hour order (canonical schema; an empty
    tick table when there are none). "missing"/"failed"/"corrupt" hours add nothing: report
    them with :func:`summarize`."""
    ordered = sorted(results, key=lambda r: r.hour)
    tables = [r.table for r in ordered if r.table is not None and r.table.num_rows]
    if not tables:
        return empty_ticks()
    return pa.concat_tables(tables).cast(TICK_SCHEMA)


def summarize(results: Iterable[HourResult]) -> dict[str, Any]:
    """Counts for the end-of-ingest report (JSON-serialisable).

    Returns
    -------
    dict
        ``hours`` (int), ``ticks`` (int), ``attempts`` (HTTP requests or reads),
        ``counts`` ({status: hours}, every status present), ``empty`` (paths of zero-byte
        hours) and ``problems`` (one entry per missing/failed/corrupt hour, in time order:
        ``{"path", "hour" (ISO, UTC), "status", "error"}``).
    """
    rs = sorted(results, key=lambda r: (r.hour, r.symbol))
    counts = {s: 0 for s in STATUSES}
    for r in rs:
        counts[r.status] += 1
    return {
        "hours": len(rs),
        "ticks": sum(r.ticks for r in rs),
        "attempts": sum(r.attempts for r in rs),
        "counts": counts,
        "empty": [r.path for r in rs if r.status == "empty"],
        "problems": [
            {"path": r.path, "hour": r.hour.isoformat(), "status": r.status, "error": r.error}
            for r in rs
            if r.status in PROBLEM_STATUSES
        ],
    }
