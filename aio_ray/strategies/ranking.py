"""Overfitting-aware ranking of searched strategies (pure functions, out-of-sample only).

What goes in
------------
One :class:`Candidate` per distinct strategy: its walk-forward **out-of-sample** fold results
(:class:`FoldOOS`) and the moments of its concatenated out-of-sample per-period returns
(:class:`~aio_ray.strategies.dsr.ReturnMoments`), plus ``n_trials``, the number of trials the
search tried. Holdout results are deliberately *not* accepted anywhere here: they are reported
beside the score by the library (``Library.top``), never used to compute it.

The score
---------
1. **Gates** (a candidate failing one is never ranked): at least one OOS fold; finite fold
   Sharpe ratios and return moments; total OOS trades ``>= min_trades``; DSR ``>= min_dsr``.
2. **Criteria** (raw values, reported in ``criteria``):

   - ``dsr``: Deflated Sharpe Ratio of the OOS returns given ``n_trials`` trials and the
     variance of the trials' Sharpe ratios (probability the edge is not selection luck);
   - ``sharpe``: mean OOS fold Sharpe ratio (annualized, as the engine reports it);
   - ``max_drawdown``: worst OOS fold drawdown, fraction of peak equity;
   - ``profit_factor``: median OOS fold profit factor (+inf capped at ``pf_cap``);
   - ``positive_folds``: fraction of folds with OOS Sharpe > 0;
   - ``sharpe_dispersion``: standard deviation of the fold Sharpe ratios;
   - ``trades``: total OOS trades.

3. **Components** in [0, 1]: ``dsr`` as is; ``sharpe`` = max(0, tanh(sharpe / sharpe_scale));
   ``drawdown`` = exp(-max_drawdown / drawdown_scale); ``profit_factor`` =
   clip((pf - 1) / (pf_target - 1), 0, 1); ``stability`` = (positive_folds +
   exp(-sharpe_dispersion / dispersion_scale)) / 2.
4. **Score** = sum of weight x component (weights normalized to sum 1), so in [0, 1]; each
   term is reported in ``contributions``.

Diversity
---------
Picks are made greedily by score (ties: ascending ``strategy_id``, so the order never depends
on input order). A candidate is skipped when its family already has ``max_per_family`` picks,
or when its normalized parameter distance to a pick of the same family is below
``min_param_distance``. The distance is the root-mean-square over the union of parameter
names (plus the timeframe) of per-parameter differences: numeric ``|a - b| / (hi - lo)``
(range from ``param_ranges[family][name]``, else the candidates' own min..max), anything
else 0 if equal and 1 if not; so it lies in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

import numpy as np

from aio_ray.strategies import dsr
from aio_ray.strategies.config import RankingConfig
from aio_ray.strategies.dsr import ReturnMoments, deflated_sharpe_ratio, expected_max_sharpe

__all__ = [
    "COMPONENTS",
    "CRITERIA",
    "Candidate",
    "FoldOOS",
    "ParamRanges",
    "RankedStrategy",
    "RankingConfig",
    "Scored",
    "min_track_record_length",
    "param_distance",
    "rank",
    "score_candidate",
    "score_candidates",
    "trials_sharpe_variance",
]

CRITERIA: tuple[str, ...] = (
    "dsr",
    "sharpe",
    "max_drawdown",
    "profit_factor",
    "positive_folds",
    "sharpe_dispersion",
    "trades",
)
COMPONENTS: tuple[str, ...] = ("dsr", "sharpe", "drawdown", "profit_factor", "stability")


@dataclass(frozen=True)
class FoldOOS:
    """The out-of-sample result of one walk-forward fold.

    Attributes
    ----------
    fold
        0-based fold index.
    sharpe
        Annualized Sharpe ratio of the fold's OOS returns.
    max_drawdown
        Peak-to-trough drawdown as a fraction of peak equity; sign ignored (0.12 = 12%).
    profit_factor
        Gross profit / gross loss (+inf without losing trades; NaN without trades).
    trades
        Closed trades in the fold.
    """

    fold: int
    sharpe: float
    max_drawdown: float
    profit_factor: float
    trades: int


@dataclass(frozen=True)
class Candidate:
    """A distinct strategy and its out-of-sample evidence (no holdout figures, by design).

    Attributes
    ----------
    strategy_id
        Stable id (``aio_ray.library.strategy_id``); unique among the candidates.
    family
        Strategy family name.
    params
        Parameter name -> value.
    folds
        Out-of-sample fold results.
    moments
        Moments of the concatenated OOS per-period returns (see
        :func:`aio_ray.strategies.dsr.return_moments`); every candidate must use the same
        period (e.g. daily) so their Sharpe ratios compare.
    timeframe
        Bar timeframe ("1h", ...); a different timeframe counts as a parameter difference.
    end_exits
        OOS trades closed only because a window ended (not counted by the trade gate).
    profit_factor
        Gross profit / gross loss of the whole OOS record; None: the median fold's.
    pbo, pbo_reason
        Probability of backtest overfitting of the candidate's procedure; None with the
        reason when it could not be computed (the gate then fails unless ``max_pbo`` is 1).
    """

    strategy_id: str
    family: str
    params: Mapping[str, Any]
    folds: Sequence[FoldOOS]
    moments: ReturnMoments
    timeframe: str = ""
    end_exits: int = 0
    profit_factor: float | None = None
    pbo: float | None = None
    pbo_reason: str | None = None


@dataclass(frozen=True)
class Scored:
    """A candidate with its criteria, components, score and gate failures (empty = eligible)."""

    candidate: Candidate
    criteria: Mapping[str, float]
    components: Mapping[str, float]
    contributions: Mapping[str, float]
    score: float
    gate_failures: tuple[str, ...]
    expected_max_sharpe: float

    @property
    def eligible(self) -> bool:
        """True when the candidate passed every gate."""
        return not self.gate_failures


@dataclass(frozen=True)
class RankedStrategy:
    """One pick of :func:`rank`, best first.

    ``criteria`` holds the raw criterion values, ``components`` their [0, 1] transforms and
    ``contributions`` weight x component (they sum to ``score``).
    """

    rank: int
    strategy_id: str
    family: str
    params: Mapping[str, Any]
    score: float
    criteria: Mapping[str, float]
    components: Mapping[str, float]
    contributions: Mapping[str, float]
    rationale: str
    neighbours_skipped: tuple[str, ...] = field(default=())


# ----------------------------------------------------------------------------- scoring


def min_track_record_length(
    sharpe: float, skew: float, kurtosis: float, target: float, confidence: float
) -> float:
    """Minimum track record length, periods (see :mod:`aio_ray.strategies.dsr`)."""
    return float(
        dsr.min_track_record_length(
            sharpe, skew, kurtosis, target_sharpe=target, confidence=confidence
        )
    )


def _finite(x: float) -> bool:
    return isinstance(x, Real) and math.isfinite(float(x))


def trials_sharpe_variance(candidates: Sequence[Candidate]) -> float:
    """Sample variance (ddof=1) of the candidates' per-period OOS Sharpe ratios (0 if < 2)."""
    srs = np.array([c.moments.sharpe for c in candidates], dtype=np.float64)
    srs = srs[np.isfinite(srs)]
    return float(np.var(srs, ddof=1)) if srs.size >= 2 else 0.0


