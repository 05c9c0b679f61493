"""The Pine parser's prediction cache: a process that loads it parses exactly as a cold parser
does (same tree, same syntax errors), and a damaged, foreign or unsafe file is ignored with
the reason (parsing then goes on cold) and replaced by a good one."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aio_ray.pine import parser_cache
from aio_ray.pine.parser_cache import load_parser_cache
from tests.support.pine_fixtures import require_pynescript

GOOD = (
    '//@version=6\nindicator("t", overlay=true)\nlen = input.int(14, "Length")\n'
    'x = ta.sma(close, len)\nplot(x > open ? x : na, "x")\n'
)
BROKEN = GOOD.replace("ta.sma(close, len)", "ta.sma(close, len")

PROBE = r"""
import json, sys
from pynescript.ast import dump, parse
from aio_ray.pine import parser_cache
from aio_ray.pine.verify import check_syntax
good, broken = sys.argv[1], sys.argv[2]
bad = check_syntax(broken)
print(json.dumps({
    "loaded": parser_cache._state["states"] > 0,
    "tree": dump(parse(good)),
    "good_ok": check_syntax(good).ok,
    "bad": [bad.ok, bad.error, bad.line, bad.column],
}))
"""


def _probe(cache: Path) -> tuple[dict, str]:
    env = dict(os.environ, AIO_PINE_PARSER_CACHE=str(cache))
    out = subprocess.run([sys.executable, "-c", PROBE, GOOD, BROKEN], env=env,
                         capture_output=True, text=True, timeout=600, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


@pytest.mark.slow
def test_a_loaded_cache_parses_like_a_cold_parser_and_a_damaged_one_is_rebuilt(
    tmp_path: Path,
) -> None:
    require_pynescript()
    cache = tmp_path / "pine.pickle"
    cold, _ = _probe(cache)  # no file: a cold parser, which saves what it learnt at exit
    assert not cold["loaded"] and cache.exists()
    assert cold["good_ok"] and cold["bad"][0] is False and cold["bad"][2] in (4, 5)
    warm, _ = _probe(cache)
    assert warm["loaded"]
    assert (warm["tree"], warm["good_ok"], warm["bad"]) == (cold["tree"], True, cold["bad"])

    blob = bytearray(cache.read_bytes())
    blob[-100] ^= 0xFF  # one flipped bit in the pickled tables
    cache.write_bytes(bytes(blob))
    again, err = _probe(cache)
    assert "digest does not match (damaged file)" in err
    assert not again["loaded"]
    assert (again["tree"], again["bad"]) == (cold["tree"], cold["bad"])
    fixed, _ = _probe(cache)  # the damaged file was replaced at exit
    assert fixed["loaded"] and fixed["bad"] == cold["bad"]


def _refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
             blob: bytes, mode: int = 0o600) -> str:  # fmt: skip
    path = tmp_path / "c.pickle"
    path.write_bytes(blob)
    path.chmod(mode)
    monkeypatch.setitem(parser_cache._state, "loaded", False)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="aio_ray.pine.parser_cache"):
        assert load_parser_cache(path) is False
    (rec,) = [r for r in caplog.records if "ignored" in r.getMessage()]
    return rec.getMessage()


def _header(versions: str, digest: bytes) -> bytes:
    return parser_cache._MAGIC + versions.encode() + b"\n" + digest + b"\n\n"


def test_a_cache_of_other_versions_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import hashlib

    payload = b"not a pickle"
    blob = _header("pynescript-0.0.1-antlr4-4.0", hashlib.sha256(payload).hexdigest().encode())
    assert "made by other versions" in _refused(tmp_path, monkeypatch, caplog, blob + payload)


def test_a_truncated_or_foreign_file_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert "not a parser cache file" in _refused(tmp_path, monkeypatch, caplog, b"GIF89a")
    head = parser_cache._MAGIC + parser_cache._versions().encode()  # cut after the versions
    assert "digest does not match" in _refused(tmp_path, monkeypatch, caplog, head)


def test_a_good_digest_over_a_payload_that_is_not_the_tables_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import hashlib
    import pickle

    payload = pickle.dumps(("atn", [1, 2], None))
    head = _header(parser_cache._versions(), hashlib.sha256(payload).hexdigest().encode())
    msg = _refused(tmp_path, monkeypatch, caplog, head + payload)
    assert "decisions" in msg


def test_a_cache_that_others_may_write_is_never_unpickled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    msg = _refused(tmp_path, monkeypatch, caplog, b"anything", mode=0o666)
    assert "writable by others" in msg


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to chown")
def test_a_cache_owned_by_another_user_is_never_unpickled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.pickle"
    path.write_bytes(b"anything")
    os.chown(path, 65534, 65534)
    monkeypatch.setitem(parser_cache._state, "loaded", False)
    with caplog.at_level(logging.WARNING, logger="aio_ray.pine.parser_cache"):
        assert load_parser_cache(path) is False
    assert any("owned by another user" in r.getMessage() for r in caplog.records)
