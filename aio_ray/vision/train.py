"""Train ChartNet (the CPU vision backend's model) on labelled synthetic charts.

Stable public API::

    TrainConfig(...)                              # frozen, strict; config_id() for the run
    labelled_charts(...) -> LabelledCharts        # the labelled set (deterministic per seed)
    evaluate(net, charts) -> dict                 # trend accuracy, per-pattern F1
    train(config, *, stop_after=None) -> dict     # metrics; checkpoints every epoch

    python -m aio_ray.vision.train --out DIR [--resume] [--epochs N] [--seed S] [--quick]

Training data (all generated here, deterministic for a seed; labels from the same rules the
dataset uses, :mod:`aio_ray.vision.dataset`):

(a) ``patterns_per_name`` charts of every vocabulary name from
    :func:`aio_ray.patterns.detectors.synthetic_pattern` (noise drawn in 0.02..0.12
    heights); pattern labels = the name it was built with plus whatever
    :func:`~aio_ray.patterns.detectors.window_patterns` finds in it;
(b) ``trend_windows`` random-walk windows with a drift drawn so that up, down and sideways
    windows are all common (some with a mid-window reversal), rule labels;
(c) windows of ``synthetic_days`` days of :mod:`aio_ray.data.synthetic` EUR/USD ticks turned
    into 5m and 15m bars, rule labels.

Every chart is drawn by :func:`aio_ray.charts.raster.rasterize_batch` at 448x448 with one of
the overlay sets a chart may carry (none; SMA(20); SMA(20) + Bollinger(20, 2), in the grammar
and colour order of :mod:`aio_ray.charts.overlays`) and a volume pane on 15% of them, so the
net copes with all of them. As at inference, each window's lines are computed on the bars
before it too (:data:`_LEAD_IN` of them: the real preceding bars for (c), a driftless random
walk into the window's first open for (a) and (b)), so a line crosses the whole window. Trend labels: :func:`~aio_ray.vision.dataset.trend_label`.
The held-out set is generated the same way from another seed (``seed + 1_000_003``) and
``holdout_fraction`` of the sizes.

Loop: AdamW, cosine learning rate computed from (epoch, ``epochs``), cross-entropy on the
trend plus binary cross-entropy (``pattern_pos_weight`` on positives) on the patterns. Mixed
precision when ``amp``: ``torch.autocast`` bf16 on CPU (if the CPU supports bf16), fp16 with a
``GradScaler`` on CUDA. After every epoch a checkpoint (model, optimizer, scaler, epoch, RNG
states of torch, the shuffling generator, numpy and random, history) is written atomically to
``out_dir/checkpoints/epoch-NNN.pt`` (the last two are kept); ``resume=True`` continues from
the latest one. On CPU
with the same seed and thread count, a run interrupted and resumed gives bitwise the same
weights as an uninterrupted one (pinned by tests). At the end ``out_dir/chartnet.pt`` (the
weights, :func:`aio_ray.vision.model.save_chartnet`) and ``out_dir/chartnet.json`` (the card:
data, config, metrics) are written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import math
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from aio_ray.charts.overlays import overlay_lines
from aio_ray.errors import AioError
from aio_ray.patterns.vocabulary import PATTERNS, TRENDS
from aio_ray.vision.model import MODEL_ID, ChartNet, chart_input, save_chartnet

__all__ = [
    "OVERLAY_SETS",
    "LabelledCharts",
    "TrainConfig",
    "TrainError",
    "evaluate",
    "holdout_charts",
    "labelled_charts",
    "main",
    "train",
]

log = logging.getLogger(__name__)

OVERLAY_SETS: tuple[tuple[str, ...], ...] = ((), ("sma_20",), ("sma_20", "bb_20"))
"""The overlay sets training charts are drawn with (each equally likely), in the grammar of
:mod:`aio_ray.charts.overlays`; inference draws ``("sma_20", "bb_20")`` by default."""
_LEAD_IN = 40
"""Bars of history before each training window: its overlay lines are computed on history +
window, as inference computes them on the whole series (so no warm-up gap inside a window)."""
_VOLUME_SHARE = 0.15
_HOLDOUT_SEED = 1_000_003
_CKPT_FORMAT = 1


class TrainError(AioError):
    """Training cannot start or resume (bad checkpoint, other config); names the file/field."""


class TrainConfig(BaseModel):
    """Settings of one training run; :meth:`config_id` identifies what it trains."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    out_dir: Path = Field(description="checkpoints, weights and card go here")
    epochs: int = Field(10, ge=1, description="total epochs of the run")
    batch_size: int = Field(64, ge=2, description="charts per optimizer step")
    lr: float = Field(3e-3, gt=0, description="peak learning rate (cosine decay to 0)")
    weight_decay: float = Field(1e-4, ge=0)
    seed: int = Field(0, ge=0, description="seeds the data, the init and the shuffling")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = Field(True, description="bf16 autocast on CPU, fp16 + GradScaler on CUDA")
    patterns_per_name: int = Field(240, ge=0, description="(a) synthetic charts per pattern")
    trend_windows: int = Field(1500, ge=0, description="(b) random-walk trend windows")
    synthetic_days: int = Field(6, ge=0, description="(c) days of synthetic ticks -> bars")
    holdout_fraction: float = Field(0.2, gt=0, le=1, description="held-out size vs training")
    window: int = Field(64, ge=32, description="bars per chart")
    size: tuple[int, int] = Field((448, 448), description="chart (height, width), pixels")
    pattern_pos_weight: float = Field(2.0, gt=0, description="BCE weight of positive labels")
    num_threads: int | None = Field(None, ge=1, description="torch threads; None: as set")

    def data_settings(self) -> dict[str, Any]:
        """What determines the training data (and so the labelled set's identity)."""
        keys = (
            "seed",
            "patterns_per_name",
            "trend_windows",
            "synthetic_days",
            "holdout_fraction",
            "window",
            "size",
        )
        return {k: getattr(self, k) for k in keys}

    def config_id(self) -> str:
        """Stable hash of everything that changes the trained weights except ``epochs``,
        ``out_dir``, ``device`` and ``num_threads`` (a resume must match it)."""
        d = self.model_dump(mode="json", exclude={"out_dir", "epochs", "device", "num_threads"})
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- data


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
    from aio_ray.bars.resample import bars_from_ticks
    from aio_ray.config import SyntheticConfig
    from aio_ray.data.synthetic import generate_day

    cfg = SyntheticConfig.model_validate({"seed": seed})
    start = dt.date(2024, 1, 1) + dt.timedelta(days=int(seed % 997) * 7)
    ticks = [generate_day("EURUSD", start + dt.timedelta(days=d), cfg) for d in range(days)]
    import pyarrow as pa

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
    from aio_ray.charts.raster import PALETTE, rasterize_batch
    from aio_ray.patterns.detectors import synthetic_pattern, window_patterns
    from aio_ray.vision.dataset import trend_label

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


