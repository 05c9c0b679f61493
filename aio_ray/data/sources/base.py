"""The interface every tick source implements, and the lookup by name."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from aio_ray.data.config import DataConfig, ValidationConfig
from aio_ray.data.ingest import IngestReport, Progress
from aio_ray.data.sources import SOURCES
from aio_ray.errors import SourceError
from aio_ray.frozen import Frozen

__all__ = ["IngestFn", "TickSource", "get_source"]

IngestFn = Callable[..., IngestReport]
"""``ingest(data, settings, validation, *, use_ray, progress) -> IngestReport``"""


@dataclass(frozen=True)
class TickSource:
    """A registered tick source.

    ``section`` is the :class:`~aio_ray.config.AppConfig` attribute holding the source's own
    settings (``"synthetic"`` -> ``SyntheticConfig``), or None when it has none; ``settings``
    is the type that section must have.
    """

    name: str
    ingest_fn: IngestFn
    section: str | None = None
    settings: type[Frozen] | None = None

    def ingest(
        self,
        data: DataConfig,
        settings: Frozen | None,
        validation: ValidationConfig,
        *,
        use_ray: bool = True,
        progress: Progress | None = None,
    ) -> IngestReport:
        """Ingest ``data``'s range (or files) into ``data.ticks_dir``."""
        if self.settings is not None and not isinstance(settings, self.settings):
            raise SourceError(
                self.name,
                f"needs its {self.section!r} settings as {self.settings.__name__}, "
                f"got {type(settings).__name__}",
            )
        return self.ingest_fn(data, settings, validation, use_ray=use_ray, progress=progress)


def get_source(name: str) -> TickSource:
    """The source registered as ``name`` in :data:`~aio_ray.data.sources.SOURCES`.

    Raises
    ------
    SourceError
        ``name`` is not registered (the message lists those that are).
    """
    module = SOURCES.get(name)
    if module is None:
        raise SourceError("ingest", f"unknown tick source {name!r}; accepted: {', '.join(SOURCES)}")
    source = importlib.import_module(module).SOURCE
    if not isinstance(source, TickSource) or source.name != name:
        raise SourceError("ingest", f"{module}.SOURCE is not the TickSource {name!r}")
    return source
