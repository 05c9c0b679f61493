"""ChartNet: the small chart classifier behind the CPU vision backend (torch, runs anywhere).

Stable public API::

    MODEL_ID = "aio-chartnet-v1"
    MODEL_SIZE = (112, 112)                        # (height, width) the convolutions see
    DEFAULT_WEIGHTS                                # aio_ray/vision/weights/chartnet.pt
    ChartNet(n_colors, width=...)                  # torch.nn.Module
    chart_input(images, n_colors) -> Tensor        # palette images -> (B, K, 112, 112) uint8
    load_chartnet(path=None) -> ChartNet           # eval mode, on CPU
    save_chartnet(net, path, extra=None) -> Path
    predict(net, images, batch_size=256) -> ChartPrediction

Input. A chart is a palette image from :func:`aio_ray.charts.raster.rasterize`: (H, W) uint8
indices into ``PALETTE`` (K colours, index 0 the background). :func:`chart_input` turns it
into K *coverage planes* at :data:`MODEL_SIZE`: plane ``k`` holds, for each output pixel, the
fraction of the source pixels under it that have palette index ``k`` (an area downsample of
the one-hot image; 448 -> 112 averages 4x4 blocks exactly), quantized to 1/255 and stored as
uint8. The net divides by 255. Working on palette indices instead of RGB keeps what a chart
means (up body, down body, wick, overlay, grid) in separate channels at any resolution; the
price of it is that the weights are tied to the palette they were trained with, so the
weights file records the palette and :func:`load_chartnet` refuses a mismatch.

Net. Five 3x3 convolutions with stride 2 (112 -> 4), each with batch norm and ReLU, widths
16-32-48-64-96, then average pooling to a 2x2 grid (coarse left/right, top/bottom, enough to
tell a rise from a fall) and two linear heads: ``trend`` (3 logits, softmax, in ``TRENDS``
order) and ``patterns`` (one logit per name of ``PATTERNS``, independent sigmoids, multi-
label). About 110 k parameters, 0.45 MB of float32 weights.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aio_ray.charts.raster import PALETTE
from aio_ray.errors import AioError
from aio_ray.patterns.vocabulary import PATTERNS, TRENDS

__all__ = [
    "DEFAULT_WEIGHTS",
    "MODEL_ID",
    "MODEL_SIZE",
    "ChartNet",
    "ChartPrediction",
    "ModelError",
    "ModelNotFoundError",
    "chart_input",
    "load_chartnet",
    "predict",
    "save_chartnet",
]

MODEL_ID = "aio-chartnet-v1"
"""Identifier recorded with every analysis made by the shipped weights."""
MODEL_SIZE: tuple[int, int] = (112, 112)
"""(height, width) in pixels of the coverage planes the convolutions see."""
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "chartnet.pt"
"""The weights shipped with the package (trained by :mod:`aio_ray.vision.train`)."""
WIDTHS: tuple[int, ...] = (16, 32, 48, 64, 96)
_FORMAT = 1


class ModelError(AioError):
    """A weights file cannot be used (unreadable, other format, other palette); names the path."""


class ModelNotFoundError(ModelError, FileNotFoundError):
    """The weights file does not exist; ``path`` names where it was looked for."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path}: ChartNet weights not found (train them with "
            "`python -m aio_ray.vision.train --out DIR` or reinstall the package)"
        )
        self.path = path


# --------------------------------------------------------------------------- input


def _as_uint8_images(images: Any) -> torch.Tensor:
    t = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.asarray(images))
    if t.dtype != torch.uint8:
        raise ModelError(f"chart images must be uint8 palette indices, got {t.dtype}")
    if t.ndim == 2:
        t = t.unsqueeze(0)
    if t.ndim != 3:
        raise ModelError(
            f"chart images must be (B, H, W) palette indices, got shape {tuple(t.shape)}"
        )
    return t


