"""The verdict of a search: which procedures pass every gate, and why the others do not (pure).

Input: the nested walk-forward records of every procedure (family x timeframe, see
:mod:`aio_ray.strategies.selection`) and the sampled out-of-sample return matrices of their
candidates. Steps:

1. **Effective trials.** Every evaluated candidate of the run counts against significance:
   the candidates' out-of-sample return series (all procedures, common trading days) are
   clustered by correlation; ``N`` for the Deflated Sharpe Ratio is the number of clusters
   (:func:`aio_ray.strategies.effective_trials.effective_trials`). ``V``, the variance of the
   trials' Sharpe ratios under the null, is by default ``1 / (T - 1)``: what a zero-skill
   Sharpe estimate over ``T`` periods varies by. The observed variance of the cluster
   representatives is reported beside it (and can be chosen, ``dsr_variance``); it also holds
   real differences in skill (a strategy and its mirror image), which would make an edge
   impossible to find exactly when one exists. Failed candidates are left out; raw and
   effective counts are both reported.
2. **PBO** per procedure and for the whole run, by combinatorially symmetric cross-validation
   of the same matrices (:func:`aio_ray.strategies.pbo.pbo_cscv`).
3. **Gates** (:class:`aio_ray.strategies.ranking.RankingConfig`, all on by default): deflated
   Sharpe, record Sharpe > 0, profit factor > 1, trades without forced end exits, record length
   >= the minimum track record length, PBO below its threshold. Then the diversity-aware score
   of :func:`aio_ray.strategies.ranking.rank` orders the ones that pass. The list is never
   padded: it holds 0 to ``top`` strategies.
4. **The verdict** (:func:`verdict`): ``"passed"`` or ``"none_passed"``, counts (``eligible``:
   procedures that pass every gate; ``passed``: those ranked, at most ``top`` after the
   diversity limits), the ranked strategies and the best rejected ones with the gates each failed, and a message in plain
   words that every surface (CLI, pipeline summary, API, dashboard, Pine export) repeats.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aio_ray.strategies.config import RankingConfig
from aio_ray.strategies.effective_trials import effective_trials
from aio_ray.strategies.metrics import TRADING_DAYS_PER_YEAR
from aio_ray.strategies.pbo import pbo_cscv
from aio_ray.strategies.ranking import (
    Candidate,
    FoldOOS,
    ParamRanges,
    RankedStrategy,
    Scored,
    rank,
    score_candidates,
)
from aio_ray.strategies.selection import ProcedureRecord, aligned

__all__ = ["NONE_PASSED", "PASSED", "Judgement", "judge", "plain_json", "verdict_message"]

PASSED = "passed"
NONE_PASSED = "none_passed"


@dataclass(frozen=True)
class Judgement:
    """What :func:`judge` found (``verdict`` is the JSON-able summary)."""

    ranking: tuple[RankedStrategy, ...]
    candidates: dict[str, Candidate]
    records: dict[str, ProcedureRecord]
    scored: tuple[Scored, ...]
    verdict: dict[str, Any]


def plain_json(x: Any) -> Any:
    """``x`` as plain JSON data: numpy scalars to Python, NaN/inf floats to None, dict keys to
    str, tuples to lists (recursively)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, (np.floating, np.integer)):
        return plain_json(x.item())
    if isinstance(x, dict):
        return {str(k): plain_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain_json(v) for v in x]
    return x


def _annual(per_period: float) -> float:
    return per_period * math.sqrt(TRADING_DAYS_PER_YEAR)


def _effective(mat: np.ndarray, n_ok: int, seed: int) -> dict[str, Any]:
    if mat.ndim != 2 or mat.shape[0] < 2 or mat.shape[1] < 2:
        return {
            "n_raw": n_ok,
            "n_effective": max(1, n_ok),
            "sharpe_variance": None,
            "method": "raw count (no return matrix to cluster)",
        }
    eff = effective_trials(mat, seed=seed)
    d = eff.to_dict()
    d["n_raw"] = n_ok
    d["sampled_columns"] = int(mat.shape[1])
    return d


def _pbo(mat: np.ndarray, blocks: int, seed: int) -> dict[str, Any]:
    if mat.ndim != 2 or mat.size == 0:
        return {"pbo": None, "reason": "no evaluated candidates"}
    return pbo_cscv(mat, n_blocks=blocks, seed=seed).to_dict()


def _dsr_variance(mode: str, observed: float | None, n_obs: Sequence[int]) -> float | None:
    """V for the DSR: the zero-skill null 1 / (T - 1) (T: the median record length), the
    observed variance of the cluster representatives, or the larger of the two."""
    t = [n for n in n_obs if n >= 2]
    null = 1.0 / (float(np.median(t)) - 1.0) if t else None
    if mode == "observed":
        return observed
    if mode == "null" or observed is None:
        return null
    return max(v for v in (null, observed) if v is not None)


