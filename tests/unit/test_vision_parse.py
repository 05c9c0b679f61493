"""ChartAnalysis, its JSON Schema, the prompt, and the strict parser of model answers."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from aio_ray.patterns.vocabulary import PATTERNS, TRENDS
from aio_ray.vision.analysis import (
    AnalysisRecord,
    ChartAnalysis,
    analysis_json_schema,
    records_from_table,
    records_to_table,
)
from aio_ray.vision.parse import ParseFailure, extract_json_object, parse_analysis
from aio_ray.vision.prompts import (
    MINICPMV_IMAGE_PLACEHOLDER,
    SYSTEM_PROMPT,
    chat_messages,
    minicpmv_messages,
    png_data_url,
    user_prompt,
)

GOOD = {
    "trend": "up",
    "patterns": ["double_bottom", "hammer"],
    "levels": [1.1012, 1.1055],
    "confidence": 0.8,
    "rationale": "Higher lows after a double bottom point up.",
}


# --------------------------------------------------------------------------- schema


def test_analysis_accepts_a_complete_answer_and_is_frozen():
    a = ChartAnalysis(**GOOD)
    assert a.trend == "up" and a.patterns == ["double_bottom", "hammer"]
    with pytest.raises(ValidationError):
        a.trend = "down"  # type: ignore[misc]
    assert hash(a) == hash(ChartAnalysis(**GOOD))


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"trend": "bullish"}, "trend"),
        ({"patterns": ["cup_and_handle"]}, "patterns"),
        ({"patterns": ["doji", "doji"]}, "unique"),
        ({"levels": [1.1, -1.0]}, "greater than 0"),
        ({"levels": [1.1, float("inf")]}, "finite"),
        ({"levels": [1.0] * 7}, "at most 6"),
        ({"confidence": 1.2}, "less than or equal to 1"),
        ({"confidence": "0.5"}, "valid number"),
        ({"rationale": ""}, "at least 1"),
        ({"rationale": "x" * 301}, "at most 300"),
        ({"rationale": "One.\nTwo."}, "one line"),
        ({"extra": 1}, "Extra inputs"),
    ],
)
def test_analysis_rejects_each_invalid_field(change, needle):
    with pytest.raises(ValidationError, match=needle):
        ChartAnalysis.model_validate({**GOOD, **change})


@pytest.mark.parametrize("field", list(GOOD))
def test_analysis_requires_every_field(field):
    data = {k: v for k, v in GOOD.items() if k != field}
    with pytest.raises(ValidationError, match="Field required"):
        ChartAnalysis.model_validate(data)


def test_json_schema_lists_the_vocabulary_and_requires_everything():
    s = analysis_json_schema()
    assert s["type"] == "object" and s["additionalProperties"] is False
    assert set(s["required"]) == set(GOOD)
    assert s["properties"]["trend"]["enum"] == list(TRENDS)
    assert s["properties"]["patterns"]["items"]["enum"] == list(PATTERNS)
    assert s["properties"]["patterns"]["uniqueItems"] is True
    assert s["properties"]["levels"]["maxItems"] == 6
    assert (
        s["properties"]["confidence"]["minimum"] == 0
        and s["properties"]["confidence"]["maximum"] == 1
    )
    assert "$ref" not in json.dumps(s) and "$defs" not in s
    s["title"] = "changed"
    assert analysis_json_schema()["title"] == "ChartAnalysis"  # a fresh copy each call


def test_record_round_trips_through_an_arrow_table():
    ok = AnalysisRecord(
        instrument="EURUSD",
        timeframe="1h",
        window_start=1_549_238_400_000,
        window_end=1_549_465_200_000,
        model="m",
        backend="http",
        latency_ms=12.5,
        status="ok",
        analysis=ChartAnalysis(**GOOD),
        raw_text=json.dumps(GOOD),
        attempts=2,
    )
    bad = AnalysisRecord(
        instrument="EURUSD",
        timeframe="1h",
        window_start=1_549_238_400_000,
        window_end=1_549_465_200_000,
        model="m",
        backend="http",
        latency_ms=3.0,
        status="failed",
        raw_text="not json",
        error="invalid answer",
        attempts=3,
    )
    table = records_to_table([ok, bad])
    assert str(table.schema.field("window_start").type) == "timestamp[ms, tz=UTC]"
    assert table.column("trend").to_pylist() == ["up", None]
    assert records_from_table(table) == [ok, bad]


def test_record_status_must_match_its_content():
    base = {
        "instrument": "EURUSD",
        "timeframe": "1h",
        "window_start": 0,
        "window_end": 1,
        "model": "m",
        "backend": "cpu",
        "latency_ms": 1.0,
    }
    with pytest.raises(ValidationError, match="ok record needs an analysis"):
        AnalysisRecord(**base, status="ok")
    with pytest.raises(ValidationError, match="failed record needs an error"):
        AnalysisRecord(**base, status="failed", analysis=ChartAnalysis(**GOOD), error="x")
    with pytest.raises(ValidationError, match="precedes"):
        AnalysisRecord(**{**base, "window_start": 5}, status="failed", error="x")


# --------------------------------------------------------------------------- prompt


def test_prompt_names_window_vocabulary_schema_and_summary():
    text = user_prompt(
        "EURUSD",
        "1h",
        1_549_238_400_000,
        1_549_465_200_000,
        "RSI(14) 61.2",
        n_bars=64,
        price_low=1.1402,
        price_high=1.1471,
    )
    assert "EURUSD 1h" in text and "2019-02-04 00:00" in text and "2019-02-06 15:00 UTC" in text
    assert "(64 bars)" in text and "1.14020" in text and "1.14710" in text
    assert "RSI(14) 61.2" in text
    for name in PATTERNS:
        assert f"  {name}: " in text
    schema_line = text.rsplit("\n", 1)[1]
    assert json.loads(schema_line) == analysis_json_schema()


def test_chat_messages_put_the_image_url_in_the_user_turn():
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 10
    url = png_data_url(png)
    assert url.startswith("data:image/png;base64,")
    msgs = chat_messages(
        url, instrument="EURUSD", timeframe="4h", window_start=0, window_end=3_600_000, summary=""
    )
    assert msgs[0] == {"role": "system", "content": SYSTEM_PROMPT}
    parts = msgs[1]["content"]
    assert parts[0] == {"type": "image_url", "image_url": {"url": url}}
    assert parts[1]["type"] == "text" and "EURUSD 4h" in parts[1]["text"]
    with pytest.raises(ValueError, match="not a PNG"):
        png_data_url(b"GIF89a")


def test_minicpmv_messages_lead_the_user_turn_with_the_image_placeholder():
    msgs = minicpmv_messages(
        instrument="EURUSD", timeframe="1h", window_start=0, window_end=0, summary=""
    )
    assert msgs[1]["role"] == "user"
    assert msgs[1]["content"].startswith(MINICPMV_IMAGE_PLACEHOLDER + "\n")
    assert MINICPMV_IMAGE_PLACEHOLDER == "(<image>./</image>)"


# --------------------------------------------------------------------------- parser


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(GOOD),
        "```json\n" + json.dumps(GOOD, indent=2) + "\n```",
        "```\n" + json.dumps(GOOD) + "\n```",
        "Here is my reading:\n" + json.dumps(GOOD) + "\nHope it helps.",
        "  \n" + json.dumps(GOOD) + "  \n",
    ],
)
def test_parse_accepts_one_object_plain_fenced_or_in_prose(text):
    assert parse_analysis(text) == ChartAnalysis(**GOOD)


@pytest.mark.parametrize(
    "text, stage, needle",
    [
        ("", "extract", "no JSON object"),
        ("The trend is up.", "extract", "no JSON object"),
        (json.dumps(GOOD) + json.dumps(GOOD), "extract", "2 JSON objects"),
        ("```json\n{}\n```\n```json\n{}\n```", "extract", "2 fenced"),
        ("```json\nup\n```", "extract", "does not start"),
        (json.dumps(GOOD)[:-5], "json", "malformed"),
        (json.dumps(GOOD).replace("0.8", "NaN"), "json", "NaN"),
        ('{"trend": "up", "trend": "down"}', "json", "duplicate key"),
        (json.dumps({**GOOD, "confidence": "high"}), "schema", "confidence"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "levels"}), "schema", "levels"),
        (json.dumps({**GOOD, "patterns": ["double_bottom", "flag"]}), "schema", "patterns"),
    ],
)
def test_parse_fails_whole_with_raw_text_and_reason(text, stage, needle):
    got = parse_analysis(text)
    assert isinstance(got, ParseFailure)
    assert got.raw_text == text and got.stage == stage and not got.ok
    assert needle in got.error


def test_extract_ignores_braces_inside_strings():
    obj = {**GOOD, "rationale": 'A {brace} and a "quote" stay in the string.'}
    assert extract_json_object("x " + json.dumps(obj) + " y") == json.dumps(obj)
    assert parse_analysis(json.dumps(obj)).rationale == obj["rationale"]


analyses = st.builds(
    ChartAnalysis,
    trend=st.sampled_from(TRENDS),
    patterns=st.lists(st.sampled_from(PATTERNS), unique=True, max_size=len(PATTERNS)),
    levels=st.lists(st.floats(min_value=1e-6, max_value=1e6, allow_nan=False), max_size=6),
    confidence=st.floats(min_value=0, max_value=1),
    rationale=st.text(
        st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)),
        min_size=1,
        max_size=300,
    ).filter(str.strip),
)


@settings(max_examples=150, deadline=None)
@given(a=analyses, wrap=st.sampled_from(["plain", "fence", "prose"]))
def test_parse_round_trips_every_valid_analysis(a, wrap):
    blob = a.model_dump_json()
    text = {"plain": blob, "fence": f"```json\n{blob}\n```", "prose": f"Answer: {blob}"}[wrap]
    assert parse_analysis(text) == a


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_parse_never_raises_and_never_half_parses(text):
    got = parse_analysis(text)
    assert isinstance(got, (ChartAnalysis, ParseFailure))
    if isinstance(got, ParseFailure):
        assert got.raw_text == text and got.error
