"""Typed, frozen configuration loaded from ``configs/*.yaml`` with command-line overrides.

Every model forbids unknown fields (a typo is an error, not a silent default) and is
immutable; :func:`config_id` gives a stable hash so a run can be reproduced and cached by it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from aio_ray.bars.timeframes import parse_timeframe
from aio_ray.errors import ConfigError
from aio_ray.library.config import LibraryConfig  # its home; re-exported here
from aio_ray.raycluster import RayConfig
from aio_ray.strategies.config import BacktestConfig, ObjectiveConfig, RankingConfig
from aio_ray.vision.config import VisionConfig
from serve.settings import ServeSettings


class Frozen(BaseModel):
    """Base of all configuration models: strict, immutable, hashable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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


class BarsConfig(Frozen):
    """Which bars are built and how days are cut."""

    timeframes: tuple[str, ...] = ("1m", "5m", "15m", "30m", "1h", "4h", "1d")
    daily_close: Literal["utc", "new_york_close"] = "utc"


class DataConfig(Frozen):
    """What the pipeline ingests by default."""

    source: Literal["synthetic", "dukascopy", "files"] = "synthetic"
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

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, v: str) -> str:
        if not (len(v) == 6 and v.isalpha()):
            raise ValueError(f"symbol must be six letters such as EURUSD, got {v!r}")
        return v.upper()


