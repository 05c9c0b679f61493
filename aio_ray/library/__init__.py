"""The strategy library: runs, strategies, trials, walk-forward metrics, trades and rankings.

SQLite by default (``sqlite:///path.db``), PostgreSQL for shared deployments
(``postgresql+psycopg://...``). Open it with :func:`open_library`.
"""

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
    DEFAULT_URL,
    Library,
    LibraryError,
    LibraryUnavailableError,
    open_library,
)

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