def chart_input(images: Any, n_colors: int) -> torch.Tensor:
    """Palette images -> coverage planes at :data:`MODEL_SIZE`, what :class:`ChartNet` eats.

    Parameters
    ----------
    images : (B, H, W) or (H, W) uint8 array or tensor of palette indices (< ``n_colors``).
    n_colors : K, the palette size.

    Returns
    -------
    torch.Tensor (B, K, 112, 112) uint8: ``round(255 * fraction of each output pixel's source
    area with palette index k)``. When H and W are multiples of 112 the fractions are exact
    block counts; otherwise they come from ``adaptive_avg_pool2d`` (area interpolation).
    """
    x = _as_uint8_images(images)
    if x.numel() and int(x.max()) >= n_colors:
        raise ModelError(
            f"chart images hold palette index {int(x.max())} but the palette has {n_colors} colours"
        )
    _b, h, w = x.shape
    mh, mw = MODEL_SIZE
    planes = []
    if h % mh == 0 and w % mw == 0:
        return _block_coverage(x.cpu().numpy(), n_colors)
    else:
        for k in range(n_colors):
            frac = F.adaptive_avg_pool2d((x == k).float().unsqueeze(1), MODEL_SIZE).squeeze(1)
            planes.append(torch.round(frac * 255.0).to(torch.uint8))
    return torch.stack(planes, dim=1)


_CHUNK = 32  # images per bincount (bounds the index array: 32 x 448 x 448 x 8 bytes = 51 MB)


