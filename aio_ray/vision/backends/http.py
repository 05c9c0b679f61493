"""The HTTP backend: any OpenAI-compatible ``/v1/chat/completions`` server.

``vllm serve openbmb/MiniCPM-V-2_6 --trust-remote-code``, the Ray Serve LLM app of
:mod:`aio_ray.vision.backends.serve_llm`, or Ollama all speak this API. Each window is one
request: the system + user prompt of :mod:`aio_ray.vision.prompts` with the chart as a
``data:image/png;base64`` URL, ``temperature``, ``max_tokens`` and, when
``settings.guided_decoding``, ``response_format = {"type": "json_schema", ...}`` carrying
:func:`analysis_json_schema` so the server constrains the answer (vLLM: structured outputs).

Retries (``settings.attempts`` model calls per window in all): timeouts, connection errors,
HTTP 408/429/5xx (after ``backoff_s``, doubling) and answers that do not parse into a
:class:`ChartAnalysis` (at once, at ``retry_temperature``). Other 4xx answers fail the window
at once (the request itself is wrong). A window that never succeeds becomes a ``failed``
record carrying the last raw answer and the last error.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Self

import httpx

from aio_ray.vision.analysis import AnalysisRecord, ChartAnalysis, analysis_json_schema
from aio_ray.vision.backends.base import (
    AnalysisRequest,
    failed_record,
    ok_record,
    request_png,
)
from aio_ray.vision.parse import parse_analysis
from aio_ray.vision.prompts import chat_messages, png_data_url

__all__ = ["HttpBackend", "chat_request_body", "response_format"]

_RETRY_STATUS = frozenset({408, 429})
_MAX_ERROR_BODY = 300


def response_format() -> dict[str, Any]:
    """OpenAI ``response_format`` asking for JSON that follows :func:`analysis_json_schema`."""
    return {
        "type": "json_schema",
        "json_schema": {"name": "chart_analysis", "schema": analysis_json_schema(), "strict": True},
    }


def chat_request_body(
    request: AnalysisRequest,
    *,
    model: str,
    temperature: float,
    max_tokens: int,
    guided: bool = True,
) -> dict[str, Any]:
    """The JSON body of ``POST /v1/chat/completions`` for one window."""
    body: dict[str, Any] = {
        "model": model,
        "messages": chat_messages(png_data_url(request_png(request)), **request.prompt_kwargs()),
        "temperature": temperature,
        "max_tokens": max_tokens,
        "stream": False,
    }
    if guided:
        body["response_format"] = response_format()
    return body


def _content(payload: Any) -> str:
    """``choices[0].message.content`` as text; ValueError/TypeError on any other shape."""
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"no choices[0].message.content in the response ({exc!r})") from exc
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        raise TypeError(f"message content is {type(content).__name__}, not text")
    return content


class HttpBackend:
    """Analyse charts through an OpenAI-compatible server (thread pool of requests).

    Parameters
    ----------
    settings : :class:`aio_ray.vision.backends.VisionSettings` (``base_url``,
        ``served_model``/``model_source``, ``api_key_env``, ``timeout_s``, ``attempts``,
        ``backoff_s``, ``temperature``, ``retry_temperature``, ``max_tokens``,
        ``guided_decoding``, ``max_in_flight``).
    client : an ``httpx.Client`` to use instead of a new one (closed by its owner).
    """

    name = "http"

    def __init__(self, settings: Any, *, client: httpx.Client | None = None) -> None:
        self.settings = settings
        self.model_id: str = settings.http_model
        self.url = f"{settings.base_url}/chat/completions"
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(settings.api_key_env) if settings.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._own_client = client is None
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(settings.timeout_s, connect=min(10.0, settings.timeout_s)),
            headers=headers,
        )
        if client is not None and key:
            self._client.headers.update(headers)

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def analyze(self, requests: Sequence[AnalysisRequest]) -> list[AnalysisRecord]:
        """One record per request, in order; up to ``max_in_flight`` requests at once."""
        if len(requests) <= 1 or self.settings.max_in_flight == 1:
            return [self.analyze_one(r) for r in requests]
        with ThreadPoolExecutor(max_workers=min(self.settings.max_in_flight, len(requests))) as ex:
            return list(ex.map(self.analyze_one, requests))

    def analyze_one(self, request: AnalysisRequest) -> AnalysisRecord:
        """Analyse one window with retries; always returns a record."""
        s = self.settings
        t0 = time.perf_counter()
        raw: str | None = None
        error = "no attempt made"
        invalid_before = False
        delay = s.backoff_s
        try:
            png = request_png(request)
            png_data_url(png)
        except Exception as exc:  # noqa: BLE001 - the window fails, not the batch
            return failed_record(
                request,
                f"cannot encode chart image: {exc}",
                backend=self.name,
                model=self.model_id,
                latency_ms=(time.perf_counter() - t0) * 1000,
            )
        for attempt in range(1, s.attempts + 1):
            temperature = (
                max(s.temperature, s.retry_temperature) if invalid_before else s.temperature
            )
            body = chat_request_body(
                request,
                model=self.model_id,
                temperature=temperature,
                max_tokens=s.max_tokens,
                guided=s.guided_decoding,
            )
            transient = False
            try:
                resp = self._client.post(self.url, json=body)
            except httpx.TimeoutException as exc:
                error, transient = (
                    f"timeout after {s.timeout_s:g} s calling {self.url}: {exc!r}",
                    True,
                )
            except httpx.TransportError as exc:
                error, transient = f"connection error calling {self.url}: {exc!r}", True
            else:
                code = resp.status_code
                if code >= 500 or code in _RETRY_STATUS:
                    error = f"HTTP {code} from {self.url}: {resp.text[:_MAX_ERROR_BODY]}"
                    transient = True
                elif code >= 400:
                    error = (
                        f"HTTP {code} from {self.url} (not retried): {resp.text[:_MAX_ERROR_BODY]}"
                    )
                    return failed_record(
                        request,
                        error,
                        backend=self.name,
                        model=self.model_id,
                        latency_ms=(time.perf_counter() - t0) * 1000,
                        attempts=attempt,
                        raw_text=raw,
                    )
                else:
                    try:
                        raw = _content(resp.json())
                    except (ValueError, TypeError) as exc:  # also json.JSONDecodeError
                        raw = resp.text
                        error = f"malformed response from {self.url}: {exc}"
                        invalid_before = True
                        continue
                    parsed = parse_analysis(raw)
                    if isinstance(parsed, ChartAnalysis):
                        return ok_record(
                            request,
                            parsed,
                            backend=self.name,
                            model=self.model_id,
                            latency_ms=(time.perf_counter() - t0) * 1000,
                            attempts=attempt,
                            raw_text=raw,
                        )
                    error = f"invalid answer ({parsed.stage}): {parsed.error}"
                    invalid_before = True
            if transient and attempt < s.attempts and delay > 0:
                time.sleep(delay)
                delay *= 2
        return failed_record(
            request,
            error,
            backend=self.name,
            model=self.model_id,
            latency_ms=(time.perf_counter() - t0) * 1000,
            attempts=s.attempts,
            raw_text=raw,
        )
