# ruff: noqa: F811 - the fixtures of test_serve, imported and used as arguments
"""The Serve app under hostile input (issue 13) and the analysis log's order (issue 16): a
real pipeline's library, the app on Ray Serve on a loopback port, every case over HTTP.

Inputs that pass validation never crash (no 500), an unreadable record in the analysis log is
skipped (the endpoint stays 200), a pixel-bomb PNG is refused while other requests stay fast,
unauthenticated callers learn nothing and are refused before their bodies are parsed, rate
limits answer 429 with Retry-After, and a live parameter override can be cleared while Pine
and equity follow the parameters in force.
"""

from __future__ import annotations

import concurrent.futures
import io
import re
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from test_serve import SERVE_SECTION, TOKEN, _bars_body, auth, base, client, library  # noqa: F401

pytestmark = [pytest.mark.ray, pytest.mark.slow]

NEAR_2_63 = 9223372036854775708


def _log_dir(library) -> Path:
    return Path(library["tree"]["data"]["workdir"]) / "vision" / "log"


def _record(window_end_ms: int, trend: str = "up", start_ms: int | None = None):
    from aio_ray.vision.analysis import AnalysisRecord, ChartAnalysis

    return AnalysisRecord(
        instrument="EURUSD", timeframe="1h",
        window_start=window_end_ms - 31 * 3_600_000 if start_ms is None else start_ms,
        window_end=window_end_ms, model="aio-chartnet-v1", backend="cpu", latency_ms=1.0,
        status="ok", analysis=ChartAnalysis(trend=trend, patterns=[], levels=[1.1],
                                            confidence=0.5, rationale="written by the test"),
    )  # fmt: skip