def _fold_oos(rec: ProcedureRecord) -> list[FoldOOS]:
    return [
        FoldOOS(
            f.fold,
            f.oos.get("sharpe", math.nan),
            abs(f.oos.get("max_drawdown", math.nan)),
            f.oos.get("profit_factor", math.nan),
            int(f.oos.get("trades", 0)),
        )
        for f in rec.folds
        if f.number >= 0
    ]


def judge(
    records: Sequence[ProcedureRecord],
    samples: Mapping[tuple[str, str], tuple[np.ndarray, np.ndarray]],
    *,
    strategy_id: Callable[[str, Mapping[str, Any], str], str],
    config: RankingConfig | None = None,
    top: int = 5,
    param_ranges: ParamRanges | None = None,
    n_failed: int = 0,
    errors: Mapping[str, int] | None = None,
    pbo_blocks: int = 16,
    seed: int = 0,
) -> Judgement:
    """Gate, score and rank the procedures; the verdict says what passed (see module doc).

    ``strategy_id(family, params, timeframe)`` names a strategy; ``errors`` counts failed
    candidates by reason (reported when nothing could be evaluated).
    """
    cfg = config or RankingConfig()
    n_ok = sum(r.n_ok for r in records)
    per_proc: dict[tuple[str, str], dict[str, Any]] = {}
    for key, (_, mat) in samples.items():
        per_proc[key] = _pbo(mat, pbo_blocks, seed)
    _, run_mat, _ = aligned(samples)
    eff = _effective(run_mat, n_ok, seed)
    run_pbo = (
        _pbo(run_mat, pbo_blocks, seed) if run_mat.size else {"pbo": None, "reason": "no matrix"}
    )
    n_eff = int(eff["n_effective"])
    var = eff.get("sharpe_variance")

    cands: dict[str, Candidate] = {}
    recs: dict[str, ProcedureRecord] = {}
    unusable: list[dict[str, Any]] = []
    for rec in records:
        missing = [f.fold for f in rec.folds if f.number < 0]
        if rec.final is None or missing or not rec.folds:
            unusable.append(
                {
                    "family": rec.family,
                    "timeframe": rec.timeframe,
                    "strategy_id": None,
                    "failed": [
                        f"no evaluated candidate to choose for fold(s) {missing}"
                        if missing
                        else "no evaluated candidate"
                    ],
                }
            )
            continue
        sid = strategy_id(rec.family, rec.final.params, rec.timeframe)
        pb = per_proc.get((rec.family, rec.timeframe), {"pbo": None, "reason": "no matrix"})
        cands[sid] = Candidate(
            sid,
            rec.family,
            dict(rec.final.params),
            _fold_oos(rec),
            rec.moments,
            rec.timeframe,
            end_exits=rec.end_exits,
            profit_factor=rec.profit_factor,
            pbo=pb.get("pbo"),
            pbo_reason=pb.get("reason"),
        )
        recs[sid] = rec
    ordered = [cands[k] for k in sorted(cands)]
    n_trials = max(n_eff, len(ordered), 1)
    var = _dsr_variance(cfg.dsr_variance, var, [c.moments.n_obs for c in ordered])
    eff["dsr_sharpe_variance"] = var
    eff["dsr_variance_mode"] = cfg.dsr_variance
    scored = score_candidates(ordered, n_trials, sharpe_variance=var, config=cfg) if ordered else []
    ranking = (
        rank(ordered, n_trials, top=top, sharpe_variance=var, param_ranges=param_ranges, config=cfg)
        if ordered
        else []
    )
    v = _verdict(
        cfg,
        ranking,
        scored,
        recs,
        unusable,
        n_ok,
        n_failed,
        eff,
        run_pbo,
        per_proc,
        errors or {},
        n_trials,
    )
    return Judgement(tuple(ranking), cands, recs, tuple(scored), v)


def _summary(s: Scored, rec: ProcedureRecord) -> dict[str, Any]:
    c, cr = s.candidate, s.criteria
    return {
        "strategy_id": c.strategy_id,
        "family": c.family,
        "timeframe": c.timeframe,
        "params": dict(c.params),
        "score": s.score,
        "dsr": cr["dsr"],
        "sharpe_per_period": c.moments.sharpe,
        "sharpe_annualized": _annual(c.moments.sharpe),
        "record_periods": c.moments.n_obs,
        "min_trl": cr.get("min_trl"),
        "trades": int(cr["trades"]),
        "end_exits": c.end_exits,
        "profit_factor": c.profit_factor,
        "net_profit": rec.net_profit,
        "pbo": c.pbo,
        "candidates": rec.n_ok,
        "failed": list(s.gate_failures),
        "fold_picks": [
            {
                "fold": f.fold,
                "number": f.number,
                "params": f.params,
                "is_objective": f.is_objective,
                "oos_sharpe": f.oos.get("sharpe"),
                "oos_trades": f.oos.get("trades"),
            }
            for f in rec.folds
        ],
    }


