"""The prompt every text-generating backend sends with a chart (vLLM, Ray Serve LLM, HTTP).

Stable public API::

    SYSTEM_PROMPT
    user_prompt(instrument, timeframe, window_start, window_end, summary, *, n_bars=None,
                price_low=None, price_high=None) -> str
    chat_messages(image_url, **prompt_kwargs) -> list[dict]       # OpenAI chat format
    minicpmv_messages(**prompt_kwargs) -> list[dict]              # MiniCPM-V placeholder format
    minicpmv_prompt(tokenizer, **prompt_kwargs) -> str            # chat template applied
    png_data_url(png) -> str
    chat_template_kwargs() -> dict                                # {"enable_thinking": False}
    MINICPMV_IMAGE_PLACEHOLDER, MINICPMV_STOP_TOKENS

Two ways to hand MiniCPM-V its image, both following vLLM's documentation:

* OpenAI chat format (``{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}``
  in the user turn): what an OpenAI-compatible server (``vllm serve``, Ray Serve LLM, Ollama)
  and Ray Data LLM's ``prepare_multimodal_stage`` accept; vLLM inserts the model's own image
  placeholder when it renders the chat template.
* Raw prompt for ``vllm.LLM.generate``: the user turn starts with MiniCPM-V's placeholder
  ``(<image>./</image>)``, then the question, and the tokenizer's chat template (loaded with
  ``trust_remote_code=True``) renders it with ``add_generation_prompt=True``; generation stops
  on ``<|im_end|>`` / ``<|endoftext|>`` (MiniCPM-V 2.6 and later). This is ``run_minicpmv_base``
  in vLLM's ``examples/offline_inference/vision_language.py`` (vllm-project/vllm).

MiniCPM-V 4.5 (Qwen3-based) has a thinking mode switched by the chat template variable
``enable_thinking`` (its cookbook: ``chat_template_kwargs={"enable_thinking": True}`` turns it
on). Every template rendering here passes :func:`chat_template_kwargs` (thinking off): the
answer must be the JSON object alone, and JSON-schema structured outputs constrain the
answer from its first token, where a ``<think>`` block cannot fit. Templates without the
variable (MiniCPM-V 2.6) ignore it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

from aio_ray.patterns.vocabulary import CANDLE_PATTERNS, CHART_PATTERNS, TRENDS
from aio_ray.vision.analysis import MAX_LEVELS, MAX_RATIONALE_CHARS, analysis_json_schema

__all__ = [
    "MINICPMV_IMAGE_PLACEHOLDER",
    "MINICPMV_STOP_TOKENS",
    "PATTERN_HINTS",
    "SYSTEM_PROMPT",
    "chat_messages",
    "chat_template_kwargs",
    "minicpmv_messages",
    "minicpmv_prompt",
    "png_data_url",
    "user_prompt",
]

MINICPMV_IMAGE_PLACEHOLDER = "(<image>./</image>)"
"""MiniCPM-V's image placeholder in a raw (non-OpenAI) user turn."""

MINICPMV_STOP_TOKENS: tuple[str, ...] = ("<|im_end|>", "<|endoftext|>")
"""End-of-turn tokens of MiniCPM-V 2.6 / o2.6 and later (ChatML-style templates).

Both are special tokens: vLLM matches ``stop`` strings against the detokenized text, which
leaves special tokens out unless ``skip_special_tokens=False``, so they are sent either as
``stop_token_ids`` (resolved with the model's tokenizer) or as ``stop`` strings together with
``skip_special_tokens=False`` (see :mod:`aio_ray.vision.backends.vllm_engine`)."""


def chat_template_kwargs() -> dict[str, bool]:
    """Extra chat template variables for MiniCPM-V: thinking mode off (MiniCPM-V 4.5)."""
    return {"enable_thinking": False}


SYSTEM_PROMPT = (
    "You are a careful technical analyst. You read one candlestick chart of a currency pair "
    "and answer with a single JSON object that follows the given JSON Schema, with no other "
    "text, no markdown and no comments."
)

PATTERN_HINTS: dict[str, str] = {
    "bullish_engulfing": "an up candle whose body covers the previous down candle's body",
    "bearish_engulfing": "a down candle whose body covers the previous up candle's body",
    "hammer": "small body near the high with a long lower wick, after a decline",
    "shooting_star": "small body near the low with a long upper wick, after a rise",
    "doji": "open and close almost equal",
    "double_top": "two similar highs with a trough between, then a break below the trough",
    "double_bottom": "two similar lows with a peak between, then a break above the peak",
    "head_and_shoulders": "three peaks, the middle highest, shoulders at similar heights",
    "inverse_head_and_shoulders": "three troughs, the middle lowest",
    "ascending_triangle": "flat highs and rising lows",
    "descending_triangle": "flat lows and falling highs",
    "symmetric_triangle": "falling highs and rising lows converging",
    "bull_flag": "a sharp rise followed by a short, shallow downward-sloping consolidation",
    "bear_flag": "a sharp fall followed by a short, shallow upward-sloping consolidation",
}
"""One-line definitions shown to the model (the detectors hold the exact rules)."""


