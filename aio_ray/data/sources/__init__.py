"""Tick sources, one module each, registered here by name.

Stable public API::

    SOURCES                       # name -> module; the one place a source is registered
    get_source(name) -> TickSource   (from .base: loads the chosen module only)

A source module defines ``SOURCE = TickSource(name, section, ingest)``: ``section`` names the
:class:`~aio_ray.config.AppConfig` attribute holding its settings (None: it has none) and
``ingest(data, settings, validation, *, use_ray, progress)`` writes validated ticks into
``data.ticks_dir``. Adding a source is one module here plus one line below (and, when it has
settings, its section in ``configs/*.yaml`` and ``AppConfig``).

This module imports nothing, so :class:`~aio_ray.data.config.DataConfig` checks a source name
against :data:`SOURCES` without loading any source.
"""

from __future__ import annotations

__all__ = ["SOURCES", "SOURCE_NAMES"]

SOURCES: dict[str, str] = {
    "synthetic": "aio_ray.data.sources.synthetic",  # seeded generator, the embedded default
    "dukascopy": "aio_ray.data.sources.dukascopy",  # .bi5 hour files: HTTP with cache, or a mirror
    "files": "aio_ray.data.sources.files",  # Parquet/CSV tick files
}

SOURCE_NAMES: tuple[str, ...] = tuple(SOURCES)
