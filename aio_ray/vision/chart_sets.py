"""Labelled synthetic chart sets for ChartNet (training and held-out) and their metrics.

Stable public API::

    labelled_charts(...) -> LabelledCharts        # the labelled set (deterministic per seed)
    evaluate(net, charts) -> dict                 # trend accuracy, per-pattern F1
    OVERLAY_SETS                                  # the overlay sets charts are drawn with

Charts (all generated here, deterministic for a seed; labels from the same rules the
dataset uses, :mod:`aio_ray.vision.dataset`):

(a) ``patterns_per_name`` charts of every vocabulary name from
    :func:`aio_ray.patterns.detectors.synthetic_pattern` (noise drawn in 0.02..0.12
    heights); pattern labels = the name it was built with plus whatever
    :func:`~aio_ray.patterns.detectors.window_patterns` finds in it;
(b) ``trend_windows`` random-walk windows with a drift drawn so that up, down and sideways
    windows are all common (some with a mid-window reversal), rule labels;
(c) windows of ``synthetic_days`` days of :mod:`aio_ray.data.synthetic_ticks` EUR/USD ticks turned
    into 5m and 15m bars, rule labels.

Every chart is drawn by :func:`aio_ray.charts.raster.rasterize_batch` at 448x448 with one of
the overlay sets a chart may carry (none; SMA(20); SMA(20) + Bollinger(20, 2), in the grammar
and colour order of :mod:`aio_ray.charts.overlays`) and a volume pane on 15% of them, so the
net copes with all of them. As at inference, each window's lines are computed on the bars
before it too (:data:`_LEAD_IN` of them: the real preceding bars for (c), a driftless random
walk into the window's first open for (a) and (b)), so a line crosses the whole window. Trend labels: :func:`~aio_ray.vision.dataset.trend_label`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from aio_ray.bars.resample import bars_from_ticks
from aio_ray.charts.overlays import overlay_lines
from aio_ray.charts.raster import PALETTE, rasterize_batch
from aio_ray.data.config import SyntheticConfig
from aio_ray.data.synthetic_ticks import generate_day
from aio_ray.errors import AioError
from aio_ray.patterns.detectors import synthetic_pattern, window_patterns
from aio_ray.patterns.vocabulary import PATTERNS, TRENDS
from aio_ray.vision.dataset import trend_label
from aio_ray.vision.model import ChartNet, chart_input

__all__ = ["OVERLAY_SETS", "LabelledCharts", "TrainError", "evaluate", "labelled_charts"]

OVERLAY_SETS: tuple[tuple[str, ...], ...] = ((), ("sma_20",), ("sma_20", "bb_20"))
"""The overlay sets training charts are drawn with (each equally likely), in the grammar of
:mod:`aio_ray.charts.overlays`; inference draws ``("sma_20", "bb_20")`` by default."""
_LEAD_IN = 40
"""Bars of history before each training window: its overlay lines are computed on history +
window, as inference computes them on the whole series (so no warm-up gap inside a window)."""
_VOLUME_SHARE = 0.15


class TrainError(AioError):
    """Training cannot start or resume (bad checkpoint, other config); names the file/field."""


@dataclass(frozen=True)
class LabelledCharts:
    """A labelled set of charts, as the net sees them.

    Attributes
    ----------
    inputs : (N, K, 112, 112) uint8 coverage planes (:func:`aio_ray.vision.model.chart_input`).
    trend : (N,) int64 index into ``TRENDS``.
    patterns : (N, len(PATTERNS)) float32 multi-hot.
    source : (N,) source names: ``"pattern:<name>"``, ``"trend"``, ``"bars:<tf>"``.
    counts : number of charts per source kind.
    """

    inputs: torch.Tensor
    trend: torch.Tensor
    patterns: torch.Tensor
    source: list[str]
    counts: dict[str, int]

    def __len__(self) -> int:
        return len(self.trend)


def _trend_window(n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A random-walk window of EUR/USD-like bars with a random drift (maybe reversing)."""
    sub = 6  # sub-steps per bar: the bar's high/low come from its own path
    sigma = 1e-4 * rng.uniform(0.5, 3.0)  # per-bar sd, price
    drift = rng.choice([-1.0, 0.0, 1.0]) * rng.uniform(0.1, 0.6) * sigma
    mu = np.full(n, drift)
    if rng.random() < 0.25:  # reversal at a random bar
        k = int(rng.integers(n // 3, 2 * n // 3))
        mu[k:] = -drift * rng.uniform(0.5, 1.5)
    steps = rng.standard_normal((n, sub)) * sigma / math.sqrt(sub) + (mu / sub)[:, None]
    path = 1.1 * rng.uniform(0.9, 1.1) + np.cumsum(steps.ravel()).reshape(n, sub)
    o = np.empty(n)
    o[0] = path[0, 0] - steps[0, 0]
    o[1:] = path[:-1, -1]
    c = path[:, -1]
    h = np.maximum(path.max(axis=1), o)
    lo = np.minimum(path.min(axis=1), o)
    return o, h, lo, c


def _lead_in(o: np.ndarray, c: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """:data:`_LEAD_IN` closes leading into a window that has no history of its own (a
    generated pattern or trend window): a driftless random walk ending at the window's first
    open, with the window's close-to-close volatility."""
    sd = float(np.std(np.diff(c))) or 1e-4
    steps = rng.standard_normal(_LEAD_IN - 1) * sd
    back = np.concatenate([[0.0], np.cumsum(steps)])  # 0 at the bar just before the window
    return np.ascontiguousarray(float(o[0]) - back[::-1])


def _bars_windows(
    days: int, window: int, seed: int
) -> Iterator[tuple[str, tuple[np.ndarray, ...], np.ndarray]]:

    cfg = SyntheticConfig.model_validate({"seed": seed})
    start = dt.date(2024, 1, 1) + dt.timedelta(days=int(seed % 997) * 7)
    ticks = [generate_day("EURUSD", start + dt.timedelta(days=d), cfg) for d in range(days)]

    table = pa.concat_tables(t for t in ticks if t.num_rows)
    if table.num_rows == 0:
        return
    bars = bars_from_ticks(table, ["5m", "15m"])
    for tf, stride in (("5m", 12), ("15m", 4)):
        b = bars[tf]
        cols = [b.column(f"mid_{p}").to_numpy() for p in ("open", "high", "low", "close")]
        for s in range(0, b.num_rows - window + 1, stride):
            history = np.ascontiguousarray(cols[3][max(0, s - _LEAD_IN) : s])
            yield (
                f"bars:{tf}",
                tuple(np.ascontiguousarray(a[s : s + window]) for a in cols),
                history,
            )


def labelled_charts(
    *,
    patterns_per_name: int,
    trend_windows: int,
    synthetic_days: int,
    seed: int,
    window: int = 64,
    size: tuple[int, int] = (448, 448),
    progress: Callable[[str, int, int], None] | None = None,
) -> LabelledCharts:
    """Generate, draw and label a set of charts (see the module docstring for the sources).

    The same arguments give the same set (the rendering, labels and order are seeded).
    """

    rng = np.random.default_rng([seed, 17])
    items: list[tuple[str, tuple[np.ndarray, ...], str | None]] = []
    history: list[np.ndarray] = []  # closes before each window (for its overlay lines)
    hrng = np.random.default_rng([seed, 41])
    for name in PATTERNS:
        for i in range(patterns_per_name):
            noise = float(rng.uniform(0.02, 0.12))
            bars = synthetic_pattern(name, n_bars=window, seed=seed * 100_003 + i, noise=noise)
            items.append((f"pattern:{name}", bars, name))
            history.append(_lead_in(bars[0], bars[3], hrng))
    trng = np.random.default_rng([seed, 29])
    for _ in range(trend_windows):
        walk = _trend_window(window, trng)
        items.append(("trend", walk, None))
        history.append(_lead_in(walk[0], walk[3], hrng))
    if synthetic_days:
        for src, window_bars, before in _bars_windows(synthetic_days, window, seed):
            items.append((src, window_bars, None))
            history.append(before)

    n, k = len(items), len(PALETTE)
    inputs = torch.zeros((n, k, 112, 112), dtype=torch.uint8)
    trend = torch.zeros(n, dtype=torch.int64)
    pats = torch.zeros((n, len(PATTERNS)), dtype=torch.float32)
    overlay_of = rng.integers(0, len(OVERLAY_SETS), n)
    with_volume = rng.random(n) < _VOLUME_SHARE
    counts: dict[str, int] = {}
    for i, (src, (o, h, lo, c), known) in enumerate(items):
        kind = src.split(":")[0]
        counts[kind] = counts.get(kind, 0) + 1
        label, _ = trend_label(h, lo, c)
        trend[i] = TRENDS.index(label)
        names = set(window_patterns(o, h, lo, c))
        if known is not None:
            names.add(known)
        for name in names:
            pats[i, PATTERNS.index(name)] = 1.0
    chunk = 128
    for a in range(0, n, chunk):
        idx = range(a, min(n, a + chunk))
        # draw each overlay set / volume group of this chunk in one batch
        for ov in range(len(OVERLAY_SETS)):
            for vol in (False, True):
                sel = [i for i in idx if overlay_of[i] == ov and bool(with_volume[i]) == vol]
                if not sel:
                    continue
                ohlc = np.stack([np.stack(items[i][1], axis=1) for i in sel])
                lines = _window_lines(items, history, sel, OVERLAY_SETS[ov])
                volume = rng.gamma(2.0, 1.0, size=ohlc.shape[:2]) if vol else None
                img = rasterize_batch(ohlc, size=size, overlays=lines, volume=volume)
                inputs[sel] = chart_input(img, k)
        if progress is not None:
            progress("draw charts", min(n, a + chunk), n)
    return LabelledCharts(inputs, trend, pats, [it[0] for it in items], counts)


def _window_lines(
    items: list[tuple[str, tuple[np.ndarray, ...], str | None]],
    history: list[np.ndarray],
    sel: list[int],
    specs: tuple[str, ...],
) -> dict[str, np.ndarray] | None:
    """Overlay lines ``(len(sel), window)`` of the windows ``sel``, each computed on its
    history + window and cut to the window (what inference draws)."""
    if not specs:
        return None
    per = []
    for i in sel:
        close = items[i][1][3]
        full = overlay_lines(np.concatenate([history[i], close]), specs)
        per.append({name: line[-len(close) :] for name, line in full.items()})
    return {name: np.stack([p[name] for p in per]) for name in per[0]}


# --------------------------------------------------------------------------- metrics


def evaluate(net: ChartNet, charts: LabelledCharts, batch_size: int = 256) -> dict[str, Any]:
    """Held-out metrics of ``net`` on ``charts``.

    Returns
    -------
    dict : ``trend_accuracy``, ``trend_majority`` (accuracy of always guessing the most
    common class), ``trend_confusion`` (3x3, rows = truth in ``TRENDS`` order),
    ``patterns`` (name -> precision, recall, f1, support; sigmoid > 0.5), ``pattern_macro_f1``
    (over names with support), ``n``.
    """
    net.eval()
    tp_all, pp_all = [], []
    with torch.inference_mode():
        for a in range(0, len(charts), batch_size):
            t, p = net(charts.inputs[a : a + batch_size])
            tp_all.append(t.float().argmax(1))
            pp_all.append(torch.sigmoid(p.float()) > 0.5)
    if not tp_all:
        raise TrainError("evaluate: empty labelled set")
    pred_t = torch.cat(tp_all).numpy()
    pred_p = torch.cat(pp_all).numpy()
    true_t = charts.trend.numpy()
    true_p = charts.patterns.numpy() > 0.5
    conf = np.zeros((3, 3), dtype=np.int64)
    np.add.at(conf, (true_t, pred_t), 1)
    per: dict[str, dict[str, float]] = {}
    f1s = []
    for j, name in enumerate(PATTERNS):
        tp = int(np.sum(pred_p[:, j] & true_p[:, j]))
        fp = int(np.sum(pred_p[:, j] & ~true_p[:, j]))
        fn = int(np.sum(~pred_p[:, j] & true_p[:, j]))
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per[name] = {
            "precision": round(prec, 4),
            "recall": round(rec, 4),
            "f1": round(f1, 4),
            "support": tp + fn,
        }
        if tp + fn:
            f1s.append(f1)
    return {
        "n": len(charts),
        "trend_accuracy": round(float(np.mean(pred_t == true_t)), 4),
        "trend_majority": round(float(np.bincount(true_t, minlength=3).max() / len(true_t)), 4),
        "trend_confusion": conf.tolist(),
        "patterns": per,
        "pattern_macro_f1": round(float(np.mean(f1s)) if f1s else 0.0, 4),
    }
