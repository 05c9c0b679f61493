"""Progress reporting: a bar on a terminal, structured log lines elsewhere (e.g. job logs)."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["StageProgress", "stage_progress"]

log = logging.getLogger("aio_ray.progress")


class StageProgress:
    """Callable ``progress(message, done, total)`` for one stage."""

    def __init__(self, stage: str, tty: bool) -> None:
        self.stage = stage
        self.tty = tty
        self._bar = None
        self._task = None
        self._last = 0.0
        if tty:
            self._bar = Progress(
                TextColumn(f"[bold]{stage}[/bold]"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                transient=False,
                console=None,
            )
            self._bar.start()
            self._task = self._bar.add_task("", total=None)

    def __call__(self, message: str, done: int, total: int, **fields: object) -> None:
        """Show ``message`` with ``done`` of ``total``; ``fields`` (e.g. a rate, an ETA) are
        extra keys of the JSON line."""
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done, total=total, description=message)
            return
        now = time.monotonic()
        if done == total or now - self._last > 2.0:
            self._last = now
            line = {"stage": self.stage, "done": done, "total": total, "msg": message, **fields}
            log.info(json.dumps(line, default=str))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


@contextmanager
def stage_progress(stage: str) -> Iterator[StageProgress]:
    """Progress for ``stage``: rich bar when stderr is a terminal, JSON log lines otherwise."""
    p = StageProgress(stage, tty=sys.stderr.isatty())
    try:
        yield p
    finally:
        p.close()
