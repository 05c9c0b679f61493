"""Chart analysis over HTTP: ``POST /analyze`` (a PNG or a window of bars), ``GET /analyses``
(the pipeline's analysis log), ``GET /patterns`` (mined pattern statistics).

The backend is the one the served pipeline config names (``vision.model``; none: the CPU
backend, which runs anywhere). It is built on the first request and kept for the replica's
life; requests are analysed one at a time per replica (the model is not re-entrant), and
every analysis made here is appended to the analysis log beside the pipeline's.
"""

from __future__ import annotations

import itertools
import math
import threading
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
INSTRUMENT = r"^[A-Z]{6}$"
TIMEFRAME = r"^[0-9]{1,4}(m|h|d|w)$"


class BarIn(BaseModel):
    """One bar of a posted window: open time (UTC ms) and mid OHLC in quote currency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ts: int = Field(..., ge=0, description="bar open time, UTC milliseconds")
    open: float = Field(..., gt=0)
    high: float = Field(..., gt=0)
    low: float = Field(..., gt=0)
    close: float = Field(..., gt=0)
    volume: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> BarIn:
        vals = (self.open, self.high, self.low, self.close)
        if not all(math.isfinite(v) for v in vals):
            raise ValueError("prices must be finite")
        if self.high < max(self.open, self.close) or self.low > min(self.open, self.close):
            raise ValueError(f"bar at {self.ts}: high/low do not contain open and close")
        return self


class AnalyzeBars(BaseModel):
    """A window of bars to chart and analyse (8 to 512 bars, oldest first, strictly increasing)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instrument: Annotated[str, Field(pattern=INSTRUMENT)] = "EURUSD"
    timeframe: Annotated[str, Field(pattern=TIMEFRAME, max_length=8)] = "1h"
    bars: list[BarIn] = Field(..., min_length=8, max_length=512)

    @field_validator("bars")
    @classmethod
    def _increasing(cls, v: list[BarIn]) -> list[BarIn]:
        for a, b in itertools.pairwise(v):
            if b.ts <= a.ts:
                raise ValueError(f"bar times must strictly increase: {b.ts} follows {a.ts}")
        return v


class VisionService:
    """The replica's analysis backend and readers of the pattern statistics and analysis log."""

    def __init__(self, resolved: Any) -> None:
        self.cfg = resolved
        self._lock = threading.Lock()
        self._backend: Any = None

    def _settings(self) -> Any:
        from aio_ray.vision.analyze import VisionConfig

        return (self.cfg.vision or VisionConfig()).model

    def backend(self) -> Any:
        """The backend, built once (raises BackendUnavailableError when it cannot run here)."""
        if self._backend is None:
            from aio_ray.vision.backends import make_backend

            self._backend = make_backend(settings=self._settings())
        return self._backend

    def _run(self, request: Any) -> dict[str, Any]:
        from aio_ray.vision.analyze import record_json

        with self._lock:
            rec = self.backend().analyze([request])[0]
        if self.cfg.analyses_dir is not None:
            from aio_ray.vision.log import AnalysisLog

            with AnalysisLog(self.cfg.analyses_dir) as sink:
                sink.extend([rec])
        return record_json(rec)

    def analyze_png(self, png: bytes, instrument: str, timeframe: str) -> dict[str, Any]:
        """Analyse an uploaded chart image (PNG). The window times are unknown: 0."""
        import io

        from PIL import Image, UnidentifiedImageError

        from aio_ray.vision.backends import AnalysisRequest, VisionError

        try:
            with Image.open(io.BytesIO(png)) as im:
                w, h = im.size  # from the header: refuse a pixel bomb before decoding it
                if not (16 <= w <= 4096 and 16 <= h <= 4096):
                    raise VisionError(f"image is {w}x{h} pixels; accepted 16..4096 on each side")
                im.load()
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
            raise VisionError(f"the uploaded PNG cannot be decoded: {exc}") from None
        return self._run(AnalysisRequest(image=png, instrument=instrument, timeframe=timeframe,
                                         window_start=0, window_end=0))

    def analyze_bars(self, body: AnalyzeBars) -> dict[str, Any]:
        """Chart the posted bars as the pipeline does (same rasterizer and size) and analyse."""
        from aio_ray.charts.raster import rasterize
        from aio_ray.vision.analyze import VisionConfig
        from aio_ray.vision.backends import AnalysisRequest
        from aio_ray.vision.summary import indicator_summary

        vc = self.cfg.vision or VisionConfig()
        o, h, lo, c = (np.array([getattr(b, k) for b in body.bars], dtype=np.float64)
                       for k in ("open", "high", "low", "close"))
        vol = [b.volume for b in body.bars]
        volume = np.array(vol, dtype=np.float64) if all(v is not None for v in vol) else None
        img = rasterize(o, h, lo, c, size=vc.size, volume=volume)
        return self._run(AnalysisRequest(
            image=img, instrument=body.instrument, timeframe=body.timeframe,
            window_start=body.bars[0].ts, window_end=body.bars[-1].ts,
            summary=indicator_summary(o, h, lo, c), ohlc=np.column_stack([o, h, lo, c]),
        ))

    def analyses(self, limit: int, timeframe: str | None) -> list[dict[str, Any]]:
        """The newest ``limit`` analyses of the log (newest first)."""
        import polars as pl

        from aio_ray.vision.analyze import record_json
        from aio_ray.vision.log import read_log
        from aio_ray.vision.schema import records_from_table

        d = self.cfg.analyses_dir
        if d is None or not d.is_dir():
            return []
        table = read_log(d)
        if table.num_rows == 0:
            return []
        frame = pl.from_arrow(table)
        if timeframe is not None:
            frame = frame.filter(pl.col("timeframe") == timeframe)
        frame = frame.sort("logged_at", descending=True).head(limit)
        cols = [c for c in frame.columns if c != "logged_at"]
        return [record_json(r) for r in records_from_table(frame.select(cols).to_arrow())]

    def patterns(self, lib: Any, timeframe: str | None, validated_only: bool) -> list[dict[str, Any]]:
        """Stored pattern statistics (see :func:`aio_ray.patterns.store.load_pattern_stats`)."""
        from aio_ray.patterns.store import load_pattern_stats

        rows = load_pattern_stats(lib, timeframe=timeframe, validated_only=validated_only)
        return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
                for r in rows]
