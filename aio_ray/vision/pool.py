"""Running a vision backend over many windows: in-process, or a Ray actor pool over Ray Data.

Stable public API::

    analyze_requests(backend, requests, *, batch_size=None, log=None) -> list[AnalysisRecord]
    request_rows(requests) -> list[dict]                    # AnalysisRequest.to_row(), one schema
    requests_dataset(requests) -> ray.data.Dataset          # a dataset of those rows
    analyze_dataset(ds, settings) -> ray.data.Dataset       # rows with RECORD_SCHEMA columns
    BackendActor                                            # the map_batches callable class
    records_of(ds) -> list[AnalysisRecord]                  # collect a record dataset
    log_dataset(ds, log) -> int                             # stream a record dataset into a log

``analyze_dataset`` maps :class:`BackendActor` with a fixed pool of ``settings.concurrency``
actors (``compute=ray.data.ActorPoolStrategy``; the ``concurrency=`` argument is deprecated
in Ray 2.60), ``settings.batch_size`` windows per call, ``settings.num_cpus`` and
``settings.gpus_per_actor`` per actor. Each actor builds its backend once (the model is
loaded once per actor, not per batch). With ``backend="vllm"`` and ``vllm_mode="processor"``
the work goes to Ray Data LLM instead (:func:`aio_ray.vision.backends.vllm_engine.
analyze_dataset_processor`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from aio_ray.vision.analysis import AnalysisRecord, records_from_table, records_to_table
from aio_ray.vision.backends import VisionSettings, make_backend
from aio_ray.vision.backends.base import AnalysisRequest, VisionBackend, request_png
from aio_ray.vision.backends.vllm_engine import analyze_dataset_processor
from aio_ray.vision.log import AnalysisLog

if TYPE_CHECKING:
    import ray.data

__all__ = [
    "BackendActor",
    "analyze_dataset",
    "analyze_requests",
    "log_dataset",
    "records_of",
    "request_rows",
    "requests_dataset",
]


def analyze_requests(
    backend: VisionBackend,
    requests: Sequence[AnalysisRequest],
    *,
    batch_size: int | None = None,
    log: AnalysisLog | None = None,
) -> list[AnalysisRecord]:
    """Analyse ``requests`` in this process, ``batch_size`` at a time (None: all at once).

    Returns one record per request, in order; each batch's records go to ``log`` if given.
    """
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    step = batch_size or max(1, len(requests))
    records: list[AnalysisRecord] = []
    for i in range(0, len(requests), step):
        chunk = list(requests[i : i + step])
        got = backend.analyze(chunk)
        if len(got) != len(chunk):
            raise RuntimeError(
                f"vision backend {backend.name!r} returned {len(got)} records for {len(chunk)} requests"
            )
        if log is not None:
            log.extend(got)
        records.extend(got)
    return records


def request_rows(requests: Sequence[AnalysisRequest]) -> list[dict[str, Any]]:
    """Rows of :meth:`AnalysisRequest.to_row` that fit one Arrow schema.

    Images stay (H, W) uint8 arrays when every request has one of the same shape (a tensor
    column: no PNG round trip); otherwise every image becomes PNG bytes (a binary column).
    """
    rows = [r.to_row() for r in requests]
    shapes = {r.image.shape if isinstance(r.image, np.ndarray) else None for r in requests}
    if len(shapes) > 1:  # bytes and arrays mixed, or arrays of several sizes
        for row, req in zip(rows, requests, strict=True):
            row["image"] = request_png(req)
    return rows


def requests_dataset(requests: Sequence[AnalysisRequest]) -> ray.data.Dataset:
    """A Ray dataset of request rows (see :func:`request_rows`)."""
    # heavy: Ray Data is loaded only when a dataset is analysed
    import ray.data

    return ray.data.from_items(request_rows(requests))


def _batch_requests(batch: dict[str, Any]) -> list[AnalysisRequest]:
    """Requests from a numpy-format batch of request rows."""
    n = len(batch["instrument"])
    cols = list(batch)
    out = []
    for i in range(n):
        row = {c: batch[c][i] for c in cols}
        img = row.get("image")
        if isinstance(img, np.ndarray) and img.dtype == object and img.ndim == 0:
            row["image"] = img.item()
        out.append(AnalysisRequest.from_row(row))
    return out


class BackendActor:
    """``map_batches`` callable class: builds the backend once, analyses each batch.

    Parameters
    ----------
    settings : the :class:`VisionSettings` (or its ``model_dump()``) naming the backend.
    """

    def __init__(self, settings: VisionSettings | dict[str, Any]) -> None:
        if isinstance(settings, dict):
            settings = VisionSettings.model_validate(settings)
        self.settings = settings
        self.backend = make_backend(settings.backend, settings)

    def __call__(self, batch: dict[str, Any]) -> pa.Table:
        records = self.backend.analyze(_batch_requests(batch))
        return records_to_table(records)


def analyze_dataset(ds: ray.data.Dataset, settings: VisionSettings) -> ray.data.Dataset:
    """Analyse a dataset of request rows with an actor pool; a dataset of record rows.

    Output rows have the :data:`aio_ray.vision.analysis.RECORD_SCHEMA` columns, one per input
    row (order across blocks is Ray Data's). The actor pool is lazy (nothing runs until the
    result is consumed); the Ray Data LLM path runs each retry round when called.
    """
    # heavy: Ray Data is loaded only when a dataset is analysed
    import ray.data

    if settings.backend == "vllm" and settings.vllm_mode == "processor":
        out: ray.data.Dataset = analyze_dataset_processor(ds, settings)
        return out
    kwargs: dict[str, Any] = {}
    gpus = settings.gpus_per_actor
    if gpus:
        kwargs["num_gpus"] = gpus
    if settings.accelerator_type:
        kwargs["accelerator_type"] = settings.accelerator_type
    return ds.map_batches(
        BackendActor,
        fn_constructor_kwargs={"settings": settings.model_dump(mode="json")},
        compute=ray.data.ActorPoolStrategy(size=settings.concurrency),
        batch_size=settings.batch_size,
        batch_format="numpy",
        num_cpus=settings.num_cpus,
        **kwargs,
    )


def records_of(ds: ray.data.Dataset) -> list[AnalysisRecord]:
    """All records of a record dataset, collected on the driver."""
    tables = list(ds.iter_batches(batch_format="pyarrow", batch_size=None))
    return [rec for t in tables for rec in records_from_table(t)]


def log_dataset(ds: ray.data.Dataset, log: AnalysisLog) -> int:
    """Stream a record dataset into ``log`` (driver side); returns the number of records."""
    n = 0
    for table in ds.iter_batches(batch_format="pyarrow", batch_size=None):
        recs = records_from_table(table)
        log.extend(recs)
        n += len(recs)
    return n
