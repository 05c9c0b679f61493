"""Vision analysis of chart windows: one typed result, several backends, a Parquet log.

Modules (import what you need; torch and vllm load only with the backends that use them):

- :mod:`aio_ray.vision.analysis`: ``ChartAnalysis`` (the result), ``AnalysisRecord`` (a logged
  row), ``analysis_json_schema()``.
- :mod:`aio_ray.vision.prompts`, :mod:`aio_ray.vision.parse`: the prompt and the strict parser.
- :mod:`aio_ray.vision.backends`: ``VisionSettings``, ``make_backend("cpu"|"vllm"|"http")``,
  ``AnalysisRequest``; ``serve_llm`` builds the Ray Serve LLM app.
- :mod:`aio_ray.vision.pool`: ``analyze_requests`` (in-process), ``analyze_dataset`` (Ray
  actor pool / Ray Data LLM).
- :mod:`aio_ray.vision.log`: ``AnalysisLog``, ``read_log``.
- :mod:`aio_ray.vision.model`, ``summary``, ``dataset``, ``train``: ChartNet (the CPU model),
  indicator summaries, the multimodal dataset and training.
"""

from aio_ray.vision.analysis import AnalysisRecord, ChartAnalysis, analysis_json_schema

__all__ = ["AnalysisRecord", "ChartAnalysis", "analysis_json_schema"]
