"""Synthetic OHLC windows that contain a known pattern completing at their last bar.

They are the labelled examples of the detectors' recall tests and of the vision agreement
table: each one is drawn from a template (piecewise-linear key points in units of the
pattern's height, lightly jittered per seed) plus seeded noise, *independently* of the
detectors, so a detector's hit rate on them is a real measurement.

Bars: prices around :data:`BASE_PRICE` with the pattern :data:`HEIGHT` (50 pips) tall; each
close is the template plus Gaussian noise of ``noise`` heights; each bar opens at the previous
close (continuous FX market) and gets wicks of about ``0.6 * noise`` heights. Candle patterns
sit on a 5-bar+ trend of the direction their definition asks for.
"""

from __future__ import annotations

import numpy as np

from aio_ray.patterns.vocabulary import PATTERNS, PatternError

__all__ = ["BASE_PRICE", "HEIGHT", "random_walk_ohlc", "synthetic_pattern"]

BASE_PRICE = 1.10
"""Price level of the windows, quote currency."""
HEIGHT = 0.005
"""Height of a chart pattern (template unit), quote currency."""

# Key points (x in [0, 1] over bars 0 .. n-2, y in heights) and the last bar's close (y).
_TEMPLATES: dict[str, tuple[tuple[tuple[float, float], ...], float]] = {
    "double_top": (((0.0, 0.1), (0.3, 1.0), (0.55, 0.4), (0.78, 1.0), (1.0, 0.62)), 0.1),
    "head_and_shoulders": (
        (
            (0.0, 0.1),
            (0.2, 0.72),
            (0.34, 0.35),
            (0.5, 1.15),
            (0.66, 0.35),
            (0.82, 0.72),
            (1.0, 0.55),
        ),
        0.05,
    ),
    "ascending_triangle": (
        (
            (0.0, 0.45),
            (0.12, 1.0),
            (0.3, 0.0),
            (0.48, 1.0),
            (0.66, 0.35),
            (0.84, 1.0),
            (0.93, 0.62),
            (1.0, 0.85),
        ),
        1.3,
    ),
    "symmetric_triangle": (
        (
            (0.0, 0.55),
            (0.12, 1.1),
            (0.3, 0.0),
            (0.48, 0.9),
            (0.66, 0.18),
            (0.84, 0.72),
            (0.93, 0.32),
            (1.0, 0.5),
        ),
        0.95,
    ),
    "bull_flag": (
        (
            (0.0, 0.05),
            (0.56, -0.05),
            (0.74, 1.0),
            (0.79, 0.9),
            (0.87, 0.86),
            (0.94, 0.8),
            (1.0, 0.76),
        ),
        1.1,
    ),
}
_MIRROR = {
    "double_bottom": "double_top",
    "inverse_head_and_shoulders": "head_and_shoulders",
    "descending_triangle": "ascending_triangle",
    "bear_flag": "bull_flag",
}


def _check(name: str, n_bars: int, noise: float) -> None:
    if name not in PATTERNS:
        raise PatternError(f"synthetic_pattern: unknown pattern {name!r}; known: {list(PATTERNS)}")
    if isinstance(n_bars, bool) or not isinstance(n_bars, (int, np.integer)) or n_bars < 32:
        raise PatternError(f"synthetic_pattern: n_bars must be an int >= 32, got {n_bars!r}")
    if not (0.0 <= noise <= 0.2):
        raise PatternError(f"synthetic_pattern: noise must be in [0, 0.2] heights, got {noise!r}")


