"""Peak memory of this process and all its children while a block runs (for bench/*.py)."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Self

__all__ = ["PeakMemory"]


class PeakMemory:
    """Peak summed memory (MB) of this process and its children (Ray head, workers, runners),
    sampled every ``interval_s`` seconds: RSS (``peak_rss_mb``; a page shared between processes,
    such as the object store and the libraries, counted once per process) and PSS
    (``peak_pss_mb``; each shared page split among the processes that map it, so the sum is the
    memory the machine actually holds)."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self.peak_rss_mb = 0.0
        self.peak_pss_mb = 0.0
        self._stop = threading.Event()

    def _sample(self) -> None:
        import psutil

        me = psutil.Process(os.getpid())
        rss = pss = 0
        with contextlib.suppress(psutil.Error):
            for p in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error, AttributeError):
                    rss += p.memory_info().rss
                    pss += p.memory_full_info().pss
        self.peak_rss_mb = max(self.peak_rss_mb, rss / 2**20)
        self.peak_pss_mb = max(self.peak_pss_mb, pss / 2**20)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval_s)

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
