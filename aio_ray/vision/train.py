"""Train ChartNet (the CPU vision backend's model) on labelled synthetic charts.

Stable public API::

    TrainConfig(...)                              # frozen, strict; config_id() for the run
    holdout_charts(config) -> LabelledCharts      # the run's held-out set
    train(config, *, stop_after=None) -> dict     # metrics; checkpoints every epoch

    python -m aio_ray.vision.train --out DIR [--resume] [--epochs N] [--seed S] [--quick]
    python -m aio_ray.vision.train --evaluate WEIGHTS [--seed S]

Training data: :mod:`aio_ray.vision.chart_sets` (labelled synthetic charts, drawn as
inference draws them). The held-out set is generated the same way from another seed
(``seed + 1_000_003``) and ``holdout_fraction`` of the sizes.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from aio_ray.charts.raster import PALETTE
from aio_ray.errors import AioError
from aio_ray.patterns.vocabulary import PATTERNS
from aio_ray.vision.chart_sets import (
    _VOLUME_SHARE,
    OVERLAY_SETS,
    LabelledCharts,
    TrainError,
    evaluate,
    labelled_charts,
)
from aio_ray.vision.model import MODEL_ID, ChartNet, load_chartnet, save_chartnet

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

_HOLDOUT_SEED = 1_000_003
_CKPT_FORMAT = 1


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
            # torch 2.13 leaves Tensor.backward unannotated
            scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
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
                "bars": "aio_ray.data.synthetic_ticks EUR/USD ticks -> 5m (stride 12) and 15m "
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
