"""The HTTP backend against a real OpenAI-compatible responder on 127.0.0.1.

The responder stands in for the external model server (``vllm serve``, Ollama): it answers
``POST /v1/chat/completions`` from a script and records every request body it receives.
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from aio_ray.vision.analysis import ChartAnalysis, analysis_json_schema
from aio_ray.vision.backends import VisionSettings, make_backend
from aio_ray.vision.backends.base import AnalysisRequest
from aio_ray.vision.backends.http import HttpBackend

GOOD = {
    "trend": "down",
    "patterns": ["double_top"],
    "levels": [1.1321],
    "confidence": 0.7,
    "rationale": "Two equal highs then a break of the neckline.",
}


class Responder:
    """A scripted OpenAI-compatible server. Each script step answers one request:
    ("content", text) | ("status", code) | ("sleep", seconds) | ("echo", None)."""

    def __init__(self) -> None:
        self.script: deque[tuple[str, object]] = deque()
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                with outer.lock:
                    outer.bodies.append(body)
                    outer.headers.append(dict(self.headers))
                    step = outer.script.popleft() if outer.script else ("echo", None)
                kind, arg = step
                try:
                    if self.path != "/v1/chat/completions":
                        return self._send(404, {"error": "not found"})
                    if kind == "status":
                        return self._send(int(arg), {"error": {"message": f"status {arg}"}})
                    if kind == "sleep":
                        time.sleep(float(arg))
                        return self._send(200, _completion(json.dumps(GOOD)))
                    if kind == "content":
                        return self._send(200, _completion(str(arg)))
                    if kind == "raw":
                        return self._send_raw(200, str(arg).encode())
                    # echo: the level is 1 + the number after "id=" in the user summary
                    text = body["messages"][1]["content"][1]["text"]
                    ident = float(re.search(r"id=(\d+)", text).group(1)) + 1.0
                    return self._send(200, _completion(json.dumps({**GOOD, "levels": [ident]})))
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _send(self, code, payload):
                self._send_raw(code, json.dumps(payload).encode())

            def _send_raw(self, code, data):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _completion(content: str) -> dict:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": "minicpm-v",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
    }


@pytest.fixture
def responder():
    r = Responder()
    yield r
    r.close()


def _png(seed: int = 0) -> bytes:
    from PIL import Image

    arr = np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, mode="RGB").save(buf, format="PNG")
    return buf.getvalue()


def _request(i: int = 0, image=None) -> AnalysisRequest:
    return AnalysisRequest(
        image=_png(i) if image is None else image,
        instrument="EURUSD",
        timeframe="1h",
        window_start=1_549_238_400_000 + i * 3_600_000,
        window_end=1_549_238_400_000 + (i + 63) * 3_600_000,
        summary=f"id={i} RSI 50",
        ohlc=np.array([[1.10, 1.12, 1.09, 1.11], [1.11, 1.13, 1.10, 1.125]]),
    )


def _settings(responder: Responder, **kw) -> VisionSettings:
    base = {
        "backend": "http",
        "base_url": responder.base_url,
        "served_model": "minicpm-v",
        "attempts": 3,
        "backoff_s": 0.0,
        "timeout_s": 5.0,
        "temperature": 0.0,
        "retry_temperature": 0.4,
        "max_tokens": 300,
    }
    return VisionSettings(**{**base, **kw})


def test_valid_answer_gives_an_ok_record_and_a_well_formed_request(responder, monkeypatch):
    monkeypatch.setenv("AIO_VISION_API_KEY", "sekret")
    responder.script.append(("content", json.dumps(GOOD)))
    req = _request(3)
    with make_backend("http", _settings(responder)) as backend:
        assert isinstance(backend, HttpBackend) and backend.model_id == "minicpm-v"
        [rec] = backend.analyze([req])
    assert rec.ok and rec.analysis == ChartAnalysis(**GOOD)
    assert rec.attempts == 1 and rec.raw_text == json.dumps(GOOD)
    assert rec.model == "minicpm-v" and rec.backend == "http" and rec.latency_ms > 0
    assert (rec.window_start, rec.window_end) == (req.window_start, req.window_end)

    [body] = responder.bodies
    assert body["model"] == "minicpm-v" and body["temperature"] == 0.0 and body["max_tokens"] == 300
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == analysis_json_schema()
    image_part, text_part = body["messages"][1]["content"]
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == req.image
    assert "id=3" in text_part["text"] and "1.09000" in text_part["text"]
    assert responder.headers[0]["Authorization"] == "Bearer sekret"


def test_invalid_json_is_retried_at_the_retry_temperature(responder):
    responder.script.extend(
        [
            ("content", '{"trend": "down", "patterns": ['),
            ("content", "```json\n" + json.dumps(GOOD) + "\n```"),
        ]
    )
    [rec] = HttpBackend(_settings(responder)).analyze([_request()])
    assert rec.ok and rec.attempts == 2 and rec.analysis.trend == "down"
    assert [b["temperature"] for b in responder.bodies] == [0.0, 0.4]


def test_always_invalid_answers_give_a_failed_record_with_the_raw_text(responder):
    bad = [json.dumps({**GOOD, "confidence": 7}), "no idea", json.dumps({**GOOD, "trend": "flat"})]
    responder.script.extend(("content", t) for t in bad)
    [rec] = HttpBackend(_settings(responder)).analyze([_request()])
    assert rec.status == "failed" and rec.analysis is None
    assert rec.attempts == 3 and len(responder.bodies) == 3
    assert rec.raw_text == bad[-1]
    assert "invalid answer (schema)" in rec.error and "trend" in rec.error


def test_server_errors_are_retried_until_ok(responder):
    responder.script.extend([("status", 500), ("status", 503), ("content", json.dumps(GOOD))])
    [rec] = HttpBackend(_settings(responder, backoff_s=0.01)).analyze([_request()])
    assert rec.ok and rec.attempts == 3 and len(responder.bodies) == 3


def test_server_errors_past_the_attempts_fail_naming_the_status(responder):
    responder.script.extend([("status", 502)] * 3)
    [rec] = HttpBackend(_settings(responder)).analyze([_request()])
    assert rec.status == "failed" and "HTTP 502" in rec.error and rec.raw_text is None


def test_timeouts_fail_the_window_after_the_attempts(responder):
    responder.script.extend([("sleep", 1.5), ("sleep", 1.5)])
    t0 = time.perf_counter()
    [rec] = HttpBackend(_settings(responder, attempts=2, timeout_s=0.3)).analyze([_request()])
    assert rec.status == "failed" and "timeout" in rec.error and rec.attempts == 2
    assert time.perf_counter() - t0 < 1.5 * 2  # the client gave up, it did not wait


def test_client_errors_are_not_retried(responder):
    responder.script.append(("status", 400))
    [rec] = HttpBackend(_settings(responder)).analyze([_request()])
    assert rec.status == "failed" and "HTTP 400" in rec.error and "not retried" in rec.error
    assert rec.attempts == 1 and len(responder.bodies) == 1


def test_a_response_without_choices_counts_as_an_invalid_answer(responder):
    responder.script.extend([("raw", '{"object": "error"}'), ("content", json.dumps(GOOD))])
    [rec] = HttpBackend(_settings(responder)).analyze([_request()])
    assert rec.ok and rec.attempts == 2


def test_concurrent_requests_come_back_in_order(responder):
    reqs = [_request(i) for i in range(12)]
    recs = HttpBackend(_settings(responder, max_in_flight=4)).analyze(reqs)
    assert [r.analysis.levels for r in recs] == [[float(i + 1)] for i in range(12)]
    assert [r.window_start for r in recs] == [q.window_start for q in reqs]
    assert len(responder.bodies) == 12


def test_a_palette_chart_is_sent_as_its_png(responder):
    from PIL import Image

    from aio_ray.charts.raster import rasterize

    rng = np.random.default_rng(1)
    c = 1.1 + np.cumsum(rng.normal(0, 1e-4, 40))
    o = np.r_[c[0], c[:-1]]
    img = rasterize(o, np.maximum(o, c) + 1e-4, np.minimum(o, c) - 1e-4, c, size=(112, 112))
    [rec] = HttpBackend(_settings(responder)).analyze([_request(0, image=img)])
    assert rec.ok
    url = responder.bodies[0]["messages"][1]["content"][0]["image_url"]["url"]
    sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert np.array_equal(np.asarray(sent), img)


def test_an_unreachable_server_fails_with_a_connection_error():
    s = VisionSettings(backend="http", base_url="http://127.0.0.1:9/v1", attempts=2, backoff_s=0.0)
    [rec] = HttpBackend(s).analyze([_request()])
    assert rec.status == "failed" and "connection error" in rec.error and rec.attempts == 2
