"""Progress of a running search: a Ray Tune callback that reports candidates done.

:class:`SearchProgress` is pickled with the Tune experiment, so it holds only the run id; the
search running that id in this process registers its progress function with
:func:`progress_sink`, and the callback finds it there. Counts are candidates (ok or failed),
rates candidates per second, times seconds; objectives are in-sample.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ray import tune

from aio_ray.progress import StageProgress

__all__ = ["Progress", "SearchProgress", "emit_progress", "progress_sink"]

Progress = Callable[..., None]
"""``progress(message, done, total)``; a :class:`~aio_ray.progress.StageProgress` also gets
``candidates_per_s``, ``best_objective`` and ``eta_s`` as keyword fields."""

_SINKS: dict[str, Progress] = {}
"""run_id -> the progress function of the search running it in this process (the callback
itself is pickled with the experiment, so it looks its sink up by run id)."""


@contextmanager
def progress_sink(run_id: str, progress: Progress | None) -> Iterator[None]:
    """While inside, :class:`SearchProgress` callbacks of ``run_id`` report to ``progress``
    (nothing is registered when it is None)."""
    if progress is not None:
        _SINKS[run_id] = progress
    try:
        yield
    finally:
        _SINKS.pop(run_id, None)


def emit_progress(sink: Progress, msg: str, done: int, total: int, fields: dict[str, Any]) -> None:
    """Call ``sink(msg, done, total)``, with ``fields`` as keywords for a StageProgress."""
    if isinstance(sink, StageProgress):
        sink(msg, done, total, **fields)
    else:
        sink(msg, done, total)


class SearchProgress(tune.Callback):
    """Calls ``progress(message, done, total)`` at most every ``interval_s`` seconds (and at
    the end) with candidates done / total, candidates per second, the best objective so far
    and the time left. A :class:`aio_ray.progress.StageProgress` also gets them as fields.

    Pickled with the experiment, so it holds only the run id and finds the progress function
    of the search now running that id in this process (see :func:`progress_sink`).
    """

    def __init__(self, run_id: str, total: int, interval_s: float = 3.0) -> None:
        self.run_id, self.total, self.interval_s = run_id, total, interval_s
        self._t0: float | None = None
        self._done0 = 0
        self._last = 0.0

    def setup(self, *args: Any, **info: Any) -> None:
        self._t0, self._last = None, 0.0

    def _emit(self, trials: list[Any], force: bool = False) -> None:
        sink = _SINKS.get(self.run_id)
        if sink is None:
            return
        results = [t.last_result for t in trials if t.last_result]
        done = min(self.total, sum(int(r.get("n_done", 0)) for r in results))
        now = time.monotonic()
        if self._t0 is None:
            self._t0, self._done0 = now, done
        if not force and now - self._last < self.interval_s:
            return
        self._last = now
        bests = [r["best"] for r in results if r.get("best") is not None]
        best = max(bests) if bests else None
        elapsed = max(now - self._t0, 1e-9)
        rate = (done - self._done0) / elapsed
        eta = (self.total - done) / rate if rate > 0 else None
        msg = (
            f"{done:,}/{self.total:,} candidates ({done / self.total:.0%}), {rate:,.0f}/s, "
            f"best objective {'-' if best is None else f'{best:.3f}'} (in-sample), "
            f"ETA {'-' if eta is None else f'{eta:.0f} s'}"
        )
        fields = {
            "candidates_per_s": round(rate, 1),
            "best_objective": best,
            "eta_s": None if eta is None else round(eta, 1),
        }
        emit_progress(sink, msg, done, self.total, fields)

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        self._emit(trials)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._emit(trials, force=all(t.status in ("TERMINATED", "ERROR") for t in trials))

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._emit(trials, force=True)
