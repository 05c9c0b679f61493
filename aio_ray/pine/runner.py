"""Run a Pine script on our bars with PineTS, through the Node tool in ``tools/pinets-runner``.

PineTS (npm ``pinets``, pinned with a lockfile) is AGPL-3.0: a test and verification tool
only. It is never imported, bundled or served by this package; this module starts
``node tools/pinets-runner/run.mjs`` as a subprocess, hands it the bars as a float64 file
and reads back JSON. Install it with ``npm ci --prefix tools/pinets-runner``.

Stable public API::

    runner_status() -> (available: bool, reason: str)
    run_pinets(script, bars, timeframe, *, symbol="EURUSD", mintick=1e-5, inputs=None,
               timeout_s=600) -> PineRun
    pine_timeframe("15m") -> "15"
    PineRuntimeUnavailable, PineRunError
    PineRuntime(timeout_s=600)  # one long-lived Node process for many runs (context manager)
        .run(script, bars, timeframe, ...) -> PineRun; .restarts; .close()
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np

from aio_ray.bars.arrays import BarArrays
from aio_ray.bars.timeframes import parse_timeframe
from aio_ray.errors import AioError

__all__ = [
    "RUNNER_DIR",
    "PineRun",
    "PineRunError",
    "PineRuntime",
    "PineRuntimeUnavailable",
    "pine_timeframe",
    "run_pinets",
    "runner_status",
]

RUNNER_DIR = Path(
    os.environ.get(
        "AIO_PINETS_RUNNER", Path(__file__).resolve().parents[2] / "tools" / "pinets-runner"
    )
)
"""The Node tool's folder (``AIO_PINETS_RUNNER`` overrides it)."""

INSTALL_HINT = "install it with: npm ci --prefix tools/pinets-runner"


class PineRuntimeUnavailable(AioError):
    """``node`` or the runner's ``node_modules`` (PineTS) is missing."""


class PineRunError(AioError):
    """PineTS could not run the script (transpile or runtime error); ``stage`` says where."""

    def __init__(self, stage: str, problem: str) -> None:
        super().__init__(f"PineTS {stage}: {problem}")
        self.stage = stage
        self.problem = problem


@dataclass(frozen=True)
class PineRun:
    """What PineTS computed.

    Attributes
    ----------
    plots
        Plot title -> float64 values per bar (NaN where the plot is ``na``; PineTS rounds
        plotted values to 10 decimals).
    closed_trades, open_trades
        Trades in order: ``entry_id, exit_id, entry_bar, exit_bar, entry_price,
        exit_price, size`` (signed units), ``profit`` and ``commission`` (account currency).
    netprofit
        ``strategy.netprofit`` (None for an indicator).
    alerts
        Number of alert events.
    warnings
        PineTS runtime warnings (first 20).
    load_ms, run_ms
        Node-side time to load the bars and to transpile + run the script, ms.
    wall_s
        Wall time of the whole subprocess, seconds (Node start included).
    node_rss_mb
        Resident memory of the Node process after the run, MiB.
    """

    plots: dict[str, np.ndarray]
    closed_trades: list[dict[str, Any]]
    open_trades: list[dict[str, Any]]
    netprofit: float | None
    alerts: int
    warnings: list[str] = field(default_factory=list)
    load_ms: float = 0.0
    run_ms: float = 0.0
    wall_s: float = 0.0
    node_rss_mb: float = 0.0


def runner_status() -> tuple[bool, str]:
    """Whether PineTS can run here, and why not (names what is missing)."""
    if shutil.which("node") is None:
        return False, "'node' is not on PATH (Node.js >= 18 is needed for PineTS)"
    if not (RUNNER_DIR / "run.mjs").exists():
        return False, f"{RUNNER_DIR / 'run.mjs'} not found"
    if not (RUNNER_DIR / "node_modules" / "pinets" / "package.json").exists():
        return False, f"PineTS is not installed in {RUNNER_DIR / 'node_modules'}; {INSTALL_HINT}"
    return True, "ok"


def pine_timeframe(timeframe: str) -> str:
    """PineTS' key of a timeframe: minutes as text (``"15"``, ``"60"``), ``"D"`` for a day."""
    minutes = parse_timeframe(timeframe).minutes
    return "D" if minutes == 1440 else str(minutes)


