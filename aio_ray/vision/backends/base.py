"""The one interface every vision backend implements, and what it consumes.

Stable public API::

    AnalysisRequest(image, instrument, timeframe, window_start, window_end, summary="", ohlc=None)
    AnalysisRequest.from_row(row) / .to_row()      # Ray Data rows
    VisionBackend                                   # Protocol: model_id, name, analyze(requests)
    VisionError, BackendUnavailableError
    ok_record(...), failed_record(...)              # build AnalysisRecords for a request
    request_png(request) -> bytes, request_palette(request) -> np.ndarray

A backend turns a batch of requests into exactly one :class:`AnalysisRecord` per request,
in order; a window that cannot be analysed is a ``failed`` record, never an exception
(exceptions are for a backend that cannot work at all: missing package, missing weights).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from aio_ray.charts.raster import PALETTE, encode_png
from aio_ray.errors import AioError
from aio_ray.vision.analysis import AnalysisRecord, ChartAnalysis, _to_ms

__all__ = [
    "AnalysisRequest",
    "BackendUnavailableError",
    "VisionBackend",
    "VisionError",
    "failed_record",
    "ok_record",
    "request_palette",
    "request_png",
]

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class VisionError(AioError):
    """The vision stage cannot run as configured (names the backend and what is wrong)."""


class BackendUnavailableError(VisionError):
    """A backend needs a package or a model that is not installed here."""

    def __init__(self, backend: str, missing: str, hint: str) -> None:
        super().__init__(f"vision backend {backend!r} needs {missing}: {hint}")
        self.backend = backend
        self.missing = missing
        self.hint = hint


@dataclass(frozen=True, eq=False)
class AnalysisRequest:
    """One chart window to analyse.

    Attributes
    ----------
    image : the chart, as PNG bytes or an (H, W) uint8 array of palette indices
        (:func:`aio_ray.charts.raster.rasterize`).
    instrument, timeframe : e.g. ``"EURUSD"``, ``"1h"``.
    window_start, window_end : open time of the first and last bar, UTC ms.
    summary : the indicator summary text of the window ("" if none).
    ohlc : optional (N, 4) float64 array of the window's bars (open, high, low, close,
        oldest first, quote currency); backends use it for price levels and the prompt.
    """

    image: bytes | np.ndarray
    instrument: str
    timeframe: str
    window_start: int
    window_end: int
    summary: str = ""
    ohlc: np.ndarray | None = None

    def __post_init__(self) -> None:
        img = self.image
        if isinstance(img, (bytes, bytearray, memoryview)):
            img = bytes(img)
            if not img.startswith(_PNG_MAGIC):
                raise VisionError(
                    f"AnalysisRequest.image for {self.instrument} {self.timeframe} "
                    f"@{self.window_start}: bytes are not a PNG file"
                )
            object.__setattr__(self, "image", img)
        elif isinstance(img, np.ndarray):
            if img.ndim != 2 or img.dtype != np.uint8:
                raise VisionError(
                    "AnalysisRequest.image must be PNG bytes or an (H, W) uint8 palette array, "
                    f"got {img.dtype} {img.shape}"
                )
        else:
            raise VisionError(
                f"AnalysisRequest.image must be PNG bytes or a numpy array, got {type(img).__name__}"
            )
        object.__setattr__(self, "window_start", _to_ms(self.window_start, "window_start"))
        object.__setattr__(self, "window_end", _to_ms(self.window_end, "window_end"))
        if self.window_end < self.window_start:
            raise VisionError(
                f"AnalysisRequest: window_end {self.window_end} ms precedes "
                f"window_start {self.window_start} ms"
            )
        if self.ohlc is not None:
            a = np.asarray(self.ohlc, dtype=np.float64)
            if a.ndim != 2 or a.shape[1] != 4 or a.shape[0] < 1:
                raise VisionError(
                    f"AnalysisRequest.ohlc must be (N, 4) open/high/low/close, got {a.shape}"
                )
            object.__setattr__(self, "ohlc", a)

    @property
    def n_bars(self) -> int | None:
        return None if self.ohlc is None else int(self.ohlc.shape[0])

    def prompt_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`aio_ray.vision.prompts.user_prompt` for this window."""
        kw: dict[str, Any] = {
            "instrument": self.instrument,
            "timeframe": self.timeframe,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "summary": self.summary,
        }
        if self.ohlc is not None:
            lows, highs = self.ohlc[:, 2], self.ohlc[:, 1]
            if np.isfinite(lows).any() and np.isfinite(highs).any():
                kw.update(
                    n_bars=self.n_bars,
                    price_low=float(np.nanmin(lows)),
                    price_high=float(np.nanmax(highs)),
                )
        return kw

    def to_row(self) -> dict[str, Any]:
        """A Ray Data row: ``image`` (bytes or 2-D uint8), ids, ``summary`` and ``ohlc``.

        ``ohlc`` is flattened to a list of 4 * N floats (None without bars) so that windows
        of any length, with or without bars, share one Arrow column type.
        """
        return {
            "image": self.image,
            "instrument": self.instrument,
            "timeframe": self.timeframe,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "summary": self.summary,
            "ohlc": None if self.ohlc is None else self.ohlc.reshape(-1).tolist(),
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AnalysisRequest:
        """Build from a row with the columns of :meth:`to_row` (``ohlc``, ``summary`` optional).

        Also accepts ``image_png`` (PNG bytes) for ``image``, as dataset files store it.
        """
        image = row["image"] if "image" in row else row["image_png"]
        if isinstance(image, np.ndarray) and image.dtype == object:
            image = image.item() if image.ndim == 0 else image
        ohlc = row.get("ohlc")
        if ohlc is not None:
            if isinstance(ohlc, np.ndarray) and ohlc.dtype == object:  # rows as arrays
                ohlc = np.concatenate([np.asarray(r, dtype=np.float64).reshape(-1) for r in ohlc])
            ohlc = np.asarray(ohlc, dtype=np.float64)
            if ohlc.ndim == 1:  # the flat form of to_row
                if ohlc.size % 4:
                    raise VisionError(f"row ohlc has {ohlc.size} values, not a multiple of 4")
                ohlc = ohlc.reshape(-1, 4)
        summary = row.get("summary")
        return cls(
            image=image,
            instrument=str(row["instrument"]),
            timeframe=str(row["timeframe"]),
            window_start=row["window_start"],
            window_end=row["window_end"],
            summary="" if summary is None else str(summary),
            ohlc=ohlc,
        )


@runtime_checkable
class VisionBackend(Protocol):
    """A vision backend: one record per request, in order.

    ``model_id`` names the model (stored with every record); ``name`` is ``"cpu"``,
    ``"vllm"`` or ``"http"``.
    """

    model_id: str
    name: str

    def analyze(self, requests: Sequence[AnalysisRequest]) -> list[AnalysisRecord]:
        """Analyse ``requests``; never raises for one bad window (failed record instead)."""
        ...


def _record(request: AnalysisRequest, **fields: Any) -> AnalysisRecord:
    return AnalysisRecord(
        instrument=request.instrument,
        timeframe=request.timeframe,
        window_start=request.window_start,
        window_end=request.window_end,
        **fields,
    )


def ok_record(
    request: AnalysisRequest,
    analysis: ChartAnalysis,
    *,
    backend: str,
    model: str,
    latency_ms: float,
    attempts: int = 1,
    raw_text: str | None = None,
) -> AnalysisRecord:
    """A successful record for ``request``."""
    return _record(
        request,
        model=model,
        backend=backend,
        latency_ms=max(0.0, float(latency_ms)),
        status="ok",
        analysis=analysis,
        raw_text=raw_text,
        error=None,
        attempts=attempts,
    )


def failed_record(
    request: AnalysisRequest,
    error: str,
    *,
    backend: str,
    model: str,
    latency_ms: float,
    attempts: int = 1,
    raw_text: str | None = None,
) -> AnalysisRecord:
    """A failed record for ``request`` keeping ``raw_text`` (the last answer) and ``error``."""
    return _record(
        request,
        model=model,
        backend=backend,
        latency_ms=max(0.0, float(latency_ms)),
        status="failed",
        analysis=None,
        raw_text=raw_text,
        error=error or "unknown error",
        attempts=max(1, attempts),
    )


def request_png(request: AnalysisRequest) -> bytes:
    """The request's chart as PNG bytes (palette arrays encoded by the rasterizer)."""
    if isinstance(request.image, bytes):
        return request.image

    return encode_png(request.image)


def request_palette(request: AnalysisRequest) -> np.ndarray:
    """The request's chart as (H, W) uint8 palette indices.

    A palette PNG gives its indices; an RGB(A) or grey PNG is mapped pixel by pixel to the
    nearest colour of :data:`aio_ray.charts.raster.PALETTE`.
    """
    if isinstance(request.image, np.ndarray):
        return request.image
    # optional dependency (vision extra): pillow
    from PIL import Image

    pal = np.asarray(PALETTE, dtype=np.int32)
    with Image.open(io.BytesIO(request.image)) as im:
        if im.mode == "P":
            own = np.asarray(im.getpalette() or [], dtype=np.int32)
            idx = np.asarray(im, dtype=np.uint8)
            k = int(idx.max()) + 1 if idx.size else 0
            if (
                own.size >= 3 * k
                and k <= len(pal)
                and np.array_equal(own[: 3 * k].reshape(-1, 3), pal[:k])
            ):
                return idx.copy()  # our own palette: the indices are the chart
        rgb = np.asarray(im.convert("RGB"), dtype=np.int32)
    flat = rgb.reshape(-1, 3)
    colours, inverse = np.unique(flat, axis=0, return_inverse=True)
    d = ((colours[:, None, :] - pal[None, :, :]) ** 2).sum(axis=2)
    nearest = d.argmin(axis=1).astype(np.uint8)
    out: np.ndarray = nearest[inverse.reshape(-1)].reshape(rgb.shape[:2])
    return out
