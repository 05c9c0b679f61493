"""A warm Pine parser in every process: pynescript's prediction cache kept on disk.

:func:`check_syntax` parses a script with this process' parser (loading the cache first);
:func:`warm_parser` (``python -m aio_ray.pine.parser_cache``) teaches it the generated scripts
and saves the cache. :mod:`aio_ray.pine.verify` re-exports :func:`check_syntax` and
:class:`SyntaxResult`.

pynescript parses with an ANTLR parser in pure Python, which learns its prediction DFA while
it parses: the first script in a fresh process costs 10-85 s on 2 cores (measured here), the
same script again about 0.2 s. The DFA is only a memo of the grammar's ATN (the same grammar
gives the same parse with or without it), so it is pickled together with the ATN its states
refer to, and the next process loads it in about 0.4 s instead of learning it again.

The file is named by the pynescript and ANTLR runtime versions and carries a SHA-256 digest of
its payload; a file of other versions, a bad digest, a file this user does not own or others
may write, or one that fails to load is ignored (with a warning) and replaced on the next save.
It is a cache: deleting it costs only the warm-up. Location: ``$AIO_PINE_PARSER_CACHE`` (a
file), else ``$XDG_CACHE_HOME/aio-ray/``, else ``~/.cache/aio-ray/``.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import logging
import os
import pickle
import stat
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from aio_ray.pine.generate import ScriptSource, generate
from aio_ray.pine.patterns import patterns_indicator
from aio_ray.strategies.families import FAMILIES
from aio_ray.strategies.space import defaults

__all__ = [
    "SyntaxResult",
    "cache_path",
    "check_syntax",
    "dfa_states",
    "load_parser_cache",
    "save_parser_cache",
    "warm_parser",
]

log = logging.getLogger(__name__)

_MAGIC = b"aio-ray pine parser cache 2\n"
_state: dict[str, Any] = {"loaded": False, "states": 0}
_lock = threading.Lock()


def _versions() -> str:
    return f"pynescript-{version('pynescript')}-antlr4-{version('antlr4-python3-runtime')}"


def cache_path() -> Path:
    """Where this process keeps the parser cache (see module docstring)."""
    env = os.environ.get("AIO_PINE_PARSER_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aio-ray" / f"pine-parser-{_versions()}.pickle"


def _singletons() -> dict[str, Any]:
    """The ANTLR runtime objects compared by identity (``is``): pickled by name, so the loaded
    tables point at this process' own (a copy of the error state would read as a real state)."""
    # optional dependency (test extra): antlr4 comes with pynescript
    from antlr4.atn.ATNSimulator import ATNSimulator
    from antlr4.atn.SemanticContext import SemanticContext  # test extra
    from antlr4.PredictionContext import PredictionContext  # test extra
    from antlr4.RuleContext import RuleContext  # test extra

    return {
        "ATNSimulator.ERROR": ATNSimulator.ERROR,
        "PredictionContext.EMPTY": PredictionContext.EMPTY,
        "SemanticContext.NONE": SemanticContext.NONE,
        "RuleContext.EMPTY": RuleContext.EMPTY,
    }


def _dumps(obj: Any) -> bytes:
    names = {id(v): k for k, v in _singletons().items()}

    class _Pickler(pickle.Pickler):
        def persistent_id(self, o: Any) -> str | None:
            return names.get(id(o))

    buf = io.BytesIO()
    _Pickler(buf, protocol=5).dump(obj)
    return buf.getvalue()


def _loads(blob: bytes) -> Any:
    objs = _singletons()

    class _Unpickler(pickle.Unpickler):
        def persistent_load(self, pid: Any) -> Any:
            if pid not in objs:
                raise pickle.UnpicklingError(f"unknown shared object {pid!r}")
            return objs[pid]

    return _Unpickler(io.BytesIO(blob)).load()


def _parser_class() -> Any:
    # optional dependency (test extra): pynescript
    from pynescript.ast.grammar.antlr4.parser import PinescriptParser

    return PinescriptParser


def dfa_states() -> int:
    """Prediction DFA states the parser of this process has learnt so far."""
    return sum(len(d._states) for d in _parser_class().decisionsToDFA)


def _trusted(path: Path) -> str | None:
    """Why the file must not be unpickled, or None."""
    st = path.stat()
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return "owned by another user"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "writable by others"
    return None


