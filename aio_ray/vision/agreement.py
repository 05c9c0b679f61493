"""How far a backend's chart analyses agree with the rules and with what the market did next.

Two labelled sets:

* **real windows**: each analysed window's own bars give the rule labels (trend by
  :func:`aio_ray.vision.dataset.trend_label`, patterns by
  :func:`aio_ray.patterns.detectors.window_patterns`), and the bars after it the realized move
  (sign of the close ``horizon`` bars after the window's last close);
* **synthetic charts of known patterns** (:func:`aio_ray.patterns.synthetic_windows.synthetic_pattern`):
  the pattern drawn is the truth.

Figures (fractions in [0, 1], NaN when nothing qualifies):

* ``trend_vs_rules``: share of analyses whose trend equals the rule trend;
* ``pattern_precision`` / ``pattern_recall`` vs the rule patterns (micro-averaged over windows),
  ``pattern_jaccard`` their mean per-window Jaccard (two empty sets agree: 1);
* ``direction_hit_rate``: among analyses calling ``up`` or ``down``, the share where the
  realized forward move had that sign (``direction_calls`` counts them); the same for the rule
  trend is ``rules_direction_hit_rate``, and ``base_rate_up`` the share of up moves;
* ``synthetic_recall``: per pattern, the share of its synthetic charts whose analysis names it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from aio_ray.charts.raster import rasterize
from aio_ray.patterns.detectors import window_patterns
from aio_ray.patterns.synthetic_windows import synthetic_pattern
from aio_ray.vision.analysis import AnalysisRecord
from aio_ray.vision.backends import AnalysisRequest
from aio_ray.vision.dataset import trend_label
from aio_ray.vision.summary import indicator_summary

__all__ = ["agreement_on_bars", "synthetic_recall", "synthetic_requests"]


def _ratio(num: float, den: float) -> float:
    return num / den if den else math.nan


def agreement_on_bars(
    records: Sequence[AnalysisRecord], bars: pl.DataFrame, *, horizon: int = 5
) -> dict[str, Any]:
    """Agreement figures of ``records`` (analyses of windows of ``bars``; see module doc).

    ``bars`` are the bars the windows were cut from (BAR_SCHEMA, mid prices used); a record
    whose window is not found in them raises KeyError naming its start.
    """
    ts = bars["ts"].dt.epoch("ms").to_numpy()
    index = {int(t): i for i, t in enumerate(ts)}
    o, h, lo, c = (bars[f"mid_{k}"].to_numpy() for k in ("open", "high", "low", "close"))
    ok = [r for r in records if r.status == "ok" and r.analysis is not None]
    trend_eq = tp = fp = fn = 0
    jacc: list[float] = []
    calls = hits = rule_calls = rule_hits = ups = moves = 0
    for r in ok:
        analysis = r.analysis
        assert analysis is not None  # kept by the filter above
        if r.window_start not in index or r.window_end not in index:
            raise KeyError(f"window starting {r.window_start} ms is not in the bars given")
        a, b = index[r.window_start], index[r.window_end] + 1
        rule_trend, _ = trend_label(h[a:b], lo[a:b], c[a:b])
        rule_pats = set(window_patterns(o[a:b], h[a:b], lo[a:b], c[a:b]))
        got = set(analysis.patterns)
        trend_eq += analysis.trend == rule_trend
        tp += len(got & rule_pats)
        fp += len(got - rule_pats)
        fn += len(rule_pats - got)
        union = got | rule_pats
        jacc.append(len(got & rule_pats) / len(union) if union else 1.0)
        end = b - 1
        if end + horizon < len(c):
            move = np.sign(c[end + horizon] - c[end])
            if move != 0:
                moves += 1
                ups += move > 0
                for trend, is_rule in ((analysis.trend, False), (rule_trend, True)):
                    if trend in ("up", "down"):
                        hit = (move > 0) == (trend == "up")
                        if is_rule:
                            rule_calls += 1
                            rule_hits += hit
                        else:
                            calls += 1
                            hits += hit
    return {
        "windows": len(records),
        "analysed": len(ok),
        "failed": len(records) - len(ok),
        "trend_vs_rules": _ratio(trend_eq, len(ok)),
        "pattern_precision": _ratio(tp, tp + fp),
        "pattern_recall": _ratio(tp, tp + fn),
        "pattern_jaccard": float(np.mean(jacc)) if jacc else math.nan,
        "horizon": horizon,
        "direction_calls": calls,
        "direction_hit_rate": _ratio(hits, calls),
        "rules_direction_hit_rate": _ratio(rule_hits, rule_calls),
        "base_rate_up": _ratio(ups, moves),
    }


def synthetic_requests(
    patterns: Sequence[str],
    *,
    per_pattern: int = 10,
    seed: int = 0,
    n_bars: int = 64,
    size: tuple[int, int] = (448, 448),
) -> list[tuple[str, Any]]:
    """``(truth, AnalysisRequest)`` pairs: ``per_pattern`` synthetic charts of each pattern."""
    out = []
    hour = 3_600_000
    for k, name in enumerate(patterns):
        for i in range(per_pattern):
            o, h, lo, c = synthetic_pattern(name, n_bars=n_bars, seed=seed + i)
            start = (k * per_pattern + i) * n_bars * hour
            out.append(
                (
                    name,
                    AnalysisRequest(
                        image=rasterize(o, h, lo, c, size=size),
                        instrument="EURUSD",
                        timeframe="1h",
                        window_start=start,
                        window_end=start + (n_bars - 1) * hour,
                        summary=indicator_summary(o, h, lo, c),
                        ohlc=np.column_stack([o, h, lo, c]),
                    ),
                )
            )
    return out


def synthetic_recall(truths: Sequence[str], records: Sequence[AnalysisRecord]) -> dict[str, Any]:
    """Per pattern, the share of its synthetic charts whose analysis names it, and the mean."""
    per: dict[str, list[bool]] = {}
    for truth, rec in zip(truths, records, strict=True):
        named = rec.status == "ok" and rec.analysis is not None and truth in rec.analysis.patterns
        per.setdefault(truth, []).append(named)
    recall = {k: float(np.mean(v)) for k, v in per.items()}
    return {
        "per_pattern": recall,
        "mean": float(np.mean(list(recall.values()))) if recall else math.nan,
    }
