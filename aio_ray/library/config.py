"""Configuration of the strategy library: the one default URL and :class:`LibraryConfig`.

Kept free of heavy imports (no sqlalchemy or sqlmodel) so that the root configuration
(:mod:`aio_ray.config`) can compose it cheaply. ``LibraryConfig`` is re-exported from its
former home, :mod:`aio_ray.config`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DEFAULT_URL", "LibraryConfig", "ensure_sqlite_dir", "sqlite_file"]

DEFAULT_URL = "sqlite:///data/library.db"
"""The library used when neither an argument, ``AIO_LIBRARY_URL`` nor a config names one
(a SQLite file under ``data/`` of the working directory; the folder is created on open)."""

_SQLITE_PREFIX = "sqlite:///"


class LibraryConfig(BaseModel):
    """Where the strategy library lives (sqlmodel URL: SQLite file or PostgreSQL)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(DEFAULT_URL, description="e.g. postgresql+psycopg://u:p@host/db")


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite file URL (``sqlite:///path``), else None (PostgreSQL,
    in-memory SQLite, SQLite URI filenames)."""
    if not url.startswith(_SQLITE_PREFIX):
        return None
    path = url[len(_SQLITE_PREFIX) :].split("?", 1)[0]
    if path in ("", ":memory:") or path.startswith("file:"):
        return None
    return Path(path).expanduser()


def ensure_sqlite_dir(url: str) -> None:
    """Create the folder of a SQLite file URL if it is missing (nothing for other URLs).

    Raises OSError when the folder cannot be created (e.g. a file stands in its way).
    """
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