def _verdict(
    cfg: RankingConfig,
    ranking: Sequence[RankedStrategy],
    scored: Sequence[Scored],
    recs: Mapping[str, ProcedureRecord],
    unusable: list[dict[str, Any]],
    n_ok: int,
    n_failed: int,
    eff: dict[str, Any],
    run_pbo: dict[str, Any],
    per_proc: Mapping[tuple[str, str], dict[str, Any]],
    errors: Mapping[str, int],
    n_trials: int,
) -> dict[str, Any]:
    by_sid = {s.candidate.strategy_id: s for s in scored}
    strategies = []
    for r in ranking:
        d = _summary(by_sid[r.strategy_id], recs[r.strategy_id])
        d.update(rank=r.rank, rationale=r.rationale)
        strategies.append(d)
    rejected = sorted(
        (s for s in scored if not s.eligible),
        key=lambda s: (-s.criteria["dsr"], -s.score, s.candidate.strategy_id),
    )
    best_rejected = [_summary(s, recs[s.candidate.strategy_id]) for s in rejected[:3]]
    best_rejected += unusable[: max(0, 3 - len(best_rejected))]
    passed = len(strategies)
    out = {
        "verdict": PASSED if passed else NONE_PASSED,
        "passed": passed,
        "eligible": sum(1 for s in scored if s.eligible),
        "candidates": n_ok,
        "failed_candidates": n_failed,
        "procedures": len(recs) + len(unusable),
        "raw_trials": n_ok,
        "effective_trials": int(eff["n_effective"]),
        "trials_for_dsr": n_trials,
        "effective_trials_detail": eff,
        "pbo": run_pbo.get("pbo"),
        "pbo_detail": run_pbo,
        "pbo_by_procedure": [
            {"family": f, "timeframe": t, **d}
            for (f, t), d in sorted(per_proc.items(), key=lambda kv: kv[0])
        ],
        "gates": {
            "min_dsr": cfg.min_dsr,
            "min_sharpe": cfg.min_sharpe,
            "min_profit_factor": cfg.min_profit_factor,
            "min_trades": cfg.min_trades,
            "min_trl_confidence": cfg.min_trl_confidence,
            "max_pbo": cfg.max_pbo,
        },
        "strategies": strategies,
        "best_rejected": best_rejected,
        "errors": dict(sorted(errors.items(), key=lambda kv: -kv[1])[:5]),
    }
    out["message"] = verdict_message(out)
    plain: dict[str, Any] = plain_json(out)
    return plain


def verdict_message(v: Mapping[str, Any]) -> str:
    """The verdict in plain words (one sentence or two)."""
    n = int(v.get("candidates") or 0)
    failed = int(v.get("failed_candidates") or 0)
    if n == 0:
        errs = v.get("errors") or {}
        why = next(iter(errs), "no candidate was evaluated")
        return f"0 of {failed:,} candidates could be evaluated, so nothing passed: {why}"
    k = int(v.get("passed") or 0)
    eff = v.get("effective_trials")
    pbo = f", PBO {v['pbo']:.2f}" if v.get("pbo") is not None else ""
    if k:
        e = max(int(v.get("eligible") or k), k)
        names = ", ".join(f"{s['family']} {s['timeframe']}" for s in v.get("strategies", []))
        ranked = f"the top {k}: {names}" if k < e else names
        return (
            f"{e} of {v.get('procedures')} procedures passed every gate ({n:,} candidates, "
            f"{eff:,} effective trials{pbo}): {ranked}. "
            f"Parameters were chosen in-sample only; figures are out-of-sample."
        )
    tail = f" ({eff:,} effective trials{pbo})"
    best = (v.get("best_rejected") or [None])[0]
    if not best or best.get("dsr") is None:
        reason = "; ".join((best or {}).get("failed") or ["no procedure could be scored"])
        return f"0 of {n:,} candidates passed{tail}: {reason}."
    fails = best.get("failed") or []
    gate = fails[0] if fails else "a gate"
    return (
        f"0 of {n:,} candidates passed{tail}: best deflated Sharpe {best['dsr']:.2f} "
        f"< {v['gates']['min_dsr']} ({best['family']} {best['timeframe']}; first gate "
        f"failed: {gate})."
    )