def score_candidate(
    candidate: Candidate,
    n_trials: int,
    sharpe_variance: float,
    config: RankingConfig | None = None,
) -> Scored:
    """Gate and score one candidate (see the module docstring for the formulas).

    ``config`` None: the defaults of :class:`RankingConfig`.
    """
    cfg = config or RankingConfig()
    folds = list(candidate.folds)
    failures: list[str] = []
    sr0 = expected_max_sharpe(n_trials, sharpe_variance)
    m = candidate.moments
    if not folds:
        failures.append("no out-of-sample folds")
    fold_sr = np.array([f.sharpe for f in folds], dtype=np.float64)
    if folds and not np.all(np.isfinite(fold_sr)):
        bad = [f.fold for f in folds if not _finite(f.sharpe)]
        failures.append(f"non-finite OOS Sharpe in fold(s) {bad}")
    trades = int(sum(int(f.trades) for f in folds))
    counted = trades - int(candidate.end_exits)
    if counted < cfg.min_trades:
        failures.append(
            f"{counted} OOS trades (forced end exits not counted: {candidate.end_exits}) < "
            f"min_trades {cfg.min_trades}"
        )
    min_trl = math.nan
    if not m.is_finite():
        failures.append(f"return moments not usable (n_obs={m.n_obs}, sharpe={m.sharpe})")
        dsr = 0.0
    else:
        dsr = deflated_sharpe_ratio(
            m.sharpe, m.n_obs, m.skew, m.kurtosis, n_trials, sharpe_variance
        )
        if dsr < cfg.min_dsr:
            failures.append(f"deflated Sharpe {dsr:.3f} < min_dsr {cfg.min_dsr}")
        if not m.sharpe > cfg.min_sharpe:
            failures.append(f"OOS Sharpe {m.sharpe:.4f} per period <= min_sharpe {cfg.min_sharpe}")
        if cfg.min_trl_confidence > 0:
            min_trl = min_track_record_length(
                m.sharpe, m.skew, m.kurtosis, 0.0, cfg.min_trl_confidence
            )
            if not m.n_obs >= min_trl:
                need = "inf" if math.isinf(min_trl) else f"{math.ceil(min_trl)}"
                failures.append(f"record of {m.n_obs} periods < minimum track record length {need}")
    pf_record = candidate.profit_factor
    if pf_record is not None and not (pf_record > cfg.min_profit_factor):
        failures.append(
            f"profit factor {pf_record:.2f} <= min_profit_factor {cfg.min_profit_factor}"
        )
    if cfg.max_pbo < 1.0:
        if candidate.pbo is None:
            failures.append(f"PBO not computable ({candidate.pbo_reason or 'no return matrix'})")
        elif not candidate.pbo < cfg.max_pbo:
            failures.append(f"PBO {candidate.pbo:.2f} >= max_pbo {cfg.max_pbo}")

    ok_sr = fold_sr[np.isfinite(fold_sr)]
    sharpe = float(np.mean(ok_sr)) if ok_sr.size else 0.0
    dispersion = float(np.std(ok_sr)) if ok_sr.size else 0.0
    positive = float(np.mean(ok_sr > 0.0)) if ok_sr.size else 0.0
    dds = [abs(float(f.max_drawdown)) for f in folds if _finite(f.max_drawdown)]
    max_dd = max(dds) if dds else 1.0
    pfs = [
        min(float(f.profit_factor), cfg.pf_cap)
        for f in folds
        if not math.isnan(float(f.profit_factor))
    ]
    pf = float(np.median(pfs)) if pfs else 0.0
    if pf_record is not None:
        pf = min(pf_record, cfg.pf_cap) if not math.isnan(pf_record) else 0.0

    criteria = {
        "dsr": dsr,
        "sharpe": sharpe,
        "max_drawdown": max_dd,
        "profit_factor": pf,
        "positive_folds": positive,
        "sharpe_dispersion": dispersion,
        "trades": float(trades),
        "end_exits": float(candidate.end_exits),
        "min_trl": min_trl,
        "pbo": math.nan if candidate.pbo is None else float(candidate.pbo),
    }
    components = {
        "dsr": dsr,
        "sharpe": max(0.0, math.tanh(sharpe / cfg.sharpe_scale)),
        "drawdown": math.exp(-max_dd / cfg.drawdown_scale),
        "profit_factor": min(max((pf - 1.0) / (cfg.pf_target - 1.0), 0.0), 1.0),
        "stability": 0.5 * (positive + math.exp(-dispersion / cfg.dispersion_scale)),
    }
    w = cfg.weights()
    contributions = {k: w[k] * components[k] for k in COMPONENTS}
    score = math.fsum(contributions.values())
    return Scored(candidate, criteria, components, contributions, score, tuple(failures), sr0)


