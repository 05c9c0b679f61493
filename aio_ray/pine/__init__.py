"""Pine Script v6 export of ranked strategies, proven to reproduce the backtest.

Stable public API::

    ScriptSource, generate(source, kind) -> str, read_meta(code) -> dict   # generate.py
    check_syntax(code), verify_script(code, bars, ...) -> VerificationReport  # verify.py
    run_pinets(script, bars, timeframe, ...) -> PineRun, runner_status()    # runner.py
    pine_for_strategy(lib, strategy_id, kind) -> (code, verification)      # library.py
    record_verification(lib, strategy_id, report)
    register(app)                                  # the `aio pine` / `aio verify-pine` commands

- :mod:`~aio_ray.pine.builder`: the typed Pine builder every script is written with.
- :mod:`~aio_ray.pine.verify`: syntax (pynescript) and execution parity (PineTS, a test-only
  Node tool under ``tools/pinets-runner``, run as a subprocess) with the engine's ``single``
  price model.
"""

from __future__ import annotations

import importlib
from typing import Any

# Exports resolve lazily (PEP 562): importing a light submodule (``aio_ray.pine.builder``,
# ``aio_ray.pine.templates``, which every strategy family uses for its Pine template) must not
# load the generator and the verifier, which import the families.
_EXPORTS = {
    "KINDS": "generate",
    "PineGenerationError": "generate",
    "PineLibraryError": "library",
    "PineRun": "runner",
    "PineRunError": "runner",
    "PineRuntimeUnavailable": "runner",
    "ScriptSource": "generate",
    "VerificationReport": "verify",
    "check_syntax": "verify",
    "generate": "generate",
    "pine_for_strategy": "library",
    "read_meta": "generate",
    "record_verification": "library",
    "run_pinets": "runner",
    "runner_status": "runner",
    "verify_script": "verify",
}

__all__ = sorted(_EXPORTS)  # noqa: PLE0605 - the lazy exports' names, one list


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'aio_ray.pine' has no attribute {name!r}")
    return getattr(importlib.import_module(f"aio_ray.pine.{module}"), name)
