"""Safe text for generated Pine scripts: user-visible strings can never change the script.

Names and descriptions come from users (a strategy's display name, a family description) and
end up in Pine string literals (the ``strategy()`` title, alert messages) and in ``//``
comments. :func:`safe_text` reduces such text to one line of letters, digits, spaces and a
fixed set of harmless punctuation; :func:`pine_string` quotes it. Nothing in the result can
close a string literal, start a new line or continue a comment onto code:

- ``"`` and a backtick become ``'``, ``\\`` and ``/`` become ``-`` (a literal is always
  double-quoted, so a single quote inside it is plain text; no escape sequence, no ``//``);
- every run of whitespace, including newlines, tabs and Unicode line/paragraph separators,
  becomes one space;
- control, format (e.g. bidi overrides, zero-width), surrogate and unassigned characters are
  dropped, as is any other character outside letters, digits and :data:`PUNCTUATION`.
"""

from __future__ import annotations

import unicodedata

__all__ = ["MAX_TEXT", "PUNCTUATION", "comment_text", "pine_string", "safe_text"]

PUNCTUATION = frozenset(" -_.,:;!?()[]<>+*=#%&@^~|'")
"""ASCII punctuation kept as is: no double quote, backslash, backtick, slash (no ``//`` or
``/*`` can form), dollar sign or braces (no ``${`` for a runtime that transpiles to JS)."""

MAX_TEXT = 120
"""Longest text kept, characters (TradingView titles are short; longer text is cut)."""

_REPLACE = {'"': "'", "\\": "-", "/": "-", "`": "'"}


def safe_text(
    text: object, max_len: int = MAX_TEXT, fallback: str = "aio strategy", keep: str = ""
) -> str:
    """``text`` as one safe line for a Pine string literal or comment (see module docstring).

    Parameters
    ----------
    text : anything; ``str(text)`` is used.
    max_len : longest result, characters (>= 1); longer text is cut.
    fallback : returned when nothing printable is left.
    keep : extra ASCII characters to keep as they are (``"/"`` for comments).
    """
    out: list[str] = []
    space = False
    for ch in unicodedata.normalize("NFC", str(text)):
        if ch not in keep:
            ch = _REPLACE.get(ch, ch)
        if ch.isspace() or unicodedata.category(ch) in ("Zl", "Zp", "Zs"):
            space = bool(out)
            continue
        cat = unicodedata.category(ch)
        if ch in PUNCTUATION or ch in keep or cat[0] in ("L", "N"):
            if space:
                out.append(" ")
                space = False
            out.append(ch)
        # anything else (Cc, Cf, Cs, Co, Cn, symbols, marks...) is dropped
    result = "".join(out)[: max(1, max_len)].strip()
    return result or fallback


def pine_string(text: object, max_len: int = MAX_TEXT) -> str:
    """A double-quoted Pine string literal holding :func:`safe_text` of ``text``."""
    return '"' + safe_text(text, max_len) + '"'


def comment_text(text: object, max_len: int = 400) -> str:
    """:func:`safe_text` for a ``//`` comment line: also keeps ``/`` (a comment ends only at
    a line break) but never forms ``/*`` or ``*/``; longer limit; never empty."""
    out = safe_text(text, max_len, fallback="-", keep="/")
    while "/*" in out or "*/" in out:
        out = out.replace("/*", "/ *").replace("*/", "* /")
    return out
