"""Logging as configured (``logging:`` section): level and text or JSON lines on stderr."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

__all__ = ["QUIET_LIBRARIES", "TEXT_FORMAT", "JsonLineFormatter", "configure_logging"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (UTC ISO-8601, ms), ``level``, ``logger``, ``message``
    and ``exc`` when an exception is attached. A message that is itself a JSON object (the
    pipeline's progress lines) is merged in as fields rather than nested as a string."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
        }
        msg = record.getMessage()
        parsed = None
        if msg.startswith("{"):
            try:
                parsed = json.loads(msg)
            except ValueError:
                parsed = None
        if isinstance(parsed, dict):
            out.update({k: v for k, v in parsed.items() if k not in out})
        else:
            out["message"] = msg
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


QUIET_LIBRARIES = ("numba", "llvmlite", "matplotlib", "PIL", "fsspec")


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Route the root logger to stderr at ``level`` in ``fmt`` (``text`` or ``json``).

    Replaces handlers a previous call installed, so a config loaded after the command line was
    parsed can change the format."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_aio", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._aio = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonLineFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Libraries whose DEBUG output is their own internals (numba's compiler logs every bytecode
    # step: megabytes per kernel); they stay at WARNING unless asked for by name.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
