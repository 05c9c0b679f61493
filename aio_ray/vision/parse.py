"""Strict parsing of a model's text answer into a :class:`ChartAnalysis`.

Stable public API::

    parse_analysis(text) -> ChartAnalysis | ParseFailure
    extract_json_object(text) -> str              # raises ParseError
    ParseFailure(raw_text, error, stage)          # stage: "extract" | "json" | "schema"

What is accepted: the text is one JSON object, optionally inside one Markdown code fence
(```` ```json ... ``` ````), optionally with prose around it. More than one object, a
truncated object, duplicate keys, ``NaN``/``Infinity``, or anything :class:`ChartAnalysis`
rejects makes the whole answer a failure: nothing is ever half-parsed (no defaults filled
in, no fields dropped). Retrying is the backend runner's job.

A reasoning block that opens the answer (``<think>...</think>``, what MiniCPM-V 4.5 writes
when a server renders its chat template with thinking on) is not part of the answer and is
skipped before the object is looked for; an unclosed one (reasoning cut off by the token
limit) is an ``"extract"`` failure that says so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from aio_ray.errors import AioError
from aio_ray.vision.analysis import ChartAnalysis

__all__ = ["ParseError", "ParseFailure", "extract_json_object", "parse_analysis"]

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_-]*)[ \t]*\r?\n(.*?)```", re.DOTALL)
_THINK_OPEN = re.compile(r"\A\s*<think>")
_THINK_BLOCK = re.compile(r"\A\s*<think>.*?</think>", re.DOTALL)
_MAX_ERROR_CHARS = 2000


class ParseError(AioError, ValueError):
    """A model answer holds no single, well-formed JSON object (``stage`` says which step)."""

    def __init__(self, stage: str, problem: str) -> None:
        super().__init__(f"{stage}: {problem}")
        self.stage = stage
        self.problem = problem


@dataclass(frozen=True)
class ParseFailure:
    """A model answer that did not give a valid :class:`ChartAnalysis`.

    Attributes
    ----------
    raw_text : the answer exactly as received.
    error : what was wrong (the JSON error or pydantic's validation message).
    stage : ``"extract"`` (no single JSON object found), ``"json"`` (malformed JSON) or
        ``"schema"`` (valid JSON that is not a valid analysis).
    """

    raw_text: str
    error: str
    stage: Literal["extract", "json", "schema"]

    @property
    def ok(self) -> bool:
        return False


def _objects_in(text: str) -> list[tuple[int, int]]:
    """Spans of the top-level ``{...}`` candidates in ``text`` (balanced braces, strings skipped)."""
    spans: list[tuple[int, int]] = []
    depth = 0
    start = -1
    in_str = False
    escape = False
    for i, ch in enumerate(text):
        if in_str:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"' and depth > 0:
            in_str = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append((start, i + 1))
    if depth > 0:
        spans.append((start, len(text)))  # unterminated: let the JSON step report it
    return spans


def extract_json_object(text: str) -> str:
    """The text of the single JSON object in ``text``.

    A fenced block, when present, must be the only one and its whole content is the
    object; otherwise exactly one top-level ``{...}`` may appear in the text.

    Raises
    ------
    ParseError
        stage ``"extract"``: no object, several objects or several fenced blocks.
    """
    fences = _FENCE.findall(text)
    if len(fences) > 1:
        raise ParseError("extract", f"{len(fences)} fenced code blocks; expected one")
    if fences:
        body: str = fences[0][1].strip()
        if not body.startswith("{"):
            raise ParseError("extract", "the fenced block does not start with a JSON object")
        return body
    spans = _objects_in(text)
    if not spans:
        raise ParseError("extract", "no JSON object in the answer")
    if len(spans) > 1:
        raise ParseError("extract", f"{len(spans)} JSON objects in the answer; expected one")
    a, b = spans[0]
    return text[a:b]


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _load_strict(blob: str) -> Any:
    return json.loads(blob, parse_constant=_no_constants, object_pairs_hook=_no_duplicates)


def parse_analysis(text: str) -> ChartAnalysis | ParseFailure:
    """Parse a model answer; a :class:`ChartAnalysis` or a :class:`ParseFailure`, never a mix."""
    if not isinstance(text, str):
        return ParseFailure(repr(text), f"answer is {type(text).__name__}, not text", "extract")
    answer = text
    if _THINK_OPEN.match(text):
        thought = _THINK_BLOCK.match(text)
        if thought is None:
            return ParseFailure(
                text, "the answer is an unclosed <think> block (thinking mode on?)", "extract"
            )
        answer = text[thought.end() :]
    try:
        blob = extract_json_object(answer)
    except ParseError as exc:
        return ParseFailure(text, exc.problem, "extract")
    try:
        obj = _load_strict(blob)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        return ParseFailure(text, f"malformed JSON: {exc}", "json")
    if not isinstance(obj, dict):
        return ParseFailure(text, f"JSON is a {type(obj).__name__}, not an object", "json")
    try:
        return ChartAnalysis.model_validate(obj)
    except ValidationError as exc:
        msg = str(exc)
        if len(msg) > _MAX_ERROR_CHARS:
            msg = msg[:_MAX_ERROR_CHARS] + "..."
        return ParseFailure(text, msg, "schema")
