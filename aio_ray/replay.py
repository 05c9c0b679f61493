"""Backtest mode: replay ranked strategies from a library on this configuration's data.

A search ranks strategies on one period; this mode takes them (a run's top N, or ids) and
backtests each, unchanged, on the bars of the period configured here, typically one the
search never saw: a forward test. No search, no new ranking.

Each strategy is evaluated on its own timeframe's bars. The first bars only warm the indicators
(``replay.warmup_bars``, or by default the strategy's own warm-up: the first bar where all its
indicators are defined); signals are computed on the whole causal prefix and trades count only
after the warm-up, so a replayed strategy never trades on cold indicators. Costs, fills and
sizing come from this configuration's ``search.backtest`` section.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from aio_ray.bars.arrays import BarArrays
from aio_ray.bars.store import read_bars
from aio_ray.config import AppConfig
from aio_ray.errors import AioError
from aio_ray.library.repo import open_library
from aio_ray.strategies.evaluate import evaluate_window
from aio_ray.strategies.families import get_family

__all__ = ["ReplayError", "format_replay", "replay_strategies"]


class ReplayError(AioError):
    """Backtest mode cannot run: no strategies to replay, or too few bars for one of them."""


def _finite(metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v)
        for k, v in metrics.items()
    }


def replay_strategies(cfg: AppConfig) -> dict[str, Any]:
    """Backtest the configured strategies on ``cfg.data.bars_dir``; write and return a report.

    The report (also written to ``<workdir>/backtest/report.json``) lists, per strategy, its
    id, family, timeframe, parameters, the evaluated window (UTC ms), metrics and trade count,
    beside the figures the strategy had when it was ranked (``ranked_criteria``) so a drop
    from in-sample to forward is visible.

    Raises
    ------
    ReplayError
        The library has no ranked run / unknown strategy ids, or a timeframe has too few bars
        after the warm-up.
    """
    rc = cfg.replay
    lib = open_library(rc.library_url or cfg.library.url)
    chosen: list[tuple[Any, dict[str, Any] | None, int | None]] = []
    if rc.strategy_ids:
        for sid in rc.strategy_ids:
            s = lib.get_strategy(sid)
            if s is None:
                raise ReplayError(f"strategy {sid!r} is not in the library {lib.safe_url}")
            chosen.append((s, None, None))
    else:
        ranked = lib.top(run_id=rc.run_id, n=rc.top)
        if not ranked:
            which = f"run {rc.run_id!r}" if rc.run_id else "any run"
            raise ReplayError(
                f"no ranking of {which} in the library {lib.safe_url}: run a search first"
            )
        chosen = [(r.strategy, r.criteria, r.rank) for r in ranked]

    bars_cache: dict[str, BarArrays] = {}
    rows = []
    for s, criteria, rank in chosen:
        if s.timeframe not in bars_cache:
            bars_cache[s.timeframe] = BarArrays.from_frame(
                read_bars(cfg.data.bars_dir, s.timeframe, cfg.data.symbol), timeframe=s.timeframe
            )
        mb = bars_cache[s.timeframe]
        try:
            start = (
                rc.warmup_bars
                if rc.warmup_bars is not None
                else get_family(s.family).warmup_bars(mb, s.params)
            )
        except AioError as exc:
            raise ReplayError(f"{s.id} ({s.family}, {s.timeframe}): {exc}") from exc
        if len(mb) - start < 2:
            raise ReplayError(
                f"{s.timeframe}: {len(mb)} bars in {cfg.data.bars_dir}, fewer than warm-up "
                f"{start} + 2; configure a longer period or fewer warmup_bars"
            )
        res = evaluate_window(mb, s.family, s.params, start, len(mb), cfg.search.backtest)
        rows.append(
            {
                "rank": rank,
                "strategy_id": s.id,
                "family": s.family,
                "timeframe": s.timeframe,
                "params": s.params,
                "window": [int(mb.ts[start]), int(mb.ts[-1])],
                "bars": len(mb) - start,
                "trades": res.trades.height,
                "metrics": _finite(dict(res.metrics)),
                "ranked_criteria": criteria,
            }
        )
    out = Path(cfg.data.workdir) / "backtest"
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "library": lib.safe_url,
        "run_id": rc.run_id,
        "bars_dir": str(cfg.data.bars_dir),
        "strategies": rows,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    report["report"] = str(out / "report.json")
    return report


def format_replay(report: dict[str, Any]) -> str:
    """Terminal rendering of :func:`replay_strategies`' report."""
    lines = [
        (
            f"backtest mode: {len(report['strategies'])} strategies from {report['library']} "
            f"on {report['bars_dir']}"
        )
    ]
    for r in report["strategies"]:
        m = r["metrics"]
        was = (r.get("ranked_criteria") or {}).get("sharpe")

        def f(x: Any, spec: str) -> str:
            return "n/a" if x is None else format(x, spec)

        lines.append(
            f"  {r['family']:<14} {r['timeframe']:>4}  sharpe {f(m.get('sharpe'), '6.2f')} "
            f"(ranked OOS {f(was, '.2f')})  return {f(m.get('total_return'), '7.2%')}  "
            f"maxDD {f(m.get('max_drawdown'), '6.1%')}  trades {r['trades']:4d}  id {r['strategy_id']}"
        )
    lines.append(f"report: {report['report']}")
    return "\n".join(lines)