def load_parser_cache(path: Path | None = None) -> bool:
    """Load the cache into this process' parser once (later calls do nothing); True when a
    cache was loaded. Never raises: a missing or unusable file leaves the parser cold."""
    with _lock:
        if _state["loaded"]:
            return False
        _state["loaded"] = True
        atexit.register(save_parser_cache, path)  # what this process learnt, for the next
        p = path or cache_path()
        if not p.exists():
            return False
        try:
            why = _trusted(p)
            blob = p.read_bytes()
            head, _, rest = blob.partition(b"\n\n")
            lines = (head + b"\n\n\n").split(b"\n")
            if why is None and lines[0] + b"\n" != _MAGIC:
                why = "not a parser cache file"
            if why is None and lines[1].decode(errors="replace") != _versions():
                why = "made by other versions"
            if why is None and hashlib.sha256(rest).hexdigest().encode() != lines[2]:
                why = "digest does not match (damaged file)"
            if why is not None:
                log.warning("Pine parser cache %s ignored: %s", p, why)
                return False
            atn, dfas, contexts = _loads(rest)
            cls = _parser_class()
            if len(dfas) != len(cls.decisionsToDFA):
                log.warning(
                    "Pine parser cache %s ignored: it has %d decisions, the parser %d",
                    p,
                    len(dfas),
                    len(cls.decisionsToDFA),
                )
                return False
            cls.atn, cls.decisionsToDFA, cls.sharedContextCache = atn, dfas, contexts
            _state["states"] = dfa_states()
            log.debug("Pine parser cache %s: %d DFA states", p, _state["states"])
            return True
        except Exception as exc:  # noqa: BLE001 - a cache never breaks parsing
            log.warning("Pine parser cache %s ignored: %s: %s", p, type(exc).__name__, exc)
            return False


def save_parser_cache(path: Path | None = None) -> bool:
    """Write this process' learnt DFA when it grew since it was loaded or last saved; True
    when written. Replaces the file atomically; never raises (a failed save is a warning)."""
    with _lock:
        n = dfa_states()
        if n <= _state["states"]:
            return False
        p = path or cache_path()
        cls = _parser_class()
        out: dict[str, Any] = {}

        def dump() -> None:  # the DFA is a deep object graph: pickled on a deep stack
            sys.setrecursionlimit(max(sys.getrecursionlimit(), 200_000))
            try:
                out["blob"] = _dumps((cls.atn, cls.decisionsToDFA, cls.sharedContextCache))
            except Exception as exc:  # noqa: BLE001
                out["error"] = exc

        old = threading.stack_size()
        threading.stack_size(512 * 1024 * 1024)
        try:
            t = threading.Thread(target=dump, name="pine-parser-cache")
            t.start()
        finally:
            threading.stack_size(old)
        t.join()
        try:
            if "error" in out:
                raise out["error"]
            blob = out["blob"]
            head = _MAGIC + _versions().encode() + b"\n" + hashlib.sha256(blob).hexdigest().encode()
            p.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=p.name, suffix=".tmp", dir=p.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(head + b"\n\n" + blob)
            os.chmod(tmp, 0o600)
            os.replace(tmp, p)
        except Exception as exc:  # noqa: BLE001 - a cache never breaks verification
            log.warning("Pine parser cache not saved to %s: %s: %s", p, type(exc).__name__, exc)
            return False
        _state["states"] = n
        log.debug("Pine parser cache %s: saved %d DFA states", p, n)
        return True


@dataclass(frozen=True)
class SyntaxResult:
    """pynescript's verdict: ``ok``, or the error with its 1-based line and 0-based column."""

    ok: bool
    error: str | None = None
    line: int | None = None
    column: int | None = None
    seconds: float = 0.0


def check_syntax(code: str) -> SyntaxResult:
    """Parse ``code`` with pynescript. The first call in a process loads the parser's learnt
    prediction cache (:func:`load_parser_cache`); without one, it warms up (10-85 s).

    Raises ImportError when pynescript is not installed (``pip install pynescript``).
    """
    # optional verification dependency (LGPL): loaded only to parse
    from pynescript.ast import parse
    from pynescript.ast.error import SyntaxError as PineSyntaxError  # test extra

    load_parser_cache()

    t0 = time.perf_counter()
    try:
        parse(code)
    except PineSyntaxError as exc:
        det = exc.args[1] if len(exc.args) > 1 else None
        return SyntaxResult(
            False,
            str(exc.args[0]) if exc.args else str(exc),
            getattr(det, "lineno", None),
            getattr(det, "offset", None),
            time.perf_counter() - t0,
        )
    return SyntaxResult(True, seconds=time.perf_counter() - t0)


def warm_parser(codes: list[str] | None = None, path: Path | None = None) -> dict[str, Any]:
    """Parse ``codes`` (default: a strategy and an indicator of every family at its default
    parameters, and the pattern indicator) so the parser learns them, then save the cache.
    Returns what it did: scripts, seconds, DFA states, whether a cache was loaded / saved."""
    if codes is None:
        codes = [
            generate(ScriptSource(f, defaults(f), "15m"), k)
            for f in FAMILIES
            for k in ("strategy", "indicator")
        ]
        codes.append(patterns_indicator())
    t0 = time.perf_counter()
    loaded = load_parser_cache(path)
    bad = [i for i, c in enumerate(codes) if not check_syntax(c).ok]
    saved = save_parser_cache(path)
    return {
        "scripts": len(codes),
        "syntax_errors": bad,
        "seconds": round(time.perf_counter() - t0, 2),
        "dfa_states": dfa_states(),
        "loaded": loaded,
        "saved": saved,
        "path": str(path or cache_path()),
    }


if __name__ == "__main__":  # make setup: python -m aio_ray.pine.parser_cache
    import json

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    print(json.dumps(warm_parser()))
