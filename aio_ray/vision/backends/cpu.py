"""The CPU backend: our ChartNet classifier (torch) plus rule-based support/resistance.

``trend`` is the arg-max of ChartNet's trend probabilities and ``confidence`` that
probability; ``patterns`` are the names whose probability reaches
``settings.pattern_threshold``; ``levels`` come from
:func:`aio_ray.patterns.detectors.support_resistance` on the request's bars (none without
bars); the rationale is a template naming the reading and its probabilities. The model id is
:data:`aio_ray.vision.model.MODEL_ID`. There is no text to parse, so ``raw_text`` is None and
every decodable chart gives an ``ok`` record in one attempt.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np

from aio_ray.patterns.detectors import support_resistance
from aio_ray.patterns.vocabulary import PATTERNS, TRENDS
from aio_ray.vision.analysis import MAX_LEVELS, MAX_RATIONALE_CHARS, AnalysisRecord, ChartAnalysis
from aio_ray.vision.backends.base import (
    AnalysisRequest,
    BackendUnavailableError,
    failed_record,
    ok_record,
    request_palette,
)

__all__ = ["CpuBackend", "analysis_from_probs"]

_SHOWN_PATTERNS = 4  # patterns named in the rationale; the rest are counted
_TREND_WORDS = {"up": "an uptrend", "down": "a downtrend", "sideways": "a sideways market"}


def _rationale(trend: str, p_trend: float, patterns: list[tuple[str, float]]) -> str:
    head = f"ChartNet reads {_TREND_WORDS[trend]} (p={p_trend:.2f})"
    if not patterns:
        text = f"{head} and sees none of the vocabulary's patterns above threshold."
    else:
        shown = ", ".join(f"{name} (p={p:.2f})" for name, p in patterns[:_SHOWN_PATTERNS])
        more = len(patterns) - _SHOWN_PATTERNS
        tail = f" and {more} more" if more > 0 else ""
        text = f"{head} with {shown}{tail}."
    return text[:MAX_RATIONALE_CHARS]


def analysis_from_probs(
    trend_probs: np.ndarray,
    pattern_probs: np.ndarray,
    *,
    threshold: float,
    levels: Sequence[float] = (),
) -> ChartAnalysis:
    """The :class:`ChartAnalysis` of one chart from ChartNet's probabilities.

    Parameters
    ----------
    trend_probs : (3,) probabilities in ``TRENDS`` order.
    pattern_probs : (len(PATTERNS),) independent probabilities in ``PATTERNS`` order.
    threshold : a pattern is reported when its probability is >= this.
    levels : support/resistance prices (non-finite and non-positive ones are dropped, at
        most :data:`MAX_LEVELS` kept).
    """
    tp = np.asarray(trend_probs, dtype=np.float64)
    pp = np.asarray(pattern_probs, dtype=np.float64)
    i = int(np.argmax(tp))
    found = [(PATTERNS[j], float(pp[j])) for j in np.flatnonzero(pp >= threshold)]
    found.sort(key=lambda kv: -kv[1])
    good = [float(x) for x in levels if math.isfinite(float(x)) and float(x) > 0][:MAX_LEVELS]
    conf = float(min(1.0, max(0.0, tp[i])))
    return ChartAnalysis.model_validate(
        {
            "trend": TRENDS[i],
            "patterns": [name for name, _ in found],
            "levels": good,
            "confidence": conf,
            "rationale": _rationale(TRENDS[i], conf, found),
        }
    )


class CpuBackend:
    """ChartNet on CPU: loads the weights once, then analyses batches of charts.

    Parameters
    ----------
    settings : :class:`aio_ray.vision.backends.VisionSettings` (uses ``cpu_weights``,
        ``pattern_threshold``, ``max_levels``, ``batch_size``).
    """

    name = "cpu"

    def __init__(self, settings: object) -> None:
        try:
            # optional heavy dependency: ChartNet needs torch (vision extra)
            from aio_ray.vision import model as chartnet
        except ImportError as exc:  # torch missing
            raise BackendUnavailableError(
                "cpu", f"the package {exc.name or 'torch'}", "pip install -e '.[vision]'"
            ) from exc
        self._chartnet = chartnet
        self.settings = settings
        self.net = chartnet.load_chartnet(getattr(settings, "cpu_weights", None))
        self.model_id: str = chartnet.MODEL_ID
        self.threshold = float(getattr(settings, "pattern_threshold", 0.5))
        self.max_levels = int(getattr(settings, "max_levels", 4))
        self.batch_size = int(getattr(settings, "batch_size", 64))

    def _levels(self, req: AnalysisRequest) -> list[float]:
        if req.ohlc is None or self.max_levels == 0:
            return []

        o = req.ohlc
        return list(support_resistance(o[:, 1], o[:, 2], o[:, 3], max_levels=self.max_levels))

    def analyze(self, requests: Sequence[AnalysisRequest]) -> list[AnalysisRecord]:
        """One record per request, in order (charts of different sizes are batched apart)."""
        t0 = time.perf_counter()
        out: list[AnalysisRecord | None] = [None] * len(requests)
        groups: dict[tuple[int, int], list[tuple[int, np.ndarray]]] = {}
        for i, req in enumerate(requests):
            try:
                img = request_palette(req)
                if img.size and int(img.max()) >= self.net.n_colors:
                    raise ValueError(
                        f"palette index {int(img.max())} beyond the model's {self.net.n_colors} colours"
                    )
            except Exception as exc:  # noqa: BLE001 - one bad chart must not sink the batch
                out[i] = failed_record(
                    req,
                    f"cannot read chart image: {exc}",
                    backend=self.name,
                    model=self.model_id,
                    latency_ms=0.0,
                )
                continue
            groups.setdefault(img.shape, []).append((i, img))
        n_ok = sum(len(g) for g in groups.values())
        probs: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for items in groups.values():
            pred = self._chartnet.predict(
                self.net, np.stack([img for _, img in items]), batch_size=self.batch_size
            )
            for k, (i, _) in enumerate(items):
                probs[i] = (pred.trend_probs[k], pred.pattern_probs[k])
        per_chart_ms = (time.perf_counter() - t0) * 1000.0 / max(1, n_ok)
        for i, (tp, pp) in probs.items():
            req = requests[i]
            try:
                analysis = analysis_from_probs(
                    tp, pp, threshold=self.threshold, levels=self._levels(req)
                )
            except Exception as exc:  # noqa: BLE001 - the window fails, the batch goes on
                out[i] = failed_record(
                    req,
                    f"analysis failed: {exc}",
                    backend=self.name,
                    model=self.model_id,
                    latency_ms=per_chart_ms,
                )
                continue
            out[i] = ok_record(
                req, analysis, backend=self.name, model=self.model_id, latency_ms=per_chart_ms
            )
        return [r for r in out if r is not None]