# --------------------------------------------------------------------------- loop


def _device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise TrainError("device='cuda' but torch sees no CUDA device")
        return torch.device("cuda")
    return torch.device("cpu")


def _amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    if not cfg.amp:
        return None
    if device.type == "cuda":
        return torch.float16
    try:
        ok = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        ok = False
    return torch.bfloat16 if ok else None


def _lr(cfg: TrainConfig, epoch: int) -> float:
    """Cosine schedule: the learning rate of ``epoch`` (0-based) of ``cfg.epochs``."""
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / cfg.epochs))


def _ckpt_dir(cfg: TrainConfig) -> Path:
    return Path(cfg.out_dir) / "checkpoints"


def _latest_checkpoint(cfg: TrainConfig) -> Path | None:
    found = sorted(_ckpt_dir(cfg).glob("epoch-*.pt"))
    return found[-1] if found else None


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _np_state_out() -> list[Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return [name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, cached]


def _np_state_in(state: list[Any]) -> None:
    name, keys, pos, has_gauss, cached = state
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))


def _tuples(x: Any) -> Any:
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def _load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a bad file
        raise TrainError(f"{path}: cannot read checkpoint: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != _CKPT_FORMAT:
        raise TrainError(f"{path}: not a ChartNet checkpoint of format {_CKPT_FORMAT}")
    return state


def _log_progress(stage: str) -> Callable[[str, int, int], None]:
    last = [0.0]

    def report(msg: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] > 5.0:
            last[0] = now
            log.info("%s: %s %d/%d", stage, msg, done, total)

    return report


def holdout_charts(config: TrainConfig) -> LabelledCharts:
    """The held-out set of a run: drawn like the training set from seed ``seed + 1_000_003``,
    ``holdout_fraction`` of its sizes."""
    hold = config.holdout_fraction
    return labelled_charts(
        patterns_per_name=max(1, round(config.patterns_per_name * hold))
        if config.patterns_per_name
        else 0,
        trend_windows=round(config.trend_windows * hold),
        synthetic_days=max(1, round(config.synthetic_days * hold)) if config.synthetic_days else 0,
        seed=config.seed + _HOLDOUT_SEED,
        progress=_log_progress("held-out set"),
        window=config.window,
        size=config.size,
    )


def train(
    config: TrainConfig, *, resume: bool = False, stop_after: int | None = None
) -> dict[str, Any]:
    """Train ChartNet; checkpoint every epoch; return the metrics (also in the card).

    Parameters
    ----------
    config : the run's settings (``config.out_dir`` receives everything).
    resume : continue from the latest checkpoint in ``out_dir/checkpoints`` (if any; its
        ``config_id`` must match). A finished run resumed with more ``epochs`` continues
        with the cosine schedule of the new total.
    stop_after : stop once this many epochs are done (as if interrupted); no weights or card
        are written then. None: run to ``config.epochs``.

    Returns
    -------
    dict : ``config_id``, ``epochs_done``, ``history`` (per-epoch loss and seconds),
    ``holdout`` (:func:`evaluate`), ``train_counts``/``holdout_counts``, ``device``, ``amp``,
    ``seconds``; ``finished`` False when stopped early.
    """
    t_start = time.monotonic()
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    device = _device(config)
    amp_dtype = _amp_dtype(config, device)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    start_epoch, history, ckpt = 0, [], None
    if resume:
        path = _latest_checkpoint(config)
        if path is not None:
            ckpt = _load_checkpoint(path)
            if ckpt["config_id"] != config.config_id():
                raise TrainError(
                    f"{path}: checkpoint of config {ckpt['config_id']} ({ckpt['config']}), "
                    f"cannot resume config {config.config_id()} ({config.model_dump(mode='json')})"
                )
            start_epoch, history = int(ckpt["epoch"]), list(ckpt["history"])
            log.info("resuming from %s (epoch %d done)", path, start_epoch)

    from aio_ray.charts.raster import PALETTE

    torch.manual_seed(config.seed)
    net = ChartNet(len(PALETTE)).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=(amp_dtype == torch.float16))
    shuffle = torch.Generator().manual_seed(config.seed)
    if ckpt is not None:
        net.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        scaler.load_state_dict(ckpt["scaler"])
        shuffle.set_state(ckpt["rng"]["shuffle"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        if device.type == "cuda" and ckpt["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
        _np_state_in(ckpt["rng"]["numpy"])
        random.setstate(_tuples(ckpt["rng"]["python"]))

    t0 = time.monotonic()
    train_set = labelled_charts(
        patterns_per_name=config.patterns_per_name,
        trend_windows=config.trend_windows,
        synthetic_days=config.synthetic_days,
        seed=config.seed,
        progress=_log_progress("training set"),
        window=config.window,
        size=config.size,
    )
    holdout = holdout_charts(config)
    data_s = time.monotonic() - t0
    if len(train_set) < config.batch_size:
        raise TrainError(
            f"training set has {len(train_set)} charts, fewer than batch_size {config.batch_size}"
        )
    log.info(
        "data: %d training, %d held-out charts in %.1f s", len(train_set), len(holdout), data_s
    )

    pos_weight = torch.full((len(PATTERNS),), config.pattern_pos_weight, device=device)
    n = len(train_set)
    last_epoch = config.epochs if stop_after is None else min(config.epochs, stop_after)
    for epoch in range(start_epoch, last_epoch):
        te = time.monotonic()
        for g in opt.param_groups:
            g["lr"] = _lr(config, epoch)
        net.train()
        perm = torch.randperm(n, generator=shuffle)
        total, seen = 0.0, 0
        for a in range(0, n - config.batch_size + 1, config.batch_size):  # drop the ragged tail
            idx = perm[a : a + config.batch_size]
            x = train_set.inputs[idx].to(device, non_blocking=True)
            yt = train_set.trend[idx].to(device)
            yp = train_set.patterns[idx].to(device)
            with torch.autocast(
                device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None
            ):
                lt, lp = net(x)
            loss = F.cross_entropy(lt.float(), yt) + F.binary_cross_entropy_with_logits(
                lp.float(), yp, pos_weight=pos_weight
            )
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            total += float(loss.detach()) * len(idx)
            seen += len(idx)
        history.append(
            {
                "epoch": epoch + 1,
                "loss": round(total / max(seen, 1), 5),
                "lr": _lr(config, epoch),
                "seconds": round(time.monotonic() - te, 2),
            }
        )
        log.info(
            "epoch %d/%d: loss %.4f (%.1f s)",
            epoch + 1,
            config.epochs,
            history[-1]["loss"],
            history[-1]["seconds"],
        )
        _save_checkpoint(
            _ckpt_dir(config) / f"epoch-{epoch + 1:03d}.pt",
            {
                "format": _CKPT_FORMAT,
                "config_id": config.config_id(),
                "config": config.model_dump(mode="json"),
                "epoch": epoch + 1,
                "model": net.state_dict(),
                "optimizer": opt.state_dict(),
                "scaler": scaler.state_dict(),
                "history": history,
                "rng": {
                    "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
                    "shuffle": shuffle.get_state(),
                    "numpy": _np_state_out(),
                    "python": random.getstate(),
                },
            },
        )
        for old in sorted(_ckpt_dir(config).glob("epoch-*.pt"))[:-2]:
            old.unlink(missing_ok=True)  # keep the last two

    done = history[-1]["epoch"] if history else start_epoch
    metrics: dict[str, Any] = {
        "model_id": MODEL_ID,
        "config_id": config.config_id(),
        "epochs_done": done,
        "finished": done >= config.epochs,
        "history": history,
        "device": device.type,
        "amp": str(amp_dtype).replace("torch.", "") if amp_dtype is not None else "off",
        "threads": torch.get_num_threads(),
        "train_counts": train_set.counts,
        "holdout_counts": holdout.counts,
        "data_seconds": round(data_s, 1),
    }
    if not metrics["finished"]:
        metrics["seconds"] = round(time.monotonic() - t_start, 1)
        return metrics
    net_cpu = net.to("cpu").eval()
    metrics["holdout"] = evaluate(net_cpu, holdout)
    metrics["train"] = {k: v for k, v in evaluate(net_cpu, train_set).items() if k != "patterns"}
    metrics["seconds"] = round(time.monotonic() - t_start, 1)
    card = {
        "model_id": MODEL_ID,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "parameters": sum(p.numel() for p in net_cpu.parameters()),
        "config": config.model_dump(mode="json", exclude={"out_dir"}),
        "data": {
            "sources": {
                "pattern": "aio_ray.patterns.detectors.synthetic_pattern, every name, "
                "noise 0.02..0.12; labels: its name + window_patterns",
                "trend": "random-walk windows with random drift (25% reversing); rule labels",
                "bars": "aio_ray.data.synthetic EUR/USD ticks -> 5m (stride 12) and 15m "
                "(stride 4) bar windows; rule labels",
            },
            "overlay_sets": [list(s) for s in OVERLAY_SETS],
            "volume_share": _VOLUME_SHARE,
            "trend_rule": "aio_ray.vision.dataset.trend_label, threshold 3 ATR",
            "train_counts": train_set.counts,
            "holdout_counts": holdout.counts,
            "holdout_seed": config.seed + _HOLDOUT_SEED,
        },
        "metrics": {
            k: v for k, v in metrics.items() if k not in ("train_counts", "holdout_counts")
        },
    }
    save_chartnet(net_cpu, out / "chartnet.pt", extra={"config_id": config.config_id()})
    (out / "chartnet.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return metrics


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """``python -m aio_ray.vision.train --out DIR [--resume] [--epochs N] [--seed S] [--quick]``,
    or ``--evaluate WEIGHTS`` (held-out metrics of saved weights on this code's charts)."""
    ap = argparse.ArgumentParser(
        prog="python -m aio_ray.vision.train", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--out", type=Path, help="output directory (required unless --evaluate)")
    ap.add_argument(
        "--evaluate",
        type=Path,
        metavar="WEIGHTS",
        help="only score these weights on the held-out set of --seed (prints the metrics JSON)",
    )
    ap.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    ap.add_argument("--epochs", type=int, default=None, help="total epochs (default 10)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--no-amp", action="store_true", help="train in float32")
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    ap.add_argument("--quick", action="store_true", help="a tiny run (smoke test)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    if args.evaluate is not None:
        return _evaluate_main(args.evaluate, args.seed, args.quick)
    if args.out is None:
        ap.error("--out is required (or give --evaluate WEIGHTS)")
    kw: dict[str, Any] = {
        "out_dir": args.out,
        "seed": args.seed,
        "device": args.device,
        "amp": not args.no_amp,
        "num_threads": args.threads,
    }
    if args.epochs is not None:
        kw["epochs"] = args.epochs
    if args.quick:
        kw.update(
            patterns_per_name=8, trend_windows=64, synthetic_days=0, epochs=kw.get("epochs", 2)
        )
    try:
        metrics = train(TrainConfig(**kw), resume=args.resume)
    except AioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = {k: metrics[k] for k in ("config_id", "epochs_done", "seconds", "device", "amp")}
    if "holdout" in metrics:
        h = metrics["holdout"]
        summary |= {
            "trend_accuracy": h["trend_accuracy"],
            "pattern_macro_f1": h["pattern_macro_f1"],
        }
    print(json.dumps(summary))
    return 0


def _evaluate_main(weights: Path, seed: int, quick: bool) -> int:
    from aio_ray.vision.model import load_chartnet

    sizes: dict[str, Any] = {"out_dir": Path("."), "seed": seed}
    if quick:
        sizes.update(patterns_per_name=8, trend_windows=64, synthetic_days=0)
    try:
        net = load_chartnet(weights)
        charts = holdout_charts(TrainConfig(**sizes))
    except AioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    metrics = evaluate(net, charts)
    print(json.dumps({"weights": str(weights), "seed": seed, **metrics}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
