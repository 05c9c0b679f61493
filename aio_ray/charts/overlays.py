"""The one overlay grammar: indicator lines drawn over the candles of every chart.

Training (:mod:`aio_ray.vision.train`), the multimodal dataset (:mod:`aio_ray.vision.dataset`),
inference (:mod:`aio_ray.vision.analyze` through :mod:`aio_ray.charts.render`) and the charts
for people (:mod:`aio_ray.charts.plot`) all read overlay specs and compute their lines here,
so the model sees at inference exactly the kind of chart it was trained on.

Specs::

    "sma_N"        simple moving average of the close over N bars          -> line "sma_N"
    "ema_N"        exponential moving average (alpha 2 / (N + 1))           -> line "ema_N"
    "bb_N"         Bollinger bands, N bars, 2 standard deviations          -> "bb_N_upper", "bb_N_lower"
    "bb_N_MULT"    the same with MULT standard deviations                   -> "bb_N_MULT_upper", ...
    "bb"           "bb_20" (the name datasets written before this module recorded)

Lines are in price (quote currency), one value per bar, NaN while the series has not warmed
up (TradingView's ``ta.*`` semantics). They are computed on the whole bar series a chart is
cut from, never on the chart's window alone: every indicator here is causal (a bar's value
uses that bar and earlier ones only), so a window shows each line as a trader saw it at the
window's last bar, and a window in the middle of a series has no warm-up gap. Colours follow
the order of the lines (see :data:`aio_ray.charts.raster.PALETTE`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from aio_ray import indicators
from aio_ray.charts.raster import MAX_OVERLAYS
from aio_ray.errors import AioError

__all__ = [
    "DEFAULT_OVERLAYS",
    "OverlayError",
    "canonical_overlays",
    "history_bars",
    "line_names",
    "overlay_lines",
]

DEFAULT_OVERLAYS: tuple[str, ...] = ("sma_20", "bb_20")
"""SMA(20) and Bollinger(20, 2) upper and lower bands: three lines a trader reads at a glance."""

_SPEC = re.compile(r"^(sma|ema|bb)_(\d+)(?:_(\d+(?:\.\d+)?))?$")
_ALIASES = {"bb": "bb_20"}


class OverlayError(AioError, ValueError):
    """An overlay spec is not in the grammar, or the specs make too many lines to colour."""


def _parse(spec: str) -> tuple[str, int, float]:
    text = _ALIASES.get(str(spec), str(spec))
    m = _SPEC.match(text)
    if not m:
        raise OverlayError(
            f"unknown overlay {spec!r}; expected 'sma_N', 'ema_N', 'bb_N' or 'bb_N_MULT' "
            "(N bars, MULT standard deviations)"
        )
    kind, length = m.group(1), int(m.group(2))
    if length < 1:
        raise OverlayError(f"overlay {spec!r}: length must be >= 1 bar")
    if m.group(3) is not None and kind != "bb":
        raise OverlayError(f"overlay {spec!r}: only 'bb_N_MULT' takes a multiplier")
    mult = float(m.group(3)) if m.group(3) else 2.0
    if not mult > 0:
        raise OverlayError(f"overlay {spec!r}: the multiplier must be > 0")
    return kind, length, mult


def canonical_overlays(specs: Sequence[str]) -> tuple[str, ...]:
    """``specs`` checked against the grammar, aliases resolved (``"bb"`` -> ``"bb_20"``).

    Raises OverlayError on an unknown spec, a repeated spec or more lines than
    :data:`~aio_ray.charts.raster.MAX_OVERLAYS`.
    """
    if isinstance(specs, str):
        raise OverlayError(f"overlays must be a list of specs, got the string {specs!r}")
    out: list[str] = []
    for spec in specs:
        _parse(spec)
        name = _ALIASES.get(str(spec), str(spec))
        if name in out:
            raise OverlayError(f"overlay {spec!r} is given twice")
        out.append(name)
    n_lines = len(line_names(out))
    if n_lines > MAX_OVERLAYS:
        raise OverlayError(f"overlays {list(specs)} make {n_lines} lines; at most {MAX_OVERLAYS}")
    return tuple(out)


def line_names(specs: Sequence[str]) -> list[str]:
    """The names of the lines ``specs`` draw, in colour order."""
    names: list[str] = []
    for spec in specs:
        kind, _, _ = _parse(spec)
        name = _ALIASES.get(str(spec), str(spec))
        names += [f"{name}_upper", f"{name}_lower"] if kind == "bb" else [name]
    return names


def history_bars(specs: Sequence[str]) -> int:
    """Bars of history before a window that its lines need to be defined (and, for an EMA,
    settled to within 1% of its seed's weight) from the window's first bar: 0 for no specs."""
    need = 0
    for spec in specs:
        kind, length, _ = _parse(spec)
        need = max(need, 4 * length if kind == "ema" else length - 1)
    return need


def overlay_lines(close: np.ndarray, specs: Sequence[str]) -> dict[str, np.ndarray]:
    """Lines of ``specs`` over the closes ``close`` (price), in colour order.

    ``close`` is one series ``(N,)`` or several of equal length ``(B, N)`` (each row its own
    series, e.g. a window with its history); the lines have the same shape. Raises
    OverlayError on a bad spec (see :func:`canonical_overlays`).
    """
    specs = canonical_overlays(specs)
    c = np.asarray(close, dtype=np.float64)
    if c.ndim not in (1, 2):
        raise OverlayError(f"close must be 1-D or 2-D, got shape {c.shape}")
    rows = np.atleast_2d(c)
    out = {name: np.full(rows.shape, np.nan) for name in line_names(specs)}
    for b, series in enumerate(rows):
        series = np.ascontiguousarray(series)
        for spec in specs:
            kind, length, mult = _parse(spec)
            if kind == "sma":
                out[spec][b] = indicators.sma(series, length)
            elif kind == "ema":
                out[spec][b] = indicators.ema(series, length)
            else:
                upper, _, lower = indicators.bbands(series, length, mult)
                out[f"{spec}_upper"][b], out[f"{spec}_lower"][b] = upper, lower
    return out if c.ndim == 2 else {k: v[0] for k, v in out.items()}
