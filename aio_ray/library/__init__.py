"""The strategy library: runs, strategies, trials, walk-forward metrics, trades and rankings.

SQLite by default (:data:`DEFAULT_URL`, ``sqlite:///data/library.db``), PostgreSQL for shared
deployments (``postgresql+psycopg://...``). Open it with :func:`open_library`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aio_ray.library.config import DEFAULT_URL
    from aio_ray.library.models import (
        IN_SAMPLE,
        METRIC_COLUMNS,
        OUT_OF_SAMPLE,
        TRADE_FIELDS,
        RankedRecord,
        RunRecord,
        StrategyRecord,
        canonical_json,
        strategy_id,
    )
    from aio_ray.library.repo import (
        Library,
        LibraryError,
        LibraryUnavailableError,
        open_library,
    )

# Exports resolve lazily (PEP 562) so that importing a light submodule such as
# ``aio_ray.library.config`` (which the root configuration does) never loads sqlmodel.
_EXPORTS = {
    "DEFAULT_URL": "config",
    "IN_SAMPLE": "models",
    "METRIC_COLUMNS": "models",
    "OUT_OF_SAMPLE": "models",
    "TRADE_FIELDS": "models",
    "RankedRecord": "models",
    "RunRecord": "models",
    "StrategyRecord": "models",
    "canonical_json": "models",
    "strategy_id": "models",
    "Library": "repo",
    "LibraryError": "repo",
    "LibraryUnavailableError": "repo",
    "open_library": "repo",
}

__all__ = [
    "DEFAULT_URL",
    "IN_SAMPLE",
    "METRIC_COLUMNS",
    "OUT_OF_SAMPLE",
    "TRADE_FIELDS",
    "Library",
    "LibraryError",
    "LibraryUnavailableError",
    "RankedRecord",
    "RunRecord",
    "StrategyRecord",
    "canonical_json",
    "open_library",
    "strategy_id",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'aio_ray.library' has no attribute {name!r}")
    return getattr(importlib.import_module(f"aio_ray.library.{module}"), name)
