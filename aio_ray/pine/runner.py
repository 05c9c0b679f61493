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
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aio_ray.bars.timeframes import parse_timeframe
from aio_ray.errors import AioError
from aio_ray.strategies.bars import BarArrays

__all__ = [
    "RUNNER_DIR",
    "PineRun",
    "PineRunError",
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
    tf = parse_timeframe(timeframe)
    n = len(bars)
    with tempfile.TemporaryDirectory(prefix="aio-pinets-") as tmp:
        d = Path(tmp)
        cols = [bars.ts.astype(np.float64), bars.open, bars.high, bars.low, bars.close]
        np.concatenate(cols + [np.zeros(n)]).astype("<f8").tofile(d / "bars.f64")
        req = {
            "script": script,
            "bars": str(d / "bars.f64"),
            "n": n,
            "timeframe": pine_timeframe(timeframe),
            "bar_ms": tf.ms,
            "symbol": symbol,
            "mintick": mintick,
            "inputs": dict(inputs or {}),
            "out": str(d / "result.json"),
        }
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
