"""Pine Script v6 export of ranked strategies, proven to reproduce the backtest.

Stable public API::

    ScriptSource, generate(source, kind) -> str, read_meta(code) -> dict   # generate.py
    check_syntax(code), verify_script(code, bars, ...) -> VerificationReport  # verify.py
    run_pinets(script, bars, timeframe, ...) -> PineRun, runner_status()    # runner.py
    pine_for_strategy(lib, strategy_id, kind) -> (code, verification)      # store.py
    record_verification(lib, strategy_id, report)
    register(app)                                  # the `aio pine` / `aio verify-pine` commands

- :mod:`~aio_ray.pine.builder`: the typed Pine builder every script is written with.
- :mod:`~aio_ray.pine.verify`: syntax (pynescript) and execution parity (PineTS, a test-only
  Node tool under ``tools/pinets-runner``, run as a subprocess) with the engine's ``single``
  price model.
"""

from __future__ import annotations

from aio_ray.pine.generate import KINDS, PineGenerationError, ScriptSource, generate, read_meta
from aio_ray.pine.runner import (
    PineRun,
    PineRunError,
    PineRuntimeUnavailable,
    run_pinets,
    runner_status,
)
from aio_ray.pine.store import PineLibraryError, pine_for_strategy, record_verification
from aio_ray.pine.verify import VerificationReport, check_syntax, verify_script

__all__ = [
    "KINDS",
    "PineGenerationError",
    "PineLibraryError",
    "PineRun",
    "PineRunError",
    "PineRuntimeUnavailable",
    "ScriptSource",
    "VerificationReport",
    "check_syntax",
    "generate",
    "pine_for_strategy",
    "read_meta",
    "record_verification",
    "run_pinets",
    "runner_status",
    "verify_script",
]