def _png(h: int, w: int, dtype=np.uint8, channels: int = 3) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    if dtype == np.uint16:  # 16-bit RGBA, as PIL cannot build it from an array: raw PNG
        import struct
        import zlib

        row = b"\x00" + b"\x00" * (w * 8)
        raw = zlib.compress(row * h, 9)

        def chunk(kind: bytes, data: bytes) -> bytes:
            return (
                struct.pack(">I", len(data))
                + kind
                + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
            )

        ihdr = struct.pack(">IIBBBBB", w, h, 16, 6, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
        )
    Image.fromarray(np.full((h, w, channels), 250, dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _reconfigure(client, library, **serve) -> None:
    cfg: Path = library["config"]
    tree = yaml.safe_load(cfg.read_text())
    tree["serve"] = {**SERVE_SECTION, **serve}
    cfg.write_text(yaml.safe_dump(tree))
    r = client.post("/config/reload", headers=auth())
    assert r.status_code == 200, r.text


# ----------------------------------------------------------------------------- crashes (1, 4)


def test_timestamps_beyond_2100_are_422_and_never_logged(client, library):
    from aio_ray.vision.log import read_log

    body = _bars_body(library)
    for start in (NEAR_2_63, 10**30, 2**64):
        bad = {**body, "bars": [{**b, "ts": start + i} for i, b in enumerate(body["bars"])]}
        r = client.post("/analyze", json=bad)
        assert r.status_code == 422, r.text
        assert (
            "bars.0.ts: Input should be less than or equal to 4102444800000" in r.json()["detail"]
        )
    time.sleep(2.5)  # past log_flush_s: anything buffered would be on disk now
    ends = read_log(_log_dir(library))["window_end"].cast("int64").to_pylist()
    assert all(e <= 4_102_444_800_000 for e in ends)
    assert client.get("/analyses").status_code == 200


def test_a_poisoned_record_in_the_log_is_skipped_and_analyses_stays_200(client, library):
    from aio_ray.vision.log import AnalysisLog

    with AnalysisLog(_log_dir(library)) as log:  # as a pre-fix server would have written it
        log.extend([_record(NEAR_2_63 + 39, start_ms=NEAR_2_63)])
    (_log_dir(library) / "analyses-20990101T000000000000-1-000000-badfile0.parquet").write_bytes(
        b"PAR1 not a parquet file"
    )
    for _ in range(2):  # and it stays so (the cache keeps the skip)
        r = client.get("/analyses", params={"limit": 1000})
        assert r.status_code == 200, r.text
        assert int(r.headers["x-analyses-skipped"]) >= 2  # the record and the broken file
        assert all(a["window_end"] is None or a["window_end"] < "2100" for a in r.json())
    assert client.get("/dashboard").status_code == 200


def test_inputs_that_pass_validation_never_crash(client, library):
    body = _bars_body(library)
    flat = {**body, "bars": [{"ts": b["ts"], "open": 1.1, "high": 1.1, "low": 1.1, "close": 1.1}
                             for b in body["bars"]]}  # fmt: skip
    r = client.post("/analyze", json=flat)
    assert r.status_code == 200 and r.json()["status"] == "ok", r.text
    tiny = {**body, "bars": [{"ts": b["ts"], "open": 5e-324, "high": 5e-324, "low": 5e-324,
                              "close": 5e-324} for b in body["bars"]]}  # fmt: skip
    r = client.post("/analyze", json=tiny)
    assert r.status_code == 200 and r.json()["status"] == "ok", r.text
    start = body["bars"][0]["ts"]
    many = [{"ts": start + i * 3_600_000, "open": 1.1, "high": 1.2, "low": 1.0, "close": 1.15}
            for i in range(449)]  # fmt: skip
    r = client.post("/analyze", json={**body, "bars": many})
    assert r.status_code == 422
    assert r.json()["detail"] == [
        "bars: List should have at most 448 items after validation, not 449"
    ]
    assert client.post("/analyze", json={**body, "bars": many[:448]}).status_code == 200
    for tf in ("1w", "7m", "2d", "0d", "60m"):
        r = client.get("/patterns", params={"timeframe": tf})
        assert r.status_code == 422, (tf, r.text)
        assert r.json()["detail"][0].startswith("query.timeframe: Input should be '1m', '2m'")
        assert client.get("/rankings", params={"timeframe": tf}).status_code == 422
        assert client.get("/analyses", params={"timeframe": tf}).status_code == 422
    sid = library["top"][0].strategy.id
    first = next(iter(library["top"][0].strategy.params))
    r = client.post(f"/strategies/{sid}/params", headers={**auth(), "Content-Type": "application/json"},
                    content=f'{{"params": {{"{first}": {"9" * 400}}}}}'.encode())  # fmt: skip
    assert r.status_code == 422, r.text
    assert (
        f"params.{first}.constrained-int: Input should be less than or equal to 1000000000000000"
        in r.json()["detail"]
    )


# ----------------------------------------------------------------------------- images (2)


def test_a_pixel_bomb_png_is_refused_and_other_requests_stay_fast(base, library):
    bomb = _png(4096, 4096, dtype=np.uint16)  # 16-bit RGBA zeros: ~130 KB on the wire
    assert len(bomb) < 200_000
    big_ok = _png(2048, 2048)  # 4,194,304 pixels: exactly the budget, accepted
    with httpx.Client(base_url=base, timeout=60) as c:
        c.get("/rankings")  # warm
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            posts = [pool.submit(c.post, "/analyze", content=png,
                                 headers={"Content-Type": "image/png"})
                     for png in (bomb, big_ok, bomb, big_ok)]  # fmt: skip
            lat = []
            while not all(p.done() for p in posts):
                t0 = time.perf_counter()
                assert c.get("/rankings").status_code == 200
                lat.append(time.perf_counter() - t0)
            answers = [p.result() for p in posts]
    assert [a.status_code for a in answers] == [422, 200, 422, 200], [a.text for a in answers]
    assert (
        answers[0].json()["detail"]
        == "image is 4096x4096 = 16777216 pixels; at most 4194304 accepted"
    )
    assert answers[1].json()["status"] == "ok" and answers[1].json()["window_end"] is None
    lat.sort()
    assert lat and lat[int(0.9 * (len(lat) - 1))] < 0.100, lat  # GETs stay under 100 ms


def test_a_garbled_png_names_no_memory_address(client):
    r = client.post(
        "/analyze",
        content=b"\x89PNG\r\n\x1a\n" + b"\x07" * 300,
        headers={"Content-Type": "image/png"},
    )
    assert r.status_code == 422
    assert r.json()["detail"].startswith("the uploaded PNG cannot be decoded")
    assert not re.search(r"0x[0-9a-f]{6,}", r.text)


# ----------------------------------------------------------------------------- disclosure (5, 6)


def test_health_shows_server_paths_only_with_the_token(client, library):
    root = str(library["root"])
    anon = client.get("/health")
    assert anon.status_code == 200 and root not in anon.text
    assert anon.json()["library"] == "sqlite:///.../library.db"
    assert anon.json()["bars_dir"] == "configured" and anon.json()["source"] == "app.yaml"
    full = client.get("/health", headers=auth())
    assert full.status_code == 200 and full.json()["bars_dir"].startswith(root)


def test_control_events_show_client_addresses_only_with_the_token(client, library):
    sid = library["top"][1].strategy.id
    assert client.post(f"/strategies/{sid}/pause", headers=auth()).status_code == 200
    assert client.post(f"/strategies/{sid}/resume", headers=auth()).status_code == 200
    time.sleep(0.3)
    anon = client.get(f"/strategies/{sid}").json()["control_events"]
    assert anon and all("client" not in e["payload"] for e in anon)
    full = client.get(f"/strategies/{sid}", headers=auth()).json()["control_events"]
    assert full[0]["payload"]["client"] == "127.0.0.1"


def test_422_messages_are_short_and_never_echo_the_input(client, library):
    body = {**_bars_body(library), "instrument": "Q" * 10_000}
    r = client.post("/analyze", json=body)
    assert r.status_code == 422
    assert r.json()["detail"] == ["instrument: String should match pattern '^[A-Z]{6}$'"]
    r = client.get("/rankings", params={"run_id": "R" * 10_000})
    assert r.status_code == 422 and "RRRR" not in r.text and len(r.text) < 300
    assert r.json()["detail"] == ["query.run_id: String should have at most 128 characters"]


def test_unauthenticated_control_with_a_malformed_body_is_401_before_parsing(client, library):
    sid = library["top"][0].strategy.id
    for path in (f"/strategies/{sid}/params", f"/strategies/{sid}/pause", "/config/reload"):
        r = client.post(path, content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 401, (path, r.text)
        assert r.json() == {"detail": "missing or wrong bearer token"}
        assert r.headers["www-authenticate"] == "Bearer"
    r = client.delete(f"/strategies/{sid}/params")
    assert r.status_code == 401 and r.json() == {"detail": "missing or wrong bearer token"}


# ----------------------------------------------------------------------------- live control (9)


def test_an_override_can_be_cleared_and_pine_and_equity_follow_it(client, library):
    from aio_ray.strategies.space import describe

    t = library["top"][0]
    sid, ranked = t.strategy.id, dict(t.strategy.params)
    ranked_pine = client.get(f"/strategies/{sid}/pine")
    assert ranked_pine.headers["x-pine-params"] == "ranked"
    p = next(p for p in describe(t.strategy.family)["params"] if p["name"] in ranked
             and p["type"] == "int" and ranked[p["name"]] != p["low"])  # fmt: skip
    new = {**ranked, p["name"]: int(p["low"])}
    r = client.post(f"/strategies/{sid}/params", json={"params": new}, headers=auth(who="carol"))
    assert r.status_code == 200, r.text
    time.sleep(0.3)
    pine = client.get(f"/strategies/{sid}/pine")
    assert pine.status_code == 200 and pine.headers["x-pine-params"] == "override"
    assert pine.headers["x-pine-override-by"] == "carol"
    assert pine.headers["x-pine-verified"] == "unchecked"  # stored checks are of the ranked set
    assert pine.text != ranked_pine.text
    eq = client.get(f"/strategies/{sid}/equity").json()
    assert eq["params"] == new and eq["params_in_force"]["source"] == "override"
    assert eq["params_in_force"]["by"] == "carol"
    detail = client.get(f"/strategies/{sid}").json()
    assert detail["params_in_force"]["params"] == new and detail["params"] == ranked

    r = client.post(f"/strategies/{sid}/params", json={"params": {}}, headers=auth())
    assert r.status_code == 422
    assert (
        r.json()["detail"]
        == f"params: empty; to clear the override send DELETE /strategies/{sid}/params"
    )
    r = client.delete(f"/strategies/{sid}/params", headers=auth(who="carol"))
    assert r.status_code == 200 and r.json()["live"]["params"] is None
    time.sleep(0.3)
    back = client.get(f"/strategies/{sid}/pine")
    assert back.headers["x-pine-params"] == "ranked" and back.text == ranked_pine.text
    assert client.get(f"/strategies/{sid}/equity").json()["params"] == ranked
    assert client.get(f"/strategies/{sid}").json()["params_in_force"]["source"] == "ranked"


# ----------------------------------------------------------------------------- rate limits


def test_rate_limits_answer_429_with_retry_after(base, client, library):
    _reconfigure(
        client,
        library,
        control_burst=3,
        control_rate_per_s=0.5,
        analyze_burst=2,
        analyze_rate_per_s=0.5,
    )
    try:
        sid = library["top"][4].strategy.id
        # another loopback address is another client: the tests' own bucket is untouched
        other = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(base_url=base, transport=other, timeout=30) as c:
            codes = [c.post(f"/strategies/{sid}/pause").status_code for _ in range(4)]
            assert codes == [401, 401, 401, 429], codes  # limited before the token is checked
            r = c.post(f"/strategies/{sid}/pause", headers=auth())
            assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 2
            assert r.json()["detail"].startswith("too many control calls from this client")
            body = _bars_body(library)
            codes = [c.post("/analyze", json=body).status_code for _ in range(3)]
            assert codes == [200, 200, 429], codes
            time.sleep(2.1)  # the bucket refills at 0.5/s
            assert c.post("/analyze", json=body).status_code == 200
        assert client.get("/rankings").status_code == 200  # GETs are never limited
    finally:
        cfg: Path = library["config"]
        tree = yaml.safe_load(cfg.read_text())
        tree["serve"] = dict(SERVE_SECTION)
        cfg.write_text(yaml.safe_dump(tree))
        assert client.post("/config/reload", headers=auth()).status_code == 200


# ----------------------------------------------------------------------------- the log (3, 16)


def test_analyses_are_newest_window_first_whatever_the_order_they_were_logged(client, library):
    from aio_ray.vision.log import AnalysisLog

    h = 3_600_000
    base_ms = 1_893_456_000_000  # 2030-01-01: newer than anything else in the log
    for batch in ([3, 0, 5], [1], [4, 2]):  # three files, windows out of order within each
        with AnalysisLog(_log_dir(library)) as log:
            log.extend([_record(base_ms + i * h, trend="down" if i % 2 else "up") for i in batch])
    r = client.get("/analyses", params={"limit": 6})
    assert r.status_code == 200
    got = [a["window_end"] for a in r.json()]
    want = [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((base_ms + i * h) / 1000))
            for i in (5, 4, 3, 2, 1, 0)]  # fmt: skip
    assert got == want
    # the same window analysed again later: the later analysis comes first
    with AnalysisLog(_log_dir(library)) as log:
        log.extend([_record(base_ms + 5 * h, trend="sideways")])
    top = client.get("/analyses", params={"limit": 2}).json()
    assert [a["trend"] for a in top] == ["sideways", "down"] and top[0]["window_end"] == want[0]
    one = client.get("/analyses", params={"limit": 1, "timeframe": "1h"}).json()
    assert one[0]["window_end"] == want[0]


def test_the_app_compacts_the_log_it_writes(client, library):
    from aio_ray.vision.log import log_files, read_log

    _reconfigure(client, library, log_flush_rows=1, log_max_files=3)
    try:
        body = _bars_body(library)
        for _ in range(4):
            assert client.post("/analyze", json=body).status_code == 200
        files = log_files(_log_dir(library))
        assert len(files) <= 3 and any("compact" in f.name for f in files), files
        assert (_log_dir(library) / "_unreadable").is_dir()  # the broken file was set aside
        assert read_log(_log_dir(library)).num_rows >= 8  # nothing lost: pipeline's 4 + these 4
        r = client.get("/analyses", params={"limit": 1000})
        assert r.status_code == 200 and len(r.json()) >= 8
    finally:
        _reconfigure(client, library)


# ----------------------------------------------------------------------------- OpenAPI (7)


def test_openapi_lists_every_status_code_with_its_media_type(client):
    paths = client.get("/openapi.json").json()["paths"]
    csv = paths["/rankings.csv"]["get"]["responses"]
    assert set(csv["200"]["content"]) == {"text/csv"}
    assert set(paths["/strategies/{strategy_id}/pine"]["get"]["responses"]["200"]["content"]) == {
        "text/plain"
    }
    for p in ("/strategies/{strategy_id}/pause", "/strategies/{strategy_id}/params"):
        assert {"401", "404", "413", "422", "429"} <= set(paths[p]["post"]["responses"]), p
    assert {"401", "404", "429"} <= set(
        paths["/strategies/{strategy_id}/params"]["delete"]["responses"]
    )
    assert {"413", "415", "422", "429", "503", "504"} <= set(paths["/analyze"]["post"]["responses"])
    assert {"404", "422"} <= set(paths["/strategies/{strategy_id}"]["get"]["responses"])
    tf = paths["/patterns"]["get"]["parameters"][0]["schema"]["anyOf"][0]["enum"]
    assert "1h" in tf and "1w" not in tf


def test_a_slow_analysis_times_out_with_504_and_a_full_queue_is_503(base, client, library):
    _reconfigure(client, library, analyze_timeout_s=0.001, analyze_queue=1)
    try:
        body = _bars_body(library)
        r = client.post("/analyze", json=body)
        assert r.status_code == 504
        assert r.json()["detail"] == "analysis did not finish within 0.001 s; not logged"
        with (
            httpx.Client(base_url=base, timeout=30) as c,
            concurrent.futures.ThreadPoolExecutor(4) as pool,
        ):
            codes = [f.result() for f in [pool.submit(lambda: c.post("/analyze", json=body))
                                          for _ in range(8)]]  # fmt: skip
        full = [x for x in codes if x.status_code == 503]
        assert {x.status_code for x in codes} <= {503, 504} and full, [x.status_code for x in codes]
        assert full[0].json()["detail"] == "analysis queue full (1 waiting); retry later"
        assert int(full[0].headers["retry-after"]) >= 1
    finally:
        _reconfigure(client, library)
    time.sleep(0.5)  # the worker drains what was queued
    assert client.post("/analyze", json=_bars_body(library)).status_code == 200


# ----------------------------------------------------------------------- memory and the spec


def _replica_rss_mb() -> float:
    """Summed RSS of this app's Serve replicas (the processes that decode and analyse)."""
    import psutil

    total = 0
    for p in psutil.process_iter(["cmdline"]):
        try:
            if "ServeReplica:aio-test" in " ".join(p.info["cmdline"] or ()):
                total += p.memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


def test_memory_stays_bounded_over_100_large_uploads(base, library):
    png = _png(2048, 2048)  # 4,194,304 pixels: the largest image the budget accepts
    with httpx.Client(base_url=base, timeout=60) as c:
        for _ in range(10):  # warm-up: caches, the model, the allocator's arenas
            assert (
                c.post("/analyze", content=png, headers={"Content-Type": "image/png"}).status_code
                == 200
            )
        before = _replica_rss_mb()
        assert before > 0, "no Serve replica process found"
        for i in range(100):
            r = c.post("/analyze", content=png, headers={"Content-Type": "image/png"})
            assert r.status_code == 200, (i, r.text)
        after = _replica_rss_mb()
    # one decoded upload is 4.2 MP x 3 bytes = 12 MB; 100 kept would be 1.2 GB
    assert after - before < 100, (before, after)


# One Hypothesis run over the whole OpenAPI spec (schemathesis, pinned in the test extra),
# derandomized so every run sends the same cases, a bounded number per operation, with the
# token so that control endpoints' parsers are reached too. Last in the module: it may pause
# strategies or override parameters of the shared app. (Driven by Hypothesis directly:
# schemathesis' own pytest plugin does not support pytest 9 yet.)
def test_no_case_generated_from_the_openapi_spec_gets_a_server_error(base, library):
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    spec = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [result.ok() for result in spec.get_all_operations()]
    assert len(operations) >= 15, [op.label for op in operations]
    errors: list[str] = []
    sent: dict[str, int] = {}

    def fuzz(op) -> None:
        @settings(max_examples=20, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=op.as_strategy())
        def run(case) -> None:
            r = case.call(base_url=base, headers=auth(), timeout=30)
            sent[op.label] = sent.get(op.label, 0) + 1
            if r.status_code >= 500:
                errors.append(f"{op.label} -> {r.status_code}: {r.text[:200]}")

        run()

    for op in operations:
        fuzz(op)
    assert all(sent.get(op.label) for op in operations), sent
    assert not errors, errors
