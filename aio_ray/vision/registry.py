"""Vision backends by name: the one place a backend is registered.

A backend is one module under :mod:`aio_ray.vision.backends` holding a
:class:`~aio_ray.vision.backends.base.VisionBackend` subclass built from
:class:`~aio_ray.vision.config.VisionSettings`; adding one is that module plus its line below.
This module imports nothing, so the settings check a backend name without loading a backend
(which may need torch or vllm).
"""

from __future__ import annotations

__all__ = ["BACKENDS", "BACKEND_CLASSES"]

BACKEND_CLASSES: dict[str, str] = {
    "cpu": "aio_ray.vision.backends.cpu:CpuBackend",  # ChartNet on CPU + rule-based levels
    "vllm": "aio_ray.vision.backends.vllm_engine:VllmBackend",  # MiniCPM-V in vllm.LLM, a GPU
    "http": "aio_ray.vision.backends.http:HttpBackend",  # any OpenAI-compatible server
}
"""name -> ``module:class`` of the backend, loaded only when chosen."""

BACKENDS: tuple[str, ...] = tuple(BACKEND_CLASSES)
