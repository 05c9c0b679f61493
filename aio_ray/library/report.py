"""A run's verdict joined with its saved ranking: the one object every surface shows.

``aio rank``, the pipeline summary, ``aio pine --top`` and the Serve app's ``/rankings`` all
read a run through :func:`ranked_verdict` / :func:`run_verdict`, so they say the same thing in
the same words (the verdict's ``message``, written by :mod:`aio_ray.strategies.verdict`).

Three cases:

* the run has a stored verdict: its fields as stored, ``strategies`` being the saved ranking
  (the strategies that passed every gate; possibly none);
* the run predates verdicts (a saved ranking, no verdict): ``verdict`` is "passed" when the
  ranking has rows, "none_passed" otherwise, and the message says that no verdict was stored
  (the ranking was not judged against the significance gates);
* no judged run at all (or a run with neither): ``verdict`` is None, ``strategies`` and
  ``best_rejected`` are empty and the message says why.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "NO_RUN_MESSAGE",
    "VERDICT_KEYS",
    "dumps_verdict",
    "ranked_verdict",
    "ranking_rows",
    "rejected_lines",
    "run_verdict",
    "significance_warning",
]

NO_RUN_MESSAGE = "no ranked run in the library yet (run `aio optimize`)"

VERDICT_KEYS = (
    "verdict", "passed", "candidates", "failed_candidates", "procedures", "effective_trials",
    "pbo", "gates", "best_rejected", "message", "run_id",
)  # fmt: skip
"""The verdict fields every surface carries (``strategies`` comes from the ranking)."""


def ranking_rows(lib: Any, run_id: str | None = None, top: int = 5) -> list[dict[str, Any]]:
    """The top ``top`` of a run's saved ranking (default: the newest ranked run) as JSON-able
    rows: rank, strategy_id, family, timeframe, symbol, params, score, criteria, holdout,
    run_id, rationale."""
    rows = []
    for r in lib.top(run_id=run_id, n=top):
        s = r.strategy
        rows.append({
            "rank": r.rank, "strategy_id": s.id, "family": s.family, "timeframe": s.timeframe,
            "symbol": s.symbol, "params": s.params, "score": r.score, "criteria": r.criteria,
            "holdout": r.holdout, "run_id": r.run_id, "rationale": r.rationale,
        })  # fmt: skip
    return rows


def _empty(run_id: str | None, message: str) -> dict[str, Any]:
    return {
        "verdict": None, "passed": 0, "candidates": 0, "failed_candidates": 0, "procedures": 0,
        "effective_trials": None, "pbo": None, "gates": None, "strategies": [],
        "best_rejected": [], "message": message, "run_id": run_id,
    }  # fmt: skip


def run_verdict(lib: Any, run_id: str | None = None) -> dict[str, Any]:
    """The verdict of ``run_id`` (default: the newest judged or ranked run) as stored, or
    built for a run that predates verdicts, or the empty verdict (``verdict`` None) with the
    reason; see the module docstring. ``strategies`` is the verdict's own list (every
    strategy that passed), when stored."""
    rid = run_id if run_id is not None else lib.latest_ranked_run()
    if rid is None:
        return _empty(None, NO_RUN_MESSAGE)
    stored = lib.verdict(rid)
    if stored is not None:
        out = dict(stored)
        out["run_id"] = rid
        out.setdefault("strategies", [])
        out.setdefault("best_rejected", [])
        return out
    run = lib.get_run(rid)
    if run is None:
        return _empty(rid, f"run {rid!r} is not in the library")
    n_ranked = lib.count("rankings", run_id=rid)
    if n_ranked == 0:
        return _empty(rid, f"run {rid} has no verdict and no ranking yet (status {run.status})")
    out = _empty(rid, "")
    out.update(
        verdict="passed", passed=n_ranked, candidates=run.trials_done,
        failed_candidates=run.trials_failed,
        message=(f"no verdict was stored for run {rid} (it predates verdicts): its "
                 f"{n_ranked} ranked strategies were not judged against the significance "
                 f"gates"),
    )  # fmt: skip
    return out


def ranked_verdict(lib: Any, run_id: str | None = None, top: int = 5) -> dict[str, Any]:
    """:func:`run_verdict` with ``strategies`` the top ``top`` of the run's saved ranking:
    each row as :func:`ranking_rows` gives it, plus the verdict's figures of that strategy
    that the row lacks (dsr, sharpe_annualized, trades, end_exits, profit_factor, pbo,
    fold_picks, ...)."""
    v = run_verdict(lib, run_id)
    rid = v["run_id"]
    rows = [] if rid is None else ranking_rows(lib, run_id=rid, top=top)
    by_sid = {s.get("strategy_id"): s for s in v.get("strategies") or []}
    v["strategies"] = [
        {**{k: x for k, x in by_sid.get(r["strategy_id"], {}).items() if k not in r}, **r}
        for r in rows
    ]
    return v


def _num(x: Any, fmt: str = ".2f") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return format(x, fmt)


def _annual(x: Any) -> str:
    s = _num(x)
    return s if s == "n/a" else f"{s}/yr"


def rejected_lines(v: Mapping[str, Any], indent: str = "  ") -> list[str]:
    """The best rejected strategies of a verdict, one line each, with the gates they failed
    (empty when there are none). No line starts with ``#``: they are not ranked."""
    out = []
    for r in v.get("best_rejected") or []:
        head = f"{r.get('family', '?')} {r.get('timeframe', '?')}"
        figures = ""
        if r.get("dsr") is not None:
            trades = r.get("trades")
            figures = (
                f"  DSR {_num(r.get('dsr'))}  OOS sharpe {_annual(r.get('sharpe_annualized'))}"
                f"  PF {_num(r.get('profit_factor'))}  trades {_num(trades, 'd')}"
                f" ({_num(r.get('end_exits'), 'd')} end exits)  PBO {_num(r.get('pbo'))}"
            )
        failed = "; ".join(str(f) for f in r.get("failed") or []) or "-"
        sid = f"  id {r['strategy_id']}" if r.get("strategy_id") else ""
        out.append(f"{indent}rejected {head}{figures}  failed: {failed}{sid}")
    return out


def significance_warning(v: Mapping[str, Any], strategy_id: str) -> str | None:
    """Why ``strategy_id`` is not significant in verdict ``v`` (the gates it failed and the
    verdict's message), or None when it passed (or ``v`` judged nothing)."""
    if v.get("verdict") is None:
        return None
    if any(s.get("strategy_id") == strategy_id for s in v.get("strategies") or []):
        return None
    rej = next((r for r in v.get("best_rejected") or []
                if r.get("strategy_id") == strategy_id), None)  # fmt: skip
    failed: Sequence[str] = (rej or {}).get("failed") or ["did not pass every gate"]
    return (
        f"failed {'; '.join(str(f) for f in failed)}. Verdict of run {v.get('run_id')}: "
        f"{v.get('message')}"
    )


def dumps_verdict(v: Mapping[str, Any]) -> str:
    """``v`` as one JSON line (non-finite floats as null)."""
    return json.dumps(_finite(v), default=str)


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, Mapping):
        return {str(k): _finite(y) for k, y in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(y) for y in x]
    return x
