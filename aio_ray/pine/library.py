"""Pine scripts of library strategies, with their stored verification.

Stable public API::

    source_for_strategy(lib, strategy_id) -> ScriptSource
    pine_for_strategy(lib, strategy_id, kind="strategy") -> (code, verification | None)
    record_verification(lib, strategy_id, report) -> int

``pine_for_strategy`` is what the Serve app returns: the script and the latest stored check
of that kind (parsed, parity passed or the first differing bar, the full report).
"""

from __future__ import annotations

from typing import Any

from aio_ray.errors import AioError
from aio_ray.pine.generate import Kind, ScriptSource, generate
from aio_ray.pine.verify import VerificationReport
from aio_ray.strategies.engine import BacktestConfig

__all__ = ["PineLibraryError", "pine_for_strategy", "record_verification", "source_for_strategy"]

_HEADER_METRICS = ("net_profit", "sharpe", "max_drawdown", "profit_factor", "win_rate", "trades")


class PineLibraryError(AioError, LookupError):
    """The strategy (or what its script needs) is not in the library."""


def source_for_strategy(lib: Any, strategy_id: str) -> ScriptSource:
    """Everything the script of ``strategy_id`` states, read from the library ``lib``.

    Costs come from the backtest settings of the run that found the strategy (``single``
    price model); metrics and data period from that run's holdout, when recorded.
    """
    rec = lib.get_strategy(strategy_id)
    if rec is None:
        raise PineLibraryError(f"strategy {strategy_id!r} is not in library {lib.safe_url}")
    run = lib.get_run(rec.run_id)
    backtest = BacktestConfig(price_model="single")
    if run is not None and isinstance(run.config.get("backtest"), dict):
        backtest = BacktestConfig.model_validate(run.config["backtest"]).model_copy(
            update={"price_model": "single"}
        )
    metrics = None
    hold = lib.holdout(rec.run_id, strategy_id)
    if hold is not None:
        metrics = {f"holdout_{k}": hold[k] for k in _HEADER_METRICS if hold.get(k) is not None}
    period = None
    trades = lib.trades(rec.run_id, strategy_id, "holdout")
    if trades:
        period = (min(t["entry_ts"] for t in trades), max(t["exit_ts"] for t in trades))
    return ScriptSource(
        family=rec.family,
        params=rec.params,
        timeframe=rec.timeframe,
        symbol=rec.symbol,
        name=rec.name,
        strategy_id=rec.id,
        backtest=backtest,
        period_ms=period,
        metrics=metrics,
    )


def pine_for_strategy(
    lib: Any, strategy_id: str, kind: Kind = "strategy"
) -> tuple[str, dict[str, Any] | None]:
    """The Pine script of a library strategy and its latest stored verification of ``kind``
    (None when it was never checked); see :meth:`aio_ray.library.Library.pine_verification`."""
    code = generate(source_for_strategy(lib, strategy_id), kind)
    return code, lib.pine_verification(strategy_id, kind)


def record_verification(lib: Any, strategy_id: str, report: VerificationReport) -> int:
    """Store ``report`` with the strategy; returns the row id."""
    return int(
        lib.record_pine_verification(
            strategy_id,
            report.kind,
            parsed=report.parsed,
            parity_passed=report.parity_passed,
            first_diff_bar=report.first_diff_bar,
            report=report.to_dict(),
        )
    )