def _block_coverage(img: np.ndarray, n_colors: int) -> torch.Tensor:
    """Exact block coverage when (H, W) are multiples of MODEL_SIZE: one ``np.bincount`` per
    chunk over ``(image, cell, colour)`` ids (about 7x faster than one comparison per colour)."""
    b, h, w = img.shape
    mh, mw = MODEL_SIZE
    fh, fw = h // mh, w // mw
    cell = ((np.arange(h) // fh)[:, None] * mw + (np.arange(w) // fw)[None, :]).astype(np.int64)
    cells = mh * mw
    lut = np.round(np.arange(fh * fw + 1) * (255.0 / (fh * fw))).astype(np.uint8)
    out = np.empty((b, n_colors, mh, mw), dtype=np.uint8)
    for a in range(0, b, _CHUNK):
        part = img[a : a + _CHUNK]
        m = len(part)
        ids = (np.arange(m, dtype=np.int64)[:, None, None] * cells + cell[None]) * n_colors + part
        cnt = np.bincount(ids.ravel(), minlength=m * cells * n_colors)
        out[a : a + m] = lut[cnt.reshape(m, mh, mw, n_colors)].transpose(0, 3, 1, 2)
    return torch.from_numpy(out)


# --------------------------------------------------------------------------- net


class ChartNet(nn.Module):
    """Small CNN with a trend head and a multi-label pattern head.

    Parameters
    ----------
    n_colors : palette size K (input channels).
    widths : channels of the five stride-2 convolutions.
    dropout : dropout before the heads (training only).

    ``forward(x)`` takes coverage planes (B, K, 112, 112), uint8 (divided by 255 here) or
    float in [0, 1], and returns ``(trend_logits (B, 3), pattern_logits (B, len(PATTERNS)))``.
    """

    def __init__(self, n_colors: int, widths: tuple[int, ...] = WIDTHS, dropout: float = 0.2):
        super().__init__()
        self.n_colors = int(n_colors)
        self.widths = tuple(int(c) for c in widths)
        layers: list[nn.Module] = []
        c_in = self.n_colors
        for c_out in self.widths:
            layers += [
                nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d((2, 2))
        self.dropout = nn.Dropout(dropout)
        self.trend_head = nn.Linear(c_in * 4, len(TRENDS))
        self.pattern_head = nn.Linear(c_in * 4, len(PATTERNS))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dtype == torch.uint8:
            x = x.float() * (1.0 / 255.0)
        z = self.dropout(torch.flatten(self.pool(self.features(x)), 1))
        return self.trend_head(z), self.pattern_head(z)


@dataclass(frozen=True)
class ChartPrediction:
    """Outputs of :func:`predict` for B images.

    Attributes
    ----------
    trend_probs : (B, 3) float32, softmax over ``TRENDS`` ("up", "down", "sideways").
    pattern_probs : (B, len(PATTERNS)) float32, independent sigmoid per name of ``PATTERNS``.
    """

    trend_probs: np.ndarray
    pattern_probs: np.ndarray

    def __len__(self) -> int:
        return len(self.trend_probs)


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def predict(
    net: ChartNet, images: Any, batch_size: int = 256, *, num_threads: int | None = None
) -> ChartPrediction:
    """Trend and pattern probabilities of palette chart images, batched, no gradients.

    Parameters
    ----------
    net : a :class:`ChartNet` (put in eval mode here; its device is used).
    images : (B, H, W) uint8 palette indices, e.g. from ``rasterize_batch`` (any H, W; the
        area downsample to 112x112 happens here).
    batch_size : images per forward pass (>= 1).
    num_threads : torch intra-op threads for this call; None keeps ``torch.get_num_threads()``
        (whatever the caller set with ``torch.set_num_threads``).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ModelError(f"predict: batch_size must be an int >= 1, got {batch_size!r}")
    x = _as_uint8_images(images)
    net.eval()
    device = next(net.parameters()).device
    trends, patterns = [], []
    with _threads(num_threads), torch.inference_mode():
        for i in range(0, len(x), batch_size):
            inp = chart_input(x[i : i + batch_size], net.n_colors).to(device)
            t, p = net(inp)
            trends.append(torch.softmax(t.float(), dim=1).cpu())
            patterns.append(torch.sigmoid(p.float()).cpu())
    if not trends:
        return ChartPrediction(
            np.zeros((0, len(TRENDS)), np.float32), np.zeros((0, len(PATTERNS)), np.float32)
        )
    return ChartPrediction(
        torch.cat(trends).numpy().astype(np.float32, copy=False),
        torch.cat(patterns).numpy().astype(np.float32, copy=False),
    )


# --------------------------------------------------------------------------- weights


def _current_palette() -> np.ndarray:
    return np.asarray(PALETTE, dtype=np.uint8)


def save_chartnet(net: ChartNet, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``net``'s weights with what is needed to rebuild and check it; return the path.

    The file is a ``torch.save`` dict: ``format``, ``model_id``, ``n_colors``, ``widths``,
    ``palette`` (K x 3 list of RGB), ``trends``, ``patterns``, ``state_dict`` (float32 CPU
    tensors) and ``extra`` (JSON text). Loadable with ``torch.load(weights_only=True)``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": _FORMAT,
        "model_id": MODEL_ID,
        "n_colors": net.n_colors,
        "widths": list(net.widths),
        "palette": _current_palette().tolist(),
        "trends": list(TRENDS),
        "patterns": list(PATTERNS),
        "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
        "extra": json.dumps(extra or {}, sort_keys=True),
    }
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def load_chartnet(path: str | Path | None = None) -> ChartNet:
    """Load ChartNet weights (eval mode, CPU).

    Parameters
    ----------
    path : a file written by :func:`save_chartnet`; None: :data:`DEFAULT_WEIGHTS`.

    Raises
    ------
    ModelNotFoundError : the file does not exist (names the path).
    ModelError : unreadable file, another format, or weights trained for another vocabulary
        or chart palette than this package's.
    """
    p = Path(path) if path is not None else DEFAULT_WEIGHTS
    if not p.is_file():
        raise ModelNotFoundError(p)
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a bad file
        raise ModelError(f"{p}: cannot read ChartNet weights: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ModelError(f"{p}: not a ChartNet weights file of format {_FORMAT}")
    if tuple(payload["trends"]) != TRENDS or tuple(payload["patterns"]) != PATTERNS:
        raise ModelError(
            f"{p}: weights were trained for trends {payload['trends']} and patterns "
            f"{payload['patterns']}, this package has {list(TRENDS)} and {list(PATTERNS)}"
        )
    palette = _current_palette()
    if np.asarray(payload["palette"], dtype=np.uint8).tolist() != palette.tolist():
        raise ModelError(
            f"{p}: weights were trained on charts with palette {payload['palette']}, "
            f"aio_ray.charts.raster.PALETTE is now {palette.tolist()}; retrain ChartNet"
        )
    net = ChartNet(int(payload["n_colors"]), tuple(payload["widths"]))
    try:
        net.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ModelError(f"{p}: weights do not fit ChartNet: {exc}") from exc
    net.eval()
    return net


def weights_card(path: str | Path | None = None) -> dict[str, Any]:
    """The JSON card beside a weights file (``chartnet.json``): training data, config, metrics."""
    p = (Path(path) if path is not None else DEFAULT_WEIGHTS).with_suffix(".json")
    if not p.is_file():
        raise ModelNotFoundError(p)
    card: dict[str, Any] = json.loads(p.read_text())
    return card
