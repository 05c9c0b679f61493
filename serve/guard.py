"""What stands between the network and the app's routes: per-client rate limits, the bearer
token check of control calls (before any body is parsed), and short, safe error messages.

:class:`ControlGuard` is an ASGI middleware placed inside :class:`BodyLimit`, so an
oversized body is a 413 first; then, for ``POST /analyze`` and the control calls, a client
over its rate answers 429 with ``Retry-After``; then a control call without the right token
answers 401 before its body is read, so a malformed body of an unauthenticated caller is never
parsed (and never described back to it).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve.service import dumps

__all__ = [
    "BodyLimit",
    "ControlGuard",
    "RateLimiter",
    "authorized",
    "check_token",
    "error_responses",
    "safe_message",
    "send_json",
    "short_errors",
]

CONTROL_PATH = re.compile(r"^/(strategies/[^/]+/(pause|resume|params)|config/reload)$")
ANALYZE_PATH = "/analyze"
MAX_DETAIL = 200
"""Longest message of one error in a 422 (longer ones are cut, inputs are never echoed)."""
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def check_token(expected: str | None, authorization: str | None) -> str | None:
    """None when ``authorization`` is ``Bearer <token>`` of the configured token (its
    SHA-256 compared in constant time), else why not."""
    if expected is None:
        return "control is disabled: no token configured"
    scheme, _, token = (authorization or "").partition(" ")
    given = hashlib.sha256(token.strip().encode()).hexdigest()
    if scheme.lower() != "bearer" or not token.strip() or not hmac.compare_digest(given, expected):
        return "missing or wrong bearer token"
    return None


def authorized(request: Any) -> bool:
    """Whether the request carries the control token (reads may then show more)."""
    expected = request.app.state.core.cfg.token_sha256
    return check_token(expected, request.headers.get("authorization")) is None


class RateLimiter:
    """Token buckets per key: ``rate`` requests per second sustained, ``burst`` at once.

    At most ``max_keys`` clients are tracked (the least recently seen are forgotten first, so
    a flood of addresses cannot grow memory without bound).
    """

    def __init__(
        self, rate: Callable[[], float], burst: Callable[[], int], max_keys: int = 65_536
    ) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when a request of ``key`` may go now (one token taken), else the seconds until
        one may."""
        rate, burst = float(self.rate()), float(self.burst())
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.pop(key, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / rate
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        return wait


class ControlGuard:
    """ASGI middleware: 429 over the rate (``POST /analyze``, control calls), then 401 for a
    control call without the token, both before the body is read."""

    def __init__(self, app: ASGIApp, core: Any) -> None:
        self.app = app
        self.core = core

        def s() -> Any:
            return core.cfg.settings

        self.analyze = RateLimiter(lambda: s().analyze_rate_per_s, lambda: s().analyze_burst)
        self.control = RateLimiter(lambda: s().control_rate_per_s, lambda: s().control_burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "DELETE"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        is_control = bool(CONTROL_PATH.match(path))
        if not is_control and path != ANALYZE_PATH:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        key = client[0] if client else "unknown"
        wait = (self.control if is_control else self.analyze).take(key)
        if wait > 0:
            what = "control calls" if is_control else "analyses"
            await send_json(
                send,
                429,
                {"detail": f"too many {what} from this client; retry in {math.ceil(wait)} s"},
                [(b"retry-after", str(math.ceil(wait)).encode())],
            )
            return
        if is_control:
            auth = next(
                (v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"authorization"),
                None,
            )
            problem = check_token(self.core.cfg.token_sha256, auth)
            if problem is not None:
                await send_json(send, 401, {"detail": problem}, [(b"www-authenticate", b"Bearer")])
                return
        await self.app(scope, receive, send)


async def send_json(
    send: Send, status: int, body: Mapping[str, Any], extra: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    raw = dumps(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(raw)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


def safe_message(text: str, limit: int = MAX_DETAIL) -> str:
    """``text`` without memory addresses, cut to ``limit`` characters."""
    text = _ADDRESS.sub("", str(text))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_errors(errors: Sequence[Mapping[str, Any]], limit: int = 10) -> list[str]:
    """Pydantic/FastAPI validation errors as ``"where: what"`` strings: never the input, no
    memory addresses, at most ``limit`` of them, each at most :data:`MAX_DETAIL` chars."""
    out = []
    for e in list(errors)[:limit]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        out.append(safe_message(f"{safe_message(loc, 80)}: {e.get('msg', 'invalid')}"))
    if len(errors) > limit:
        out.append(f"... and {len(errors) - limit} more errors")
    return out


_DETAIL = {
    "application/json": {
        "schema": {"type": "object", "properties": {"detail": {}}, "required": ["detail"]}
    }
}
_REASONS = {
    400: "Malformed request (e.g. Content-Length)",
    401: "Missing or wrong bearer token (WWW-Authenticate: Bearer)",
    404: "Unknown strategy or run",
    413: "Request body over the size limit",
    415: "Unsupported Content-Type (send image/png or application/json)",
    422: "Invalid input; the message names the field",
    429: "Too many requests from this client (Retry-After: seconds)",
    500: "Library error",
    503: "A needed part is unavailable (library, bars, vision backend) or the analysis queue "
    "is full (Retry-After)",
    504: "The analysis did not finish in time (not logged)",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries (JSON ``{"detail": ...}``) for the given status codes."""
    return {c: {"description": _REASONS[c], "content": _DETAIL} for c in codes}


class BodyLimit:
    """ASGI middleware: 413 for a body over ``limit()`` bytes, by Content-Length or while
    streaming (chunked uploads are counted as they arrive, never buffered whole)."""

    def __init__(self, app: ASGIApp, limit: Callable[[Scope], int]) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    size = int(value)
                except ValueError:
                    await send_json(send, 400, {"detail": "malformed Content-Length"})
                    return
                if size > limit:
                    await send_json(send, 413, _too_large(limit))
                    return
        seen = 0
        refused = False

        async def counting_receive() -> Message:
            # Past the limit: answer 413 now and tell the app the client went away (an
            # exception here would be turned into a 400 by the framework's body parser).
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    refused = True
                    await send_json(send, 413, _too_large(limit))
                    return {"type": "http.disconnect"}
            return msg

        async def guarded_send(msg: Message) -> None:
            if not refused:  # after a 413 whatever the app answers is dropped
                await send(msg)

        await self.app(scope, counting_receive, guarded_send)


def _too_large(limit: int) -> dict[str, str]:
    return {"detail": f"request body larger than {limit} bytes"}
