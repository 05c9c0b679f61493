"""Typed, frozen configuration loaded from ``configs/*.yaml`` with command-line overrides.

The root of the configuration: each stage owns its section's model in its own ``config.py``
(``bars``, ``data``, ``strategies``, ``library``, ``vision``, ``serve.settings``, and
``RayConfig`` in ``raycluster``); this module composes them into :class:`AppConfig` and
re-exports them, so ``from aio_ray.config import SearchConfig`` keeps working.

Every model forbids unknown fields (a typo is an error, not a silent default) and is
immutable; :func:`config_id` gives a stable hash so a run can be reproduced and cached by it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator

from aio_ray.bars.config import BarsConfig
from aio_ray.data.config import (
    DataConfig,
    DukascopyConfig,
    SpikeRule,
    SyntheticConfig,
    ValidationConfig,
)
from aio_ray.errors import ConfigError
from aio_ray.frozen import Frozen, config_id
from aio_ray.library.config import LibraryConfig
from aio_ray.raycluster import RayConfig
from aio_ray.strategies.config import BacktestConfig, ObjectiveConfig, RankingConfig, SearchConfig
from aio_ray.vision.config import VisionConfig
from serve.settings import ServeSettings

__all__ = [
    "AppConfig",
    "BacktestConfig",
    "BarsConfig",
    "ConfigError",
    "DataConfig",
    "DukascopyConfig",
    "Frozen",
    "LibraryConfig",
    "LoggingConfig",
    "ObjectiveConfig",
    "PatternsConfig",
    "RankingConfig",
    "RayConfig",
    "ReplayConfig",
    "SearchConfig",
    "ServeSettings",
    "SpikeRule",
    "SyntheticConfig",
    "ValidationConfig",
    "VisionConfig",
    "config_id",
    "load_config",
]


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