def score_candidates(
    candidates: Sequence[Candidate],
    n_trials: int,
    *,
    sharpe_variance: float | None = None,
    config: RankingConfig | None = None,
) -> list[Scored]:
    """Gate and score every candidate, in input order.

    ``sharpe_variance`` (variance of the trials' per-period Sharpe ratios) defaults to
    :func:`trials_sharpe_variance` of the candidates. Raises ValueError when ``n_trials`` is
    smaller than the number of candidates or a ``strategy_id`` repeats.
    """
    if not isinstance(n_trials, int) or n_trials < 1:
        raise ValueError(f"n_trials must be an integer >= 1, got {n_trials!r}")
    if n_trials < len(candidates):
        raise ValueError(
            f"n_trials ({n_trials}) is smaller than the number of candidates ({len(candidates)}); "
            "pass every trial the search tried"
        )
    seen: set[str] = set()
    for c in candidates:
        if c.strategy_id in seen:
            raise ValueError(f"strategy_id {c.strategy_id!r} appears twice among the candidates")
        seen.add(c.strategy_id)
    var = trials_sharpe_variance(candidates) if sharpe_variance is None else float(sharpe_variance)
    cfg = config or RankingConfig()
    return [score_candidate(c, n_trials, var, cfg) for c in candidates]


