"""MiniCPM-V behind an OpenAI-compatible API with Ray Serve LLM (``ray.serve.llm``).

Stable public API::

    llm_config_dict(settings) -> dict            # the LLMConfig fields, plain data
    build_llm_app(settings) -> ray.serve Application   # build_openai_app({"llm_configs": [...]})
    serve_config(settings, *, app_name="vision-llm", route_prefix="/") -> dict
                                                  # a Serve config file (``serve deploy``)

The app serves ``/v1/chat/completions`` (and ``/v1/models``) for the model id
``settings.served_model or settings.model_source``; point the ``http`` backend at it
(``base_url = http://HEAD:8000/v1``) so online ``POST /analyze`` and batch jobs share one
engine. Replicas autoscale between 1 and ``settings.concurrency``, each on one GPU of
``settings.accelerator_type``. ``ray.serve.llm`` imports vLLM's protocol models, so building
the app needs ``vllm`` (``pip install -e '.[gpu]'``); the dicts above need nothing.
"""

from __future__ import annotations

from typing import Any

from aio_ray.vision.backends.base import BackendUnavailableError
from aio_ray.vision.backends.vllm_engine import VLLM_INSTALL_HINT, engine_kwargs

__all__ = ["build_llm_app", "llm_config_dict", "serve_config"]


def llm_config_dict(settings: Any) -> dict[str, Any]:
    """The fields of ``ray.serve.llm.LLMConfig`` for ``settings`` (JSON-able)."""
    cfg: dict[str, Any] = {
        "model_loading_config": {
            "model_id": settings.http_model,
            "model_source": settings.model_source,
        },
        "deployment_config": {
            "autoscaling_config": {"min_replicas": 1, "max_replicas": settings.concurrency},
        },
        "engine_kwargs": engine_kwargs(settings),
    }
    if settings.accelerator_type:
        cfg["accelerator_type"] = settings.accelerator_type
    return cfg


def _serve_llm() -> Any:
    try:
        # optional dependency (gpu extra): ray[llm]
        import ray.serve.llm as serve_llm
    except ImportError as exc:  # ray.serve.llm raises ImportError without vllm (or sglang)
        raise BackendUnavailableError(
            "serve-llm", "the package 'vllm' (ray.serve.llm imports it)", VLLM_INSTALL_HINT
        ) from exc
    return serve_llm


def build_llm_app(settings: Any) -> Any:
    """The Ray Serve application serving MiniCPM-V through the OpenAI API.

    Run it with ``serve.run(build_llm_app(settings))`` on a cluster with GPU workers.

    Raises
    ------
    BackendUnavailableError
        ``ray.serve.llm`` cannot be imported here (vllm is not installed).
    """
    serve_llm = _serve_llm()
    cfg = serve_llm.LLMConfig(**llm_config_dict(settings))
    return serve_llm.build_openai_app({"llm_configs": [cfg]})


def serve_config(
    settings: Any, *, app_name: str = "vision-llm", route_prefix: str = "/"
) -> dict[str, Any]:
    """A Ray Serve config file (as a dict; dump it to YAML) deploying the same app.

    ``serve deploy vision-llm.yaml`` builds it with ``ray.serve.llm:build_openai_app`` on the
    cluster, so the driver needs no vllm.
    """
    return {
        "applications": [
            {
                "name": app_name,
                "route_prefix": route_prefix,
                "import_path": "ray.serve.llm:build_openai_app",
                "args": {"llm_configs": [llm_config_dict(settings)]},
            }
        ]
    }
