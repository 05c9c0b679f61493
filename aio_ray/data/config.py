"""Configuration of the data (ticks) stage: tick validation, the Dukascopy source, the seeded
synthetic generator, and what the pipeline ingests by default (:class:`DataConfig`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from aio_ray.data.sources import SOURCE_NAMES
from aio_ray.frozen import Frozen

__all__ = ["DataConfig", "DukascopyConfig", "SpikeRule", "SyntheticConfig", "ValidationConfig"]


class SpikeRule(Frozen):
    """A tick is a spike when its mid-price lies far from the median of its neighbours.

    With ``dev = |mid - median(mid over a centred window)|`` and ``sigma`` the robust scale
    (1.4826 x median absolute tick-to-tick mid change of the partition), a tick is quarantined
    when ``dev > k * sigma`` and ``dev > min_bps`` basis points of the mid. Both must hold, so a
    quiet day's tiny sigma cannot flag ordinary moves and a news burst cannot hide a bad print.
    A genuine level shift moves the window's median with it, so only isolated prints (up to
    ``window // 2`` in a row) can be flagged. On the real EUR/USD ticks of 2019-02-04/05 the
    largest deviation is 19 sigma and 1.2 bps, so the defaults (40 sigma, 10 bps ~ 11 pips)
    quarantine nothing there.
    """

    window: int = Field(11, ge=3, description="centred window, ticks (odd)")
    k: float = Field(40.0, gt=0, description="threshold in robust sigmas of tick changes")
    min_bps: float = Field(10.0, ge=0, description="minimum deviation, basis points of mid")

    @field_validator("window")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError("window must be odd")
        return v


class ValidationConfig(Frozen):
    """Rules that quarantine bad ticks (each with its reason)."""

    spike: SpikeRule = SpikeRule()
    check_spikes: bool = True


class DukascopyConfig(Frozen):
    """Where and how hour files are fetched."""

    base_url: str = "https://datafeed.dukascopy.com/datafeed"
    timeout_s: float = Field(20.0, gt=0, description="per request, seconds")
    retries: int = Field(4, ge=0, description="retries after the first attempt")
    backoff_s: float = Field(0.5, ge=0, description="first retry delay; doubles each retry")
    cache_dir: Path | None = Field(
        None, description="local cache in Dukascopy's layout; None: <out>/_cache/dukascopy"
    )
    hours_per_task: int = Field(24, ge=1, description="hour files fetched by one Ray task")


class SyntheticConfig(Frozen):
    """The seeded synthetic tick generator (calibrated on real EUR/USD ticks)."""

    seed: int = 7
    start_price: float = Field(
        1.10, gt=0, description="mid at 1970-01-01 UTC and the long-run level it reverts to"
    )
    intensity: float = Field(1.0, gt=0, description="multiplier on the calibrated tick rate")
    annual_vol: float = Field(0.07, gt=0, description="annualized volatility of the mid")
    edge: Literal["none", "mean_reversion", "momentum"] = Field(
        "none",
        description="planted, tradeable edge: none (a martingale mid), mean_reversion (an "
        "Ornstein-Uhlenbeck deviation of the log mid) or momentum (an integrated OU trend)",
    )
    edge_strength: float = Field(
        0.0,
        ge=0,
        le=5,
        validate_default=True,  # edge="momentum" alone must fail too
        description="std of the planted log-mid deviation, in units of the mid's martingale std "
        "over one half-life (annual_vol * sqrt(half-life / 374,400 trading minutes a year)); "
        "must be > 0 with an edge and 0 without",
    )
    edge_half_life_min: float = Field(
        45.0,
        gt=0,
        le=1440,
        description="half-life of the edge, minutes of calendar time: of the deviation "
        "(mean_reversion) or of the trend's velocity (momentum)",
    )

    @field_validator("edge_strength")
    @classmethod
    def _strength_matches_edge(cls, v: float, info: ValidationInfo) -> float:
        edge = info.data.get("edge")
        if edge is None:  # edge itself was invalid; its own error says so
            return v
        if edge != "none" and v <= 0:
            raise ValueError(f"edge_strength must be > 0 with edge={edge!r} (got {v})")
        if edge == "none" and v > 0:
            raise ValueError(
                f"edge_strength={v} has no effect with edge='none': set edge to "
                "'mean_reversion' or 'momentum', or edge_strength to 0"
            )
        return v


class DataConfig(Frozen):
    """What the pipeline ingests by default."""

    source: str = Field(
        "synthetic",
        description="tick source, a name registered in aio_ray.data.sources.SOURCES",
        json_schema_extra={"enum": list(SOURCE_NAMES)},
    )
    symbol: str = "EURUSD"
    start: dt.date = dt.date(2025, 7, 1)
    end: dt.date = dt.date(2025, 8, 1)
    workdir: Path = Path("data")
    mirror: Path | None = Field(None, description="dukascopy: read this local mirror, no HTTP")
    files: tuple[Path, ...] = Field((), description="files: Parquet/CSV tick files to ingest")

    @property
    def ticks_dir(self) -> Path:
        return self.workdir / "ticks"

    @property
    def bars_dir(self) -> Path:
        return self.workdir / "bars"

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        if v not in SOURCE_NAMES:
            raise ValueError(f"unknown tick source {v!r}; accepted: {', '.join(SOURCE_NAMES)}")
        return v

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, v: str) -> str:
        if not (len(v) == 6 and v.isalpha()):
            raise ValueError(f"symbol must be six letters such as EURUSD, got {v!r}")
        return v.upper()