# ----------------------------------------------------------------------------- diversity


ParamRanges = Mapping[str, Mapping[str, tuple[float, float]]]
"""family -> parameter -> (low, high) of its search space."""


def _is_number(v: Any) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


def _pool_ranges(candidates: Sequence[Candidate]) -> dict[str, dict[str, tuple[float, float]]]:
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for c in candidates:
        fam = out.setdefault(c.family, {})
        for k, v in c.params.items():
            if _is_number(v) and math.isfinite(float(v)):
                lo, hi = fam.get(k, (float(v), float(v)))
                fam[k] = (min(lo, float(v)), max(hi, float(v)))
    return out


def param_distance(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    ranges: Mapping[str, tuple[float, float]],
    timeframes: tuple[str, str] = ("", ""),
) -> float:
    """Normalized distance in [0, 1] between two parameter sets of one family.

    Root-mean-square over the union of parameter names (plus the timeframe) of: numeric
    ``|a - b| / (hi - lo)`` clipped to 1 (0 when the range is empty), otherwise 0 if equal
    and 1 if different (a parameter missing on one side counts 1).
    """
    keys = sorted(set(a) | set(b))
    diffs: list[float] = []
    for k in keys:
        if k not in a or k not in b:
            diffs.append(1.0)
            continue
        x, y = a[k], b[k]
        if _is_number(x) and _is_number(y):
            lo, hi = ranges.get(k, (min(x, y), max(x, y)))
            span = float(hi) - float(lo)
            diffs.append(0.0 if span <= 0 else min(abs(float(x) - float(y)) / span, 1.0))
        else:
            diffs.append(0.0 if x == y else 1.0)
    diffs.append(0.0 if timeframes[0] == timeframes[1] else 1.0)
    return math.sqrt(sum(d * d for d in diffs) / len(diffs))


def _fmt_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={params[k]!r}" for k in sorted(params))


