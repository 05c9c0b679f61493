"""Recall of the rule-based detectors on synthetic windows of known patterns.

:func:`recall_table` runs :mod:`aio_ray.patterns.detectors` over the labelled windows of
:mod:`aio_ray.patterns.synthetic_windows`: it sits above both, so the generator never depends on the
detectors it is used to measure.
"""

from __future__ import annotations

from aio_ray.patterns.detectors import detect_candles, detect_chart_patterns, window_patterns
from aio_ray.patterns.synthetic_windows import synthetic_pattern
from aio_ray.patterns.vocabulary import PATTERNS

__all__ = ["recall_table"]


def recall_table(
    seeds: range | list[int] = range(50),
    *,
    n_bars: int = 64,
    noise: float = 0.04,
    last_bar_only: bool = False,
) -> dict[str, dict[str, float]]:
    """How often each pattern's synthetic windows show each vocabulary name.

    ``table[truth][shown]`` is the share of the windows of ``truth`` (one per seed) in which
    :func:`~aio_ray.patterns.detectors.window_patterns` reports ``shown`` (with
    ``last_bar_only``: in which that detector fires on the last bar). The diagonal is each
    detector's recall on its own examples; the rest, how often it fires on the others.
    """
    seeds = list(seeds)
    table: dict[str, dict[str, float]] = {}
    for truth in PATTERNS:
        counts = dict.fromkeys(PATTERNS, 0)
        for s in seeds:
            o, h, lo, c = synthetic_pattern(truth, n_bars=n_bars, seed=s, noise=noise)
            if last_bar_only:
                flags = detect_candles(o, h, lo, c)
                flags.update(detect_chart_patterns(o, h, lo, c, window=n_bars))
                shown = [p for p, f in flags.items() if f[-1]]
            else:
                shown = window_patterns(o, h, lo, c)
            for p in shown:
                counts[p] += 1
        table[truth] = {p: counts[p] / len(seeds) for p in PATTERNS}
    return table
