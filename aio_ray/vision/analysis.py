"""The typed result of a chart analysis, and the flat record every backend produces.

Stable public API::

    ChartAnalysis                 # what a model says about one chart (pydantic, frozen, strict)
    analysis_json_schema() -> dict   # JSON Schema of ChartAnalysis (prompt + guided decoding)
    AnalysisRecord                # one analysed window: ids, model, latency, status, analysis
    RECORD_SCHEMA                 # pyarrow schema of a record row (Ray Data blocks, the log)
    records_to_table(records) -> pa.Table
    records_from_table(table) -> list[AnalysisRecord]

Windows are identified by the open times (UTC, ms since the epoch) of their first and last
bar, following the project rule that a bar is labelled by its open time.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aio_ray.patterns.vocabulary import PATTERNS, TRENDS, PatternName, Trend
from aio_ray.schema import TS_TYPE

__all__ = [
    "MAX_LEVELS",
    "MAX_RATIONALE_CHARS",
    "RECORD_COLUMNS",
    "RECORD_SCHEMA",
    "AnalysisRecord",
    "ChartAnalysis",
    "analysis_json_schema",
    "records_from_table",
    "records_to_table",
]

MAX_LEVELS = 6
"""At most this many support/resistance levels in one analysis."""

MAX_RATIONALE_CHARS = 300
"""The rationale is one sentence of at most this many characters."""

Level = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class ChartAnalysis(BaseModel):
    """What a vision backend says about one chart window.

    Attributes
    ----------
    trend : ``"up"``, ``"down"`` or ``"sideways"`` over the window.
    patterns : names from :data:`aio_ray.patterns.vocabulary.PATTERNS` visible in the
        chart, each at most once (empty list: none).
    levels : support/resistance prices in quote currency (finite, > 0), at most
        :data:`MAX_LEVELS`.
    confidence : the backend's confidence in its reading, a fraction in [0, 1].
    rationale : one sentence (no line breaks), at most :data:`MAX_RATIONALE_CHARS` chars.

    Every field is required and unknown fields are errors, so an answer either validates
    whole or not at all; types are strict (``"0.7"`` is not a confidence).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    trend: Trend = Field(description="direction of the window: up, down or sideways")
    patterns: list[PatternName] = Field(
        description="chart and candlestick patterns visible in the window, each at most once",
        max_length=len(PATTERNS),
        json_schema_extra={"uniqueItems": True},
    )
    levels: list[Level] = Field(
        description="support and resistance prices in quote currency",
        max_length=MAX_LEVELS,
    )
    confidence: float = Field(ge=0.0, le=1.0, description="confidence in the reading, 0..1")
    rationale: str = Field(
        min_length=1,
        max_length=MAX_RATIONALE_CHARS,
        description="one sentence explaining the reading",
    )

    @field_validator("patterns")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        seen: set[str] = set()
        dups = [p for p in v if p in seen or seen.add(p)]  # type: ignore[func-returns-value]
        if dups:
            raise ValueError(f"patterns must be unique; repeated: {sorted(set(dups))}")
        return v

    @field_validator("rationale")
    @classmethod
    def _one_line(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("rationale must not be blank")
        if "\n" in v or "\r" in v:
            raise ValueError("rationale must be one sentence on one line")
        return v

    def __hash__(self) -> int:  # lists are unhashable; hash the canonical JSON instead
        return hash(self.model_dump_json())


def analysis_json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`ChartAnalysis` (a fresh dict; safe to modify).

    Self-contained (no ``$ref``), ``additionalProperties: false`` and every property
    required: what the prompt shows and what guided (structured) decoding enforces.
    """
    schema = ChartAnalysis.model_json_schema()
    schema["description"] = (
        "Reading of one candlestick chart: trend, visible patterns, support/resistance "
        "prices, confidence 0..1 and a one-sentence rationale."
    )
    schema["additionalProperties"] = False
    schema["required"] = list(ChartAnalysis.model_fields)
    return schema


Status = Literal["ok", "failed"]


def _to_ms(value: Any, name: str) -> int:
    """Epoch milliseconds from an int, datetime, numpy datetime64 or pandas Timestamp."""
    if isinstance(value, bool):
        raise TypeError(f"{name}: expected epoch ms or a timestamp, got a bool")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[ms]").astype(np.int64))
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        stamp: float = value.timestamp()
        return round(stamp * 1000)
    if hasattr(value, "value") and hasattr(value, "tz_localize"):  # pandas.Timestamp
        return _to_ms(value.to_pydatetime(), name)
    raise TypeError(f"{name}: expected epoch ms or a timestamp, got {type(value).__name__}")


class AnalysisRecord(BaseModel):
    """One analysed chart window, successful or not (a row of the analysis log).

    Attributes
    ----------
    instrument, timeframe : e.g. ``"EURUSD"``, ``"1h"``.
    window_start, window_end : open time of the window's first and last bar, UTC ms.
    model : the model id that produced it (e.g. ``"aio-chartnet-v1"``, a HF model id).
    backend : ``"cpu"``, ``"vllm"`` or ``"http"``.
    latency_ms : wall time spent on this window, ms (batched backends: the batch time
        divided by its size).
    status : ``"ok"`` (``analysis`` set) or ``"failed"`` (``error`` set, ``analysis`` None).
    analysis : the validated :class:`ChartAnalysis`, or None when failed.
    raw_text : what the model returned last (None for backends without text output).
    error : why it failed (None when ok).
    attempts : model calls made for this window (>= 1; retries included).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    instrument: str = Field(min_length=1)
    timeframe: str = Field(min_length=1)
    window_start: int = Field(description="open time of the first bar, UTC ms")
    window_end: int = Field(description="open time of the last bar, UTC ms")
    model: str = Field(min_length=1)
    backend: str = Field(min_length=1)
    latency_ms: float = Field(ge=0.0, allow_inf_nan=False)
    status: Status
    analysis: ChartAnalysis | None = None
    raw_text: str | None = None
    error: str | None = None
    attempts: int = Field(1, ge=1)

    @field_validator("window_start", "window_end", mode="before")
    @classmethod
    def _ms(cls, v: Any, info: Any) -> int:
        return _to_ms(v, info.field_name)

    @model_validator(mode="after")
    def _consistent(self) -> AnalysisRecord:
        if self.window_end < self.window_start:
            raise ValueError(
                f"window_end {self.window_end} ms precedes window_start {self.window_start} ms"
            )
        if self.status == "ok" and (self.analysis is None or self.error is not None):
            raise ValueError("an ok record needs an analysis and no error")
        if self.status == "failed" and (self.analysis is not None or not self.error):
            raise ValueError("a failed record needs an error and no analysis")
        return self

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_row(self) -> dict[str, Any]:
        """A flat dict with the columns of :data:`RECORD_SCHEMA` (windows as epoch ms)."""
        a = self.analysis
        return {
            "instrument": self.instrument,
            "timeframe": self.timeframe,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "model": self.model,
            "backend": self.backend,
            "latency_ms": float(self.latency_ms),
            "status": self.status,
            "trend": a.trend if a else None,
            "patterns": list(a.patterns) if a else None,
            "levels": list(a.levels) if a else None,
            "confidence": a.confidence if a else None,
            "rationale": a.rationale if a else None,
            "raw_text": self.raw_text,
            "error": self.error,
            "attempts": self.attempts,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AnalysisRecord:
        """Inverse of :meth:`to_row`; accepts timestamps or epoch ms and numpy lists."""

        def _val(key: str) -> Any:
            v = row.get(key)
            if isinstance(v, float) and math.isnan(v):
                return None
            return v

        analysis = None
        if row["status"] == "ok":
            analysis = ChartAnalysis.model_validate(
                {
                    "trend": _val("trend"),
                    "patterns": [str(p) for p in _val("patterns")],
                    "levels": [float(x) for x in _val("levels")],
                    "confidence": float(_val("confidence")),
                    "rationale": _val("rationale"),
                }
            )
        return cls(
            instrument=row["instrument"],
            timeframe=row["timeframe"],
            window_start=row["window_start"],
            window_end=row["window_end"],
            model=row["model"],
            backend=row["backend"],
            latency_ms=float(row["latency_ms"]),
            status=row["status"],
            analysis=analysis,
            raw_text=_val("raw_text"),
            error=_val("error"),
            attempts=int(row["attempts"]),
        )


RECORD_SCHEMA = pa.schema(
    [
        pa.field("instrument", pa.string(), nullable=False),
        pa.field("timeframe", pa.string(), nullable=False),
        pa.field("window_start", TS_TYPE, nullable=False),
        pa.field("window_end", TS_TYPE, nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("backend", pa.string(), nullable=False),
        pa.field("latency_ms", pa.float64(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("trend", pa.string()),
        pa.field("patterns", pa.list_(pa.string())),
        pa.field("levels", pa.list_(pa.float64())),
        pa.field("confidence", pa.float64()),
        pa.field("rationale", pa.string()),
        pa.field("raw_text", pa.string()),
        pa.field("error", pa.string()),
        pa.field("attempts", pa.int32(), nullable=False),
    ]
)
"""A record as a table row: analysis fields flattened, null when the record failed."""

RECORD_COLUMNS: tuple[str, ...] = tuple(RECORD_SCHEMA.names)


def records_to_table(records: Iterable[AnalysisRecord]) -> pa.Table:
    """Records as a table with :data:`RECORD_SCHEMA` (zero records: an empty table)."""
    rows = [r.to_row() for r in records]
    columns: dict[str, list[Any]] = {name: [row[name] for row in rows] for name in RECORD_COLUMNS}
    arrays = []
    for field in RECORD_SCHEMA:
        values = columns[field.name]
        if field.type == TS_TYPE:
            arrays.append(pa.array(values, type=pa.int64()).cast(TS_TYPE))
        else:
            arrays.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(arrays, schema=RECORD_SCHEMA)


def records_from_table(table: pa.Table) -> list[AnalysisRecord]:
    """Records back from a table holding (at least) the :data:`RECORD_SCHEMA` columns."""
    cols = {}
    for name in RECORD_COLUMNS:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64())
        cols[name] = col.to_pylist()
    return [
        AnalysisRecord.from_row({name: cols[name][i] for name in RECORD_COLUMNS})
        for i in range(table.num_rows)
    ]


# Keep the vocabulary and the schema in step: a new trend or pattern must reach both.
if tuple(Trend.__args__) != TRENDS or tuple(PatternName.__args__) != PATTERNS:  # type: ignore[attr-defined]
    raise ImportError(
        "aio_ray.patterns.vocabulary: Trend/PatternName disagree with TRENDS/PATTERNS"
    )