def _rationale(
    s: Scored, rank: int, n_trials: int, cfg: RankingConfig, skipped: Sequence[str]
) -> str:
    c, cr = s.candidate, s.criteria
    k = len(c.folds)
    top = max(COMPONENTS, key=lambda name: (s.contributions[name], name))
    text = (
        f"#{rank} {c.family}({_fmt_params(c.params)})"
        + (f" on {c.timeframe}" if c.timeframe else "")
        + f": score {s.score:.3f} from out-of-sample results only. "
        f"DSR {cr['dsr']:.3f} after {n_trials} trials (per-period Sharpe {c.moments.sharpe:.4f} vs "
        f"{s.expected_max_sharpe:.4f} expected from luck, {c.moments.n_obs} returns); "
        f"mean fold Sharpe {cr['sharpe']:.2f}, "
        f"{round(cr['positive_folds'] * k)}/{k} folds positive "
        f"(sd {cr['sharpe_dispersion']:.2f}); worst drawdown {cr['max_drawdown']:.1%}; "
        f"median profit factor {cr['profit_factor']:.2f}; {int(cr['trades'])} trades "
        f"(gate {cfg.min_trades}). Largest contribution: {top} ({s.contributions[top]:.3f})."
    )
    if skipped:
        text += f" Represents {len(skipped)} near-identical parameter set(s) not listed."
    return text


def rank(
    candidates: Sequence[Candidate],
    n_trials: int,
    top: int = 5,
    *,
    sharpe_variance: float | None = None,
    param_ranges: ParamRanges | None = None,
    config: RankingConfig | None = None,
) -> list[RankedStrategy]:
    """The ``top`` best distinct strategies by out-of-sample score, best first.

    Parameters
    ----------
    candidates
        Distinct strategies with their OOS fold results and OOS return moments.
    n_trials
        Trials the search tried (>= number of candidates); deflates the Sharpe ratio.
    top
        How many picks at most (fewer when fewer candidates pass the gates and diversity).
    sharpe_variance
        Variance of the trials' per-period Sharpe ratios; None: estimated from ``candidates``.
    param_ranges
        family -> parameter -> (low, high) used to normalize parameter distances (e.g. the
        search space); parameters absent here use the candidates' own min..max.
    config
        Gates, weights, scales and diversity limits; None: the defaults.

    Returns
    -------
    list[RankedStrategy]
        Ranks 1..k with criteria, components, contributions and a rationale.
    """
    if top < 1:
        raise ValueError(f"top must be >= 1, got {top}")
    config = config or RankingConfig()
    scored = score_candidates(candidates, n_trials, sharpe_variance=sharpe_variance, config=config)
    eligible = sorted(
        (s for s in scored if s.eligible), key=lambda s: (-s.score, s.candidate.strategy_id)
    )
    pool = _pool_ranges([s.candidate for s in scored])
    for fam, given in (param_ranges or {}).items():
        pool.setdefault(fam, {}).update(
            {k: (float(lo), float(hi)) for k, (lo, hi) in given.items()}
        )

    picks: list[Scored] = []
    skipped: dict[str, list[str]] = {}
    per_family: dict[str, int] = {}
    for s in eligible:
        if len(picks) == top:
            break
        c = s.candidate
        if per_family.get(c.family, 0) >= config.max_per_family:
            continue
        near = None
        for p in picks:
            if p.candidate.family != c.family:
                continue
            d = param_distance(
                c.params,
                p.candidate.params,
                pool.get(c.family, {}),
                (c.timeframe, p.candidate.timeframe),
            )
            if d < config.min_param_distance:
                near = p
                break
        if near is not None:
            skipped.setdefault(near.candidate.strategy_id, []).append(c.strategy_id)
            continue
        picks.append(s)
        per_family[c.family] = per_family.get(c.family, 0) + 1

    out = []
    for i, s in enumerate(picks, start=1):
        c = s.candidate
        sk = tuple(skipped.get(c.strategy_id, ()))
        out.append(
            RankedStrategy(
                rank=i,
                strategy_id=c.strategy_id,
                family=c.family,
                params=dict(c.params),
                score=s.score,
                criteria=dict(s.criteria),
                components=dict(s.components),
                contributions=dict(s.contributions),
                rationale=_rationale(s, i, n_trials, config, sk),
                neighbours_skipped=sk,
            )
        )
    return out
