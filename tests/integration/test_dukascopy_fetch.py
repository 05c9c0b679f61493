"""Fetching Dukascopy hours from a real HTTP server on 127.0.0.1 that serves the real files,
with failures injected per path; the cache, mirror mode, and the Ray edge."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pytest

from aio_ray.config import DukascopyConfig
from aio_ray.data.dukascopy import decode_ticks, hour_path
from aio_ray.data.fetch import (
    HourResult,
    by_day,
    day_table,
    fetch_batch,
    fetch_hour,
    fetch_hours_local,
    fetch_hours_ray,
    hours_between,
    plan_batches,
    summarize,
)
from aio_ray.errors import SourceError
from aio_ray.schema import TICK_SCHEMA

pytestmark = pytest.mark.shared

UTC = dt.UTC
MON = dt.date(2019, 2, 4)
TUE = dt.date(2019, 2, 5)
WED = dt.date(2019, 2, 6)  # not in the folder: every hour is a 404
PREFIX = "/datafeed/"


def _hour(day: dt.date, h: int) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, h, tzinfo=UTC)


class FakeDukascopy(ThreadingHTTPServer):
    """Serves ``root`` under ``/datafeed/``; ``rules[path]`` lists the actions of the next
    requests for that path (consumed one per request; then the file is served normally).

    Actions: ``"500"``/``"503"``/``"403"``/``"404"`` (that status), ``"short_body"`` (full
    Content-Length, half the bytes, then close), ``"cut_lzma"`` (half the bytes with a
    matching Content-Length), ``"empty"`` (zero bytes), ``"slow"`` (no answer until released),
    ``"trickle"`` (the file in 1 KiB pieces, 0.1 s apart).
    """

    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.rules: dict[str, list[str]] = {}
        self.requests: list[str] = []
        self.lock = threading.Lock()
        self.release = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{PREFIX.rstrip('/')}"

    def next_action(self, path: str) -> str:
        with self.lock:
            self.requests.append(path)
            queue = self.rules.get(path)
            return queue.pop(0) if queue else "serve"

    def count(self, path: str | None = None) -> int:
        with self.lock:
            return len(self.requests) if path is None else self.requests.count(path)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeDukascopy

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def _send(self, code: int, body: bytes, length: int | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        try:
            self._get()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _get(self) -> None:
        path = self.path.removeprefix(PREFIX)
        action = self.server.next_action(path)
        file = self.server.root / path
        if action in ("500", "503", "403", "404"):
            self._send(int(action), b"error page")
            return
        if action == "slow":
            self.server.release.wait(5.0)
            self.close_connection = True
            self._send(503, b"too late")
            return
        if not file.is_file():
            self._send(404, b"not found")
            return
        raw = file.read_bytes()
        if action == "empty":
            self._send(200, b"")
        elif action == "cut_lzma":
            self._send(200, raw[: len(raw) // 2])
        elif action == "trickle":
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            for i in range(0, len(raw), 1024):
                self.wfile.write(raw[i : i + 1024])
                self.wfile.flush()
                if self.server.release.wait(0.1):
                    return
        elif action == "short_body":
            self.close_connection = True
            self._send(200, raw[: len(raw) // 2], length=len(raw))
        else:
            self._send(200, raw)


@pytest.fixture
def server(dukascopy_dir: Path) -> Iterator[FakeDukascopy]:
    srv = FakeDukascopy(dukascopy_dir)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def cfg(server: FakeDukascopy) -> DukascopyConfig:
    return DukascopyConfig(base_url=server.base_url, timeout_s=5.0, retries=2, backoff_s=0.01)


def _mirror_table(root: Path, hour: dt.datetime) -> pa.Table:
    return decode_ticks((root / hour_path("EURUSD", hour)).read_bytes(), hour, "EURUSD")


# ----------------------------------------------------------------------------- hours, batches


def test_hours_between_is_end_exclusive_utc() -> None:
    hours = hours_between(MON, WED)
    assert len(hours) == 48
    assert hours[0] == _hour(MON, 0) and hours[-1] == _hour(TUE, 23)
    assert all(h.tzinfo is not None and h.utcoffset() == dt.timedelta(0) for h in hours)
    assert hours_between(MON, MON) == [] and hours_between(TUE, MON) == []
    with pytest.raises(TypeError, match="dates"):
        hours_between(_hour(MON, 0), WED)  # type: ignore[arg-type]


def test_batches_never_span_two_days_and_dedupe() -> None:
    hours = [_hour(MON, h) for h in range(20, 24)] + [_hour(TUE, h) for h in range(3)]
    batches = plan_batches(hours + hours[:2], hours_per_task=24)
    assert batches == [hours[:4], hours[4:]]
    small = plan_batches(hours_between(MON, TUE), hours_per_task=5)
    assert [len(b) for b in small] == [5, 5, 5, 5, 4]
    with pytest.raises(ValueError, match="on the hour"):
        plan_batches([dt.datetime(2019, 2, 4, 1, 30, tzinfo=UTC)], 24)


# ----------------------------------------------------------------------------- HTTP failures


def test_500_then_success_is_retried_once(
    server: FakeDukascopy, cfg: DukascopyConfig, dukascopy_dir: Path
) -> None:
    hour = _hour(MON, 15)
    path = hour_path("EURUSD", hour)
    server.rules[path] = ["500"]
    r = fetch_hour("EURUSD", hour, cfg=cfg)
    assert (r.status, r.attempts, r.error) == ("ok", 2, None)
    assert server.count(path) == 2
    assert r.table is not None and r.table.num_rows == 11_063
    assert r.table.equals(_mirror_table(dukascopy_dir, hour))
    assert r.source == f"{server.base_url}/{path}"


def test_404_is_missing_by_name_and_not_retried(
    server: FakeDukascopy, cfg: DukascopyConfig, tmp_path: Path
) -> None:
    hour = _hour(WED, 7)
    r = fetch_hour("EURUSD", hour, cfg=cfg, cache_dir=tmp_path)
    assert (r.status, r.attempts, r.table) == ("missing", 1, None)
    assert r.error is not None and "EURUSD/2019/01/06/07h_ticks.bi5" in r.error and "404" in r.error
    assert server.count() == 1
    assert not (tmp_path / r.path).exists()


@pytest.mark.parametrize(
    ("action", "says"), [("short_body", "Content-Length"), ("cut_lzma", "LZMA")]
)
def test_truncated_body_is_corrupt_after_retries(
    server: FakeDukascopy, cfg: DukascopyConfig, tmp_path: Path, action: str, says: str
) -> None:
    hour = _hour(MON, 9)
    path = hour_path("EURUSD", hour)
    server.rules[path] = [action] * 10
    r = fetch_hour("EURUSD", hour, cfg=cfg, cache_dir=tmp_path)
    assert (r.status, r.attempts, r.table) == ("corrupt", cfg.retries + 1, None)
    assert r.error is not None and says in r.error and path in r.error
    assert server.count(path) == cfg.retries + 1
    assert not (tmp_path / path).exists(), "undecodable bytes must never be cached"


def test_corrupt_once_then_good_recovers(
    server: FakeDukascopy, cfg: DukascopyConfig, dukascopy_dir: Path
) -> None:
    hour = _hour(MON, 10)
    server.rules[hour_path("EURUSD", hour)] = ["short_body"]
    r = fetch_hour("EURUSD", hour, cfg=cfg)
    assert (r.status, r.attempts) == ("ok", 2)
    assert r.table is not None and r.table.equals(_mirror_table(dukascopy_dir, hour))


def test_zero_byte_hour_is_empty_and_cached(
    server: FakeDukascopy, cfg: DukascopyConfig, tmp_path: Path
) -> None:
    hour = _hour(MON, 3)
    path = hour_path("EURUSD", hour)
    server.rules[path] = ["empty"]
    r = fetch_hour("EURUSD", hour, cfg=cfg, cache_dir=tmp_path)
    assert (r.status, r.error, r.attempts) == ("empty", None, 1)
    assert r.table is not None and r.table.num_rows == 0 and r.table.schema == TICK_SCHEMA
    cached = tmp_path / path
    assert cached.is_file() and cached.stat().st_size == 0
    again = fetch_hour("EURUSD", hour, cfg=cfg, cache_dir=tmp_path)
    assert (again.status, again.attempts) == ("empty", 0)
    assert server.count(path) == 1


def test_slow_response_fails_after_retries(server: FakeDukascopy) -> None:
    cfg = DukascopyConfig(base_url=server.base_url, timeout_s=0.2, retries=1, backoff_s=0.01)
    hour = _hour(MON, 11)
    path = hour_path("EURUSD", hour)
    server.rules[path] = ["slow"] * 5
    r = fetch_hour("EURUSD", hour, cfg=cfg)
    assert (r.status, r.attempts, r.table) == ("failed", 2, None)
    assert r.error is not None and "timed out" in r.error and path in r.error
    assert server.count(path) == 2


def test_trickling_body_past_the_request_timeout_fails(server: FakeDukascopy) -> None:
    # Every read returns within timeout_s, but the whole response takes longer than it.
    cfg = DukascopyConfig(base_url=server.base_url, timeout_s=0.3, retries=0, backoff_s=0.01)
    hour = _hour(MON, 22)
    server.rules[hour_path("EURUSD", hour)] = ["trickle"]
    r = fetch_hour("EURUSD", hour, cfg=cfg)
    assert (r.status, r.attempts) == ("failed", 1)
    assert r.error is not None and "longer than 0.3 s" in r.error


def test_5xx_forever_fails_and_other_4xx_is_not_retried(
    server: FakeDukascopy, cfg: DukascopyConfig
) -> None:
    h503, h403 = _hour(MON, 12), _hour(MON, 13)
    server.rules[hour_path("EURUSD", h503)] = ["503"] * 10
    server.rules[hour_path("EURUSD", h403)] = ["403"] * 10
    r = fetch_hour("EURUSD", h503, cfg=cfg)
    assert (r.status, r.attempts) == ("failed", 3) and "HTTP 503" in (r.error or "")
    r = fetch_hour("EURUSD", h403, cfg=cfg)
    assert (r.status, r.attempts) == ("failed", 1) and "HTTP 403" in (r.error or "")


def test_connection_refused_fails_after_retries() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    cfg = DukascopyConfig(base_url=url, timeout_s=1, retries=1, backoff_s=0.01)
    r = fetch_hour("EURUSD", _hour(MON, 0), cfg=cfg)
    assert (r.status, r.attempts) == ("failed", 2)
    assert r.error is not None and "ConnectError" in r.error and f"127.0.0.1:{port}" in r.error


# ----------------------------------------------------------------------------- cache


def test_cache_mirrors_the_layout_and_is_never_downloaded_again(
    server: FakeDukascopy, cfg: DukascopyConfig, dukascopy_dir: Path, tmp_path: Path
) -> None:
    hours = hours_between(MON, TUE)
    first = [r for b in fetch_hours_local("EURUSD", hours, cfg=cfg, cache_dir=tmp_path) for r in b]
    assert [r.status for r in first] == ["ok"] * 24
    assert server.count() == 24
    cached = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert cached == sorted(hour_path("EURUSD", h) for h in hours)
    for rel in cached:
        assert (tmp_path / rel).read_bytes() == (dukascopy_dir / rel).read_bytes()

    second = [r for b in fetch_hours_local("EURUSD", hours, cfg=cfg, cache_dir=tmp_path) for r in b]
    assert server.count() == 24, "a cached hour must not hit the server"
    assert all(r.attempts == 0 and r.source.startswith(str(tmp_path)) for r in second)
    for a, b in zip(first, second, strict=True):
        assert a.hour == b.hour and a.table is not None and a.table.equals(b.table)


def test_cache_dir_from_config_is_used(server: FakeDukascopy, tmp_path: Path) -> None:
    cfg = DukascopyConfig(base_url=server.base_url, backoff_s=0.01, cache_dir=tmp_path)
    hour = _hour(TUE, 4)
    fetch_hour("EURUSD", hour, cfg=cfg)
    assert (tmp_path / hour_path("EURUSD", hour)).is_file()
    assert fetch_hour("EURUSD", hour, cfg=cfg).attempts == 0
    assert server.count() == 1


def test_damaged_cache_file_is_downloaded_again(
    server: FakeDukascopy, cfg: DukascopyConfig, dukascopy_dir: Path, tmp_path: Path
) -> None:
    hour = _hour(MON, 5)
    path = hour_path("EURUSD", hour)
    (tmp_path / path).parent.mkdir(parents=True)
    (tmp_path / path).write_bytes(b"damaged on disk")
    r = fetch_hour("EURUSD", hour, cfg=cfg, cache_dir=tmp_path)
    assert (r.status, r.attempts) == ("ok", 1)
    assert (tmp_path / path).read_bytes() == (dukascopy_dir / path).read_bytes()
    assert not [p for p in (tmp_path / path).parent.iterdir() if p.name.endswith(".tmp")]


# ----------------------------------------------------------------------------- mirror


def test_mirror_mode_makes_no_http_request(
    server: FakeDukascopy, cfg: DukascopyConfig, dukascopy_dir: Path, tmp_path: Path
) -> None:
    hours = hours_between(MON, TUE) + [_hour(WED, 0)]
    results = [
        r
        for b in fetch_hours_local(
            "EURUSD", hours, mirror=dukascopy_dir, cfg=cfg, cache_dir=tmp_path
        )
        for r in b
    ]
    assert server.count() == 0
    assert not any(tmp_path.iterdir()), "mirror mode does not fill the cache"
    assert Counter(r.status for r in results) == {"ok": 24, "missing": 1}
    assert sum(r.ticks for r in results) == 136_741
    missing = results[-1]
    assert missing.error is not None and "EURUSD/2019/01/06/00h_ticks.bi5" in missing.error


def test_mirror_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="mirror directory does not exist"):
        next(fetch_hours_local("EURUSD", [_hour(MON, 0)], mirror=tmp_path / "nope"))


def test_batch_results_follow_the_given_hours(server: FakeDukascopy, cfg: DukascopyConfig) -> None:
    hours = [_hour(TUE, 8), _hour(WED, 8), _hour(TUE, 2)]
    out = fetch_batch("EURUSD", hours, cfg=cfg)
    assert [r.hour for r in out] == hours
    assert [r.status for r in out] == ["ok", "missing", "ok"]


# ----------------------------------------------------------------------------- report


def test_summarize_names_every_problem_hour(server: FakeDukascopy, dukascopy_dir: Path) -> None:
    cfg = DukascopyConfig(base_url=server.base_url, timeout_s=0.2, retries=1, backoff_s=0.01)
    hours = [_hour(MON, h) for h in range(6)] + [_hour(WED, 0)]
    server.rules[hour_path("EURUSD", hours[1])] = ["empty"]
    server.rules[hour_path("EURUSD", hours[2])] = ["503"] * 5
    server.rules[hour_path("EURUSD", hours[3])] = ["cut_lzma"] * 5
    results = [r for b in fetch_hours_local("EURUSD", hours, cfg=cfg) for r in b]
    report = summarize(results)
    json.dumps(report)  # must be serialisable for the ingest report
    assert report["hours"] == 7
    assert report["counts"] == {"ok": 3, "empty": 1, "missing": 1, "failed": 1, "corrupt": 1}
    assert report["empty"] == ["EURUSD/2019/01/04/01h_ticks.bi5"]
    assert [(p["path"], p["status"]) for p in report["problems"]] == [
        ("EURUSD/2019/01/04/02h_ticks.bi5", "failed"),
        ("EURUSD/2019/01/04/03h_ticks.bi5", "corrupt"),
        ("EURUSD/2019/01/06/00h_ticks.bi5", "missing"),
    ]
    assert all(p["error"] for p in report["problems"])
    expected_ticks = sum(_mirror_table(dukascopy_dir, hours[i]).num_rows for i in (0, 4, 5))
    assert report["ticks"] == expected_ticks
    assert report["attempts"] == 1 + 1 + 2 + 2 + 1 + 1 + 1


def test_by_day_and_day_table(dukascopy_dir: Path) -> None:
    hours = hours_between(MON, WED)
    cfg = DukascopyConfig(hours_per_task=7)
    days = list(by_day(fetch_hours_local("EURUSD", hours, mirror=dukascopy_dir, cfg=cfg), hours))
    assert [d for d, _ in days] == [MON, TUE]
    for (day, results), total in zip(days, (136_741, 129_478), strict=True):
        assert [r.hour for r in results] == [_hour(day, h) for h in range(24)]
        table = day_table(results)
        assert table.schema == TICK_SCHEMA and table.num_rows == total
        ms = table.column("ts").cast(pa.int64()).to_numpy()
        assert (ms[1:] >= ms[:-1]).all()
    assert day_table([]).num_rows == 0


# ----------------------------------------------------------------------------- Ray


def _flatten(batches: Iterator[list[HourResult]]) -> tuple[list[int], list[HourResult]]:
    sizes, out = [], []
    for b in batches:
        sizes.append(len(b))
        out.extend(b)
    return sizes, out


@pytest.mark.ray
def test_ray_over_http_matches_local_and_yields_each_hour_once(
    ray_local: object, server: FakeDukascopy, dukascopy_dir: Path, tmp_path: Path
) -> None:
    cfg = DukascopyConfig(
        base_url=server.base_url, timeout_s=5, retries=2, backoff_s=0.01, hours_per_task=5
    )
    hours = hours_between(MON, TUE)
    server.rules[hour_path("EURUSD", hours[7])] = ["500"]
    batches = fetch_hours_ray("EURUSD", hours, cfg=cfg, cache_dir=tmp_path, max_in_flight=2)
    sizes, got = _flatten(batches)
    assert sorted(sizes) == [4, 5, 5, 5, 5]
    assert sorted(r.hour for r in got) == hours
    assert Counter(r.status for r in got) == {"ok": 24}
    assert {r.hour: r.attempts for r in got}[hours[7]] == 2
    _, local = _flatten(fetch_hours_local("EURUSD", hours, mirror=dukascopy_dir, cfg=cfg))
    ray_day = day_table(got)
    assert ray_day.num_rows == 136_741
    assert ray_day.equals(day_table(local))
    assert len(list(tmp_path.rglob("*.bi5"))) == 24


@pytest.mark.ray
def test_ray_mirror_two_days_by_day(ray_local: object, dukascopy_dir: Path) -> None:
    hours = hours_between(MON, WED) + [_hour(WED, 0)]
    batches = fetch_hours_ray("EURUSD", hours, mirror=dukascopy_dir, cfg=DukascopyConfig())
    seen: list[HourResult] = []

    def tap() -> Iterator[list[HourResult]]:
        for b in batches:
            seen.extend(b)
            yield b

    days = dict(by_day(tap(), hours))
    assert set(days) == {MON, TUE, WED}
    assert [day_table(days[d]).num_rows for d in (MON, TUE)] == [136_741, 129_478]
    assert [r.status for r in days[WED]] == ["missing"]
    assert len(seen) == 49 and len({r.hour for r in seen}) == 49
    assert summarize(seen)["counts"]["missing"] == 1