def _bars(
    closes_y: np.ndarray, rng: np.random.Generator, noise: float, last_body: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = len(closes_y)
    c = BASE_PRICE + HEIGHT * (closes_y + noise * rng.standard_normal(n))
    o = np.empty(n)
    o[0] = c[0] + HEIGHT * noise * rng.standard_normal()
    o[1:] = c[:-1]
    up = HEIGHT * 0.6 * noise * np.abs(rng.standard_normal(n))
    dn = HEIGHT * 0.6 * noise * np.abs(rng.standard_normal(n))
    h = np.maximum(o, c) + up
    lo = np.minimum(o, c) - dn
    return o, h, lo, c


def _chart(name: str, n: int, rng: np.random.Generator, noise: float) -> tuple[np.ndarray, ...]:
    base = _MIRROR.get(name, name)
    keys, last = _TEMPLATES[base]
    xs = np.array([k[0] for k in keys])
    ys = np.array([k[1] for k in keys])
    # jitter interior key points: +-1.5% of the span in time, +-0.04 heights in price
    xs[1:-1] += rng.uniform(-0.015, 0.015, len(xs) - 2)
    ys[1:-1] += rng.uniform(-0.04, 0.04, len(ys) - 2)
    path = np.interp(np.arange(n - 1) / (n - 2), xs, ys)
    y = np.append(path, last)
    if base == "symmetric_triangle" and rng.random() < 0.5:
        y[-1] = 0.0  # a downside breakout half of the time
    if name in _MIRROR:
        y = 1.0 - y
    return _bars(y, rng, noise)


def _trend(n: int, rng: np.random.Generator, direction: float) -> np.ndarray:
    """A random walk ending with a clear 8-bar move in ``direction`` (heights)."""
    steps = 0.08 * rng.standard_normal(n)
    steps[-9:] += direction * 0.12
    return np.cumsum(steps)


def _candle(name: str, n: int, rng: np.random.Generator, noise: float) -> tuple[np.ndarray, ...]:
    direction = {
        "hammer": -1.0,
        "bullish_engulfing": -1.0,
        "shooting_star": 1.0,
        "bearish_engulfing": 1.0,
    }.get(name, 0.0)
    y = _trend(n, rng, direction)
    o, h, lo, c = _bars(y, rng, max(noise, 0.02))
    u = HEIGHT
    r = u * rng.uniform(0.25, 0.45)  # range of the pattern's last bar
    if name == "doji":
        o[-1] = c[-2]
        c[-1] = o[-1] + r * rng.uniform(-0.05, 0.05)
        top = r * rng.uniform(0.2, 0.8)
        h[-1] = max(o[-1], c[-1]) + top
        lo[-1] = h[-1] - r
    elif name in ("hammer", "shooting_star"):
        body = r * rng.uniform(0.12, 0.25)
        small = r * rng.uniform(0.0, 0.06)  # the short shadow
        o[-1] = c[-2]
        c[-1] = o[-1] + (body if rng.random() < 0.5 else -body)
        if name == "hammer":
            h[-1] = max(o[-1], c[-1]) + small
            lo[-1] = h[-1] - r
        else:
            lo[-1] = min(o[-1], c[-1]) - small
            h[-1] = lo[-1] + r
    else:
        s = 1.0 if name == "bullish_engulfing" else -1.0
        b1 = u * rng.uniform(0.05, 0.12)  # bar n-2: opposite colour
        o[-2] = c[-3]
        c[-2] = o[-2] - s * b1
        h[-2] = max(o[-2], c[-2]) + abs(b1) * rng.uniform(0.1, 0.5)
        lo[-2] = min(o[-2], c[-2]) - abs(b1) * rng.uniform(0.1, 0.5)
        o[-1] = c[-2]
        c[-1] = o[-2] + s * b1 * rng.uniform(0.3, 1.0)
        h[-1] = max(o[-1], c[-1]) + b1 * rng.uniform(0.05, 0.4)
        lo[-1] = min(o[-1], c[-1]) - b1 * rng.uniform(0.05, 0.4)
    return o, h, lo, c


def synthetic_pattern(
    name: str, *, n_bars: int = 64, seed: int = 0, noise: float = 0.04
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A window of ``n_bars`` OHLC bars whose last bar completes pattern ``name``.

    Parameters
    ----------
    name : a vocabulary name (:data:`~aio_ray.patterns.vocabulary.PATTERNS`).
    n_bars : bars in the window (>= 32).
    seed : seed of the jitter and noise (same seed, same bars).
    noise : standard deviation of the closes around the template, in pattern heights
        (:data:`HEIGHT`, 50 pips); 0 gives the clean template, 0.2 is very noisy.

    Returns
    -------
    (open, high, low, close) : float64 arrays, quote currency, oldest first.
    """
    _check(name, n_bars, noise)
    rng = np.random.default_rng([seed, PATTERNS.index(name)])
    n = int(n_bars)
    if name in _TEMPLATES or name in _MIRROR:
        bars = _chart(name, n, rng, float(noise))
    else:
        bars = _candle(name, n, rng, float(noise))
    return tuple(np.ascontiguousarray(a, dtype=np.float64) for a in bars)  # type: ignore[return-value]


def random_walk_ohlc(
    n_bars: int, *, seed: int = 0, step: float = 1e-4
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A pattern-free reference: a Gaussian random walk of closes (``step`` price per bar),
    each bar opening at the previous close, wicks of about half a step; float64 arrays."""
    rng = np.random.default_rng(seed)
    c = BASE_PRICE + np.cumsum(step * rng.standard_normal(n_bars))
    o = np.empty(n_bars)
    o[0] = BASE_PRICE
    o[1:] = c[:-1]
    h = np.maximum(o, c) + 0.5 * step * np.abs(rng.standard_normal(n_bars))
    lo = np.minimum(o, c) - 0.5 * step * np.abs(rng.standard_normal(n_bars))
    return o, h, lo, c