def _floats(values: list[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _request(
    script: str,
    bars: BarArrays,
    timeframe: str,
    path: Path,
    symbol: str,
    mintick: float,
    inputs: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Write ``bars`` to ``path`` (6 float64 columns) and return the runner's request."""
    n = len(bars)
    cols = [bars.ts.astype(np.float64), bars.open, bars.high, bars.low, bars.close]
    np.concatenate(cols + [np.zeros(n)]).astype("<f8").tofile(path)
    return {
        "script": script,
        "bars": str(path),
        "n": n,
        "timeframe": pine_timeframe(timeframe),
        "bar_ms": parse_timeframe(timeframe).ms,
        "symbol": symbol,
        "mintick": mintick,
        "inputs": dict(inputs or {}),
    }


def _to_run(res: dict[str, Any], wall: float) -> PineRun:
    if not res.get("ok"):
        raise PineRunError(
            str(res.get("stage", "run")), str(res.get("error", "unknown error"))[:4000]
        )
    plots = {k: _floats(v) for k, v in res.get("plots", {}).items() if not k.startswith("__")}
    t = res.get("timings_ms", {})
    return PineRun(
        plots=plots,
        closed_trades=list(res.get("closed_trades", [])),
        open_trades=list(res.get("open_trades", [])),
        netprofit=res.get("netprofit"),
        alerts=int(res.get("alerts", 0)),
        warnings=list(res.get("warnings", [])),
        load_ms=float(t.get("load", 0.0)),
        run_ms=float(t.get("run", 0.0)),
        wall_s=wall,
        node_rss_mb=round(float(res.get("rss_mb", 0.0)), 1),
    )


def run_pinets(
    script: str,
    bars: BarArrays,
    timeframe: str,
    *,
    symbol: str = "EURUSD",
    mintick: float = 1e-5,
    inputs: Mapping[str, Any] | None = None,
    timeout_s: float = 600.0,
) -> PineRun:
    """Run ``script`` on ``bars`` (one price series, e.g. mid) in PineTS.

    Parameters
    ----------
    script : Pine v5/v6 source.
    bars : the bars, oldest first (``ts`` = open time, UTC ms).
    timeframe : their timeframe (``"15m"``, ``"1h"`` ...); a bar closes ``timeframe`` after
        it opens.
    symbol, mintick : FX symbol info given to the script (``syminfo``); mintick in price.
    inputs : ``{"input title": value}`` overrides of the script's inputs.
    timeout_s : wall-clock limit of the subprocess, seconds.

    Raises
    ------
    PineRuntimeUnavailable
        Node or PineTS is missing (see :func:`runner_status`).
    PineRunError
        PineTS failed to transpile or run the script, or the subprocess failed or timed out.
    """
    ok, why = runner_status()
    if not ok:
        raise PineRuntimeUnavailable(why)
    n = len(bars)
    with tempfile.TemporaryDirectory(prefix="aio-pinets-") as tmp:
        d = Path(tmp)
        req = _request(script, bars, timeframe, d / "bars.f64", symbol, mintick, inputs)
        req["out"] = str(d / "result.json")
        (d / "request.json").write_text(json.dumps(req))
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                ["node", str(RUNNER_DIR / "run.mjs"), str(d / "request.json")],
                cwd=RUNNER_DIR,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise PineRunError(
                "subprocess", f"timed out after {timeout_s:.0f} s on {n} bars"
            ) from None
        wall = time.perf_counter() - t0
        out = d / "result.json"
        if not out.exists():
            tail = (proc.stderr or proc.stdout or "").strip()[-2000:]
            raise PineRunError("subprocess", f"exit code {proc.returncode}, no result: {tail}")
        res = json.loads(out.read_text())
    return _to_run(res, wall)


_RESULT_PREFIX = "@@aio-result "
_EOF = object()


class PineRuntime:
    """One long-lived PineTS process (``node run.mjs --serve``) reused for many runs.

    Starting Node and importing PineTS costs about half a second per process; a runtime pays
    it once. Runs go one after another. A run that passes its time limit, or a Node process
    that dies, fails only that run (:class:`PineRunError`, stage ``"subprocess"``, saying
    what happened); the process is then killed and a fresh one started for the next run
    (``restarts`` counts them). Use it as a context manager, or call :meth:`close`.

    Parameters
    ----------
    timeout_s : default wall-clock limit of one run, seconds.
    start_timeout_s : limit for Node to start and load PineTS, seconds.
    """

    def __init__(self, timeout_s: float = 600.0, start_timeout_s: float = 60.0) -> None:
        self.timeout_s = timeout_s
        self.start_timeout_s = start_timeout_s
        self.restarts = 0
        self.starts = 0
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[Any] = queue.Queue()
        self._stderr: list[str] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="aio-pinets-")
        self._seq = 0

    # -- process
    def _start(self) -> None:
        ok, why = runner_status()
        if not ok:
            raise PineRuntimeUnavailable(why)
        self._lines = queue.Queue()
        self._stderr = []
        proc = subprocess.Popen(
            ["node", str(RUNNER_DIR / "run.mjs"), "--serve"],
            cwd=RUNNER_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        lines, errs = self._lines, self._stderr

        def read_out() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith(_RESULT_PREFIX):
                    lines.put(line[len(_RESULT_PREFIX) :])
            lines.put(_EOF)

        def read_err() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                errs.append(line)
                del errs[:-50]

        threading.Thread(target=read_out, daemon=True).start()
        threading.Thread(target=read_err, daemon=True).start()
        self._proc = proc
        self.starts += 1
        ready = self._next(self.start_timeout_s)
        if ready is None or ready is _EOF:
            tail = self._stderr_tail()
            self._kill()
            raise PineRunError(
                "subprocess",
                "the PineTS process did not start"
                + (f" within {self.start_timeout_s:.0f} s" if ready is None else "")
                + (f": {tail}" if tail else ""),
            )

    def _next(self, timeout: float) -> Any:
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def _stderr_tail(self) -> str:
        return "".join(self._stderr).strip()[-2000:]

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - kill is not refused
            pass
        for f in (proc.stdin, proc.stdout, proc.stderr):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass

    @property
    def pid(self) -> int | None:
        """The Node process' id (None before the first run or after :meth:`close`)."""
        return None if self._proc is None else self._proc.pid

    def close(self) -> None:
        """End the Node process and remove the temporary bars files."""
        proc = self._proc
        if proc is not None and proc.poll() is None and proc.stdin is not None:
            try:
                proc.stdin.close()  # EOF: the server ends by itself
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._kill()
        self._tmp.cleanup()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        with contextlib.suppress(Exception):
            self._kill()

    # -- runs
    def run(
        self,
        script: str,
        bars: BarArrays,
        timeframe: str,
        *,
        symbol: str = "EURUSD",
        mintick: float = 1e-5,
        inputs: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> PineRun:
        """As :func:`run_pinets`, in this runtime's Node process (started on first use)."""
        limit = self.timeout_s if timeout_s is None else timeout_s
        if self._proc is None or self._proc.poll() is not None:
            if self._proc is not None:
                self._kill()
                self.restarts += 1
            self._start()
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        self._seq += 1
        path = Path(self._tmp.name) / f"bars-{self._seq}.f64"
        req = _request(script, bars, timeframe, path, symbol, mintick, inputs)
        req["id"] = self._seq
        t0 = time.perf_counter()
        try:
            try:
                proc.stdin.write(json.dumps(req) + "\n")
                proc.stdin.flush()
            except OSError:
                pass  # the process died: reported below
            deadline = t0 + limit
            while True:
                line = self._next(max(0.0, deadline - time.perf_counter()))
                if line is None:
                    self._kill()
                    self.restarts += 1
                    raise PineRunError(
                        "subprocess",
                        f"timed out after {limit:g} s on {len(bars)} bars; "
                        "the PineTS process was killed and is restarted for the next run",
                    )
                if line is _EOF:
                    proc.wait(timeout=10)
                    code = proc.returncode
                    tail = self._stderr_tail()
                    self._kill()
                    self.restarts += 1
                    raise PineRunError(
                        "subprocess",
                        f"the PineTS process died (exit code {code}) running this script; "
                        "restarted for the next run" + (f": {tail}" if tail else ""),
                    )
                res = json.loads(line)
                if res.get("id") == self._seq:
                    break
        finally:
            path.unlink(missing_ok=True)
        return _to_run(res, time.perf_counter() - t0)
