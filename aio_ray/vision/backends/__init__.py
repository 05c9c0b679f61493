"""Vision backends behind one interface, and their typed settings.

Stable public API::

    VisionSettings                     # frozen, strict; embedded in AppConfig by the lead
    make_backend(name=None, settings=None) -> VisionBackend
    BACKENDS = ("cpu", "vllm", "http")  # registered in aio_ray.vision.registry
    AnalysisRequest, VisionBackend, VisionError, BackendUnavailableError   (from .base)

``cpu``: our ChartNet classifier (torch on CPU, shipped weights) + rule-based levels; runs
anywhere. ``http``: any OpenAI-compatible ``/v1/chat/completions`` server (``vllm serve``,
Ray Serve LLM via :mod:`aio_ray.vision.backends.serve_llm`, Ollama). ``vllm``: MiniCPM-V in
``vllm.LLM`` on a GPU (in-process engine; in a Ray actor pool through
:func:`aio_ray.vision.pool.analyze_dataset`, or Ray Data LLM's processor).
Heavy packages (torch, vllm) are imported only when a backend is built.
"""

from __future__ import annotations

import importlib

from aio_ray.vision.backends.base import (
    AnalysisRequest,
    BackendUnavailableError,
    VisionBackend,
    VisionError,
)
from aio_ray.vision.config import DEFAULT_VLM, VisionSettings
from aio_ray.vision.registry import BACKEND_CLASSES, BACKENDS

__all__ = [
    "BACKENDS",
    "DEFAULT_VLM",
    "AnalysisRequest",
    "BackendUnavailableError",
    "VisionBackend",
    "VisionError",
    "VisionSettings",
    "make_backend",
]


def make_backend(name: str | None = None, settings: VisionSettings | None = None) -> VisionBackend:
    """Build a backend by name (None: ``settings.backend``); it loads its model once.

    Raises
    ------
    VisionError
        ``name`` is not one of :data:`BACKENDS`.
    BackendUnavailableError
        the backend's package or weights are missing here (vllm without ``vllm`` installed,
        cpu without torch or weights).
    """
    settings = settings or VisionSettings()
    name = name or settings.backend
    target = BACKEND_CLASSES.get(name)
    if target is None:
        raise VisionError(f"unknown vision backend {name!r}; accepted: {', '.join(BACKENDS)}")
    module, cls = target.split(":")
    # registry: a backend module loads only when chosen (cpu needs torch, vllm the gpu extra)
    backend: VisionBackend = getattr(importlib.import_module(module), cls)(settings)
    return backend