class SearchConfig(Frozen):
    """What the search explores and how candidates are judged (frozen; unknown fields are errors)."""

    families: tuple[str, ...] = Field(
        (), description="strategy families to search; empty: every registered family"
    )
    timeframes: tuple[str, ...] = Field(("15m", "1h", "4h"), description="bar timeframes to search")
    symbol: str = Field("EURUSD", description="symbol of the bars")
    n_trials: int = Field(
        200, ge=1, description="candidates (parameter sets) to evaluate, failed ones included"
    )
    seed: int = Field(0, ge=0, description="seed of every sampler (each island derives its own)")
    max_concurrent: int | None = Field(
        None,
        ge=1,
        description="islands (Tune trials) at once; None: the cluster's CPUs. "
        "Results do not depend on it",
    )
    objective: Literal["penalized_sharpe", "sharpe_and_drawdown"] = Field(
        "penalized_sharpe",
        description="penalized_sharpe: the scalar objective; sharpe_and_drawdown: NSGA-II "
        "maximizing OOS Sharpe and minimizing the worst OOS drawdown",
    )
    sampler: Literal["tpe", "cmaes", "nsga2", "random", "sobol", "grid"] | None = Field(
        None,
        description="how populations are proposed: tpe / cmaes / nsga2 (Optuna proposes "
        "neighbourhood centres), random, sobol, grid (sweeps); None: tpe, or nsga2 with "
        "objective sharpe_and_drawdown",
    )
    population_size: int = Field(
        512,
        ge=1,
        le=100_000,
        description="candidates per population (one kernel call, one Tune report)",
    )
    centres: int = Field(
        8,
        ge=1,
        le=1_000,
        description="Optuna proposals per population; each is expanded into "
        "population_size / centres neighbours",
    )
    neighbourhood_radius: float = Field(
        0.05,
        gt=0,
        le=1,
        description="std of a neighbour's perturbation, fraction of a "
        "parameter's levels (at least one step)",
    )
    island_size: int = Field(
        10_000,
        ge=1,
        description="most candidates of one island (Tune trial); a stream "
        "(timeframe x family) with more is split into several islands",
    )
    finalists: int = Field(
        8, ge=1, le=1_000, description="best candidates per island kept for the ranking"
    )
    max_failures: int = Field(
        2, ge=0, description="retries of an island whose worker died (from its last population)"
    )
    progress_interval_s: float = Field(3.0, gt=0, description="seconds between progress lines")
    n_folds: int = Field(4, ge=1, description="walk-forward folds")
    scheme: Literal["rolling", "anchored"] = Field("rolling", description="in-sample window scheme")
    oos_fraction: float = Field(0.25, gt=0, lt=1, description="OOS share of a fold's IS+OOS window")
    holdout_fraction: float = Field(0.2, ge=0, lt=1, description="final holdout, share of the span")
    warmup_bars: int = Field(100, ge=0, description="bars reserved for indicator warm-up")
    embargo_bars: int | None = Field(
        None,
        ge=0,
        description="bars left out between each in-sample window and the window it "
        "selects for (out-of-sample window or holdout); None: warmup_bars, the longest "
        "indicator horizon the spaces use",
    )
    matrix_candidates: int = Field(
        20_000,
        ge=2,
        description="most candidates per stream whose return series enter PBO "
        "and the effective-trials clustering (an even, seeded sample of the rest)",
    )
    objective_config: ObjectiveConfig = ObjectiveConfig()
    backtest: BacktestConfig = BacktestConfig()
    ranking: RankingConfig = RankingConfig()
    top: int = Field(5, ge=1, description="strategies in the final ranking")
    pattern_filter: bool = Field(
        True,
        description="also search the candle-pattern entry filter (pattern_filter, "
        "pattern_lookback); false pins it to 'none' so a small budget goes to the rules",
    )

    @field_validator("timeframes")
    @classmethod
    def _timeframes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("at least one timeframe is needed")
        names = tuple(parse_timeframe(t).name for t in v)
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate timeframes in {v}")
        return names

    @field_validator("families")
    @classmethod
    def _families(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        from aio_ray.strategies.space import SPACES  # the family registry: only when named

        unknown = [f for f in v if f not in SPACES]
        if unknown:
            raise ValueError(f"unknown families {unknown}; known: {sorted(SPACES)}")
        if len(set(v)) != len(v):
            raise ValueError(f"duplicate families in {v}")
        return v

    def sampler_name(self) -> str:
        """The population sampler used (``sampler``, or the objective's default)."""
        if self.sampler is not None:
            return self.sampler
        return "nsga2" if self.objective == "sharpe_and_drawdown" else "tpe"

    def embargo(self) -> int:
        """Bars between an in-sample window and the window it selects for."""
        return self.warmup_bars if self.embargo_bars is None else self.embargo_bars

    def family_names(self) -> tuple[str, ...]:
        """The families searched (all registered ones when ``families`` is empty)."""
        from aio_ray.strategies.space import SPACES  # the family registry: only when asked

        return self.families or tuple(sorted(SPACES))


class LoggingConfig(Frozen):
    """How the jobs and the ``aio`` command log (stderr): human text or one JSON object a line."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = Field(
        "text",
        description="json: one object per line (level, logger, message, time UTC) for log shippers",
    )


class ReplayConfig(Frozen):
    """Backtest mode: which ranked strategies are replayed, and from which library."""

    library_url: str | None = Field(
        None, description="library holding the strategies; None: this config's library.url"
    )
    run_id: str | None = Field(None, description="ranked run to take the top of; None: newest")
    top: int = Field(5, ge=1, description="how many of the run's ranking to replay")
    strategy_ids: tuple[str, ...] = Field((), description="replay exactly these ids instead")
    warmup_bars: int | None = Field(
        None,
        ge=0,
        description="leading bars that only warm indicators; None: each strategy's own warm-up "
        "(the first bar where all its indicators are defined)",
    )


class PatternsConfig(Frozen):
    """Pattern mining: every occurrence of the vocabulary's patterns in history and its
    forward-return statistics, stored in the library (``aio_ray.patterns``)."""

    enabled: bool = True
    timeframes: tuple[str, ...] = Field((), description="timeframes mined; empty: the search's")
    horizons: tuple[int, ...] = Field((1, 5, 20), description="forward horizons, bars")
    window: int = Field(64, ge=8, description="chart patterns' window, bars")
    min_count: int = Field(30, ge=1, description="validator: occurrences needed")
    min_abs_t: float = Field(2.0, ge=0, description="validator: |t| needed")

    @field_validator("horizons")
    @classmethod
    def _horizons(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(h < 1 for h in v):
            raise ValueError(f"horizons must be >= 1 bar, got {v}")
        return v


class AppConfig(Frozen):
    """The whole configuration of a run.

    ``mode``: ``search`` runs ingest -> bars -> indicators -> search -> ranking -> Pine;
    ``backtest`` runs ingest -> bars -> indicators and then replays ranked strategies from a
    library on this data (see :mod:`aio_ray.replay`), without searching.
    """

    mode: Literal["search", "backtest"] = "search"

    data: DataConfig = DataConfig()
    validation: ValidationConfig = ValidationConfig()
    dukascopy: DukascopyConfig = DukascopyConfig()
    synthetic: SyntheticConfig = SyntheticConfig()
    bars: BarsConfig = BarsConfig()
    search: SearchConfig = SearchConfig()
    library: LibraryConfig = LibraryConfig()
    serve: ServeSettings | None = None
    ray: RayConfig = RayConfig()
    logging: LoggingConfig = LoggingConfig()
    replay: ReplayConfig = ReplayConfig()
    patterns: PatternsConfig = PatternsConfig()
    vision: VisionConfig | None = Field(
        None, description="the vision stage; absent: skipped (no backend configured)"
    )


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted!r}: {key!r} is not a section")
    node[keys[-1]] = value


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> AppConfig:
    """Load ``path`` (YAML; None: defaults) and apply ``key.path=value`` overrides (values YAML).

    Raises ConfigError naming the file or override and the field that is wrong.
    """
    tree: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{p}: cannot read configuration: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: top level must be a mapping")
        tree = loaded
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        key, raw = item.split("=", 1)
        _set_path(tree, key.strip(), yaml.safe_load(raw))
    try:
        return AppConfig.model_validate(tree)
    except ValidationError as exc:
        where = str(path) if path else "configuration"
        raise ConfigError(f"{where}: {exc}") from exc


def config_id(cfg: BaseModel) -> str:
    """A stable 12-hex-digit id of a configuration (sha256 of its canonical JSON)."""
    blob = json.dumps(cfg.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