def _utc(ms: int) -> str:
    t = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return t.strftime("%Y-%m-%d %H:%M")


def user_prompt(
    instrument: str,
    timeframe: str,
    window_start: int,
    window_end: int,
    summary: str,
    *,
    n_bars: int | None = None,
    price_low: float | None = None,
    price_high: float | None = None,
) -> str:
    """The question asked about one chart (text only; the image goes beside it).

    Parameters
    ----------
    instrument, timeframe : e.g. ``"EURUSD"``, ``"1h"``.
    window_start, window_end : open times of the first and last bar, UTC ms.
    summary : the indicator summary of the window (:func:`aio_ray.vision.summary.indicator_summary`).
    n_bars : bars in the chart, if known.
    price_low, price_high : the window's lowest low and highest high (quote currency), so
        the model can turn positions on the chart into prices for ``levels``.
    """
    lines = [
        f"Chart: {instrument} {timeframe} candles from {_utc(window_start)} to "
        f"{_utc(window_end)} UTC"
        + (f" ({n_bars} bars)" if n_bars else "")
        + ", oldest on the left.",
    ]
    if price_low is not None and price_high is not None:
        lines.append(
            f"Prices in the chart range from {price_low:.5f} (lowest low) to "
            f"{price_high:.5f} (highest high)."
        )
    if summary.strip():
        lines.append(f"Indicators on the last bar: {summary.strip()}")
    lines += [
        "",
        "Read the chart and answer with one JSON object with exactly these keys:",
        f'- "trend": one of {", ".join(TRENDS)} (the direction over the whole window).',
        (
            '- "patterns": the patterns you can see, each at most once, [] if none. Candlestick '
            "patterns count only on the last three candles; chart patterns must complete on "
            "the last bar. Allowed names:"
        ),
    ]
    for name in CANDLE_PATTERNS + CHART_PATTERNS:
        lines.append(f"  {name}: {PATTERN_HINTS[name]}")
    lines += [
        (
            f'- "levels": up to {MAX_LEVELS} support/resistance prices in {instrument} quote '
            "currency (numbers, not strings), [] if none."
        ),
        '- "confidence": your confidence in the reading, a number from 0 to 1.',
        (
            f'- "rationale": one sentence (at most {MAX_RATIONALE_CHARS} characters, no line '
            "breaks) explaining the reading."
        ),
        "",
        "JSON Schema of the answer:",
        json.dumps(analysis_json_schema(), separators=(",", ":")),
    ]
    return "\n".join(lines)


def png_data_url(png: bytes) -> str:
    """``data:image/png;base64,...`` for PNG bytes (how OpenAI-style APIs take an image)."""
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("png_data_url: the bytes are not a PNG file (bad signature)")
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def chat_messages(image_url: str, **prompt_kwargs: Any) -> list[dict[str, Any]]:
    """System + user turn in OpenAI chat format, the image first in the user content.

    ``image_url`` is usually :func:`png_data_url`; ``prompt_kwargs`` go to :func:`user_prompt`.
    """
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": image_url}},
                {"type": "text", "text": user_prompt(**prompt_kwargs)},
            ],
        },
    ]


def minicpmv_messages(**prompt_kwargs: Any) -> list[dict[str, str]]:
    """System + user turn with MiniCPM-V's image placeholder leading the user text."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {
            "role": "user",
            "content": f"{MINICPMV_IMAGE_PLACEHOLDER}\n{user_prompt(**prompt_kwargs)}",
        },
    ]


def minicpmv_prompt(tokenizer: Any, **prompt_kwargs: Any) -> str:
    """The raw prompt string for ``vllm.LLM.generate`` (tokenizer's chat template applied).

    ``tokenizer`` is the model's Hugging Face tokenizer (``trust_remote_code=True``), e.g.
    ``llm.get_tokenizer()``. Thinking mode is off (:func:`chat_template_kwargs`).
    """
    return str(
        tokenizer.apply_chat_template(
            minicpmv_messages(**prompt_kwargs),
            tokenize=False,
            add_generation_prompt=True,
            **chat_template_kwargs(),
        )
    )
