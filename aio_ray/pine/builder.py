"""A small typed builder for Pine Script v6: the only way the generator writes code.

Pine has no type checker we can run offline (pynescript parses, PineTS fails only at run
time), so the generator never writes Pine text by hand. It composes :class:`Expr` values
(each carrying its Pine type) with the operators and the built-in functions declared in
:data:`FUNCTIONS`, every one of which the test suite runs through pynescript and PineTS. A
call with a wrong argument type or count, an unknown keyword, an undeclared variable or a
name declared twice raises :class:`PineBuildError` here, in Python, before any script exists.
User text only enters through :func:`string`, which escapes it (:mod:`aio_ray.pine.escape`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from aio_ray.errors import AioError
from aio_ray.pine.escape import comment_text, pine_string

__all__ = [
    "FUNCTIONS",
    "Expr",
    "Fn",
    "PineBuildError",
    "PineType",
    "ScriptBuilder",
    "boolean",
    "call",
    "const",
    "float_",
    "int_",
    "na",
    "string",
    "string_list",
    "verbatim",
]

PineType = Literal["int", "float", "bool", "string", "string[]", "const"]
"""``const`` marks a named built-in constant (``strategy.long``, ``color.blue`` ...);
``string[]`` an array literal of strings (``options=`` of ``input.string``)."""

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED = frozenset(
    [
        "and",
        "or",
        "not",
        "if",
        "else",
        "for",
        "while",
        "var",
        "varip",
        "true",
        "false",
        "na",
        "import",
        "export",
        "method",
        "type",
        "switch",
        "break",
        "continue",
        "to",
        "by",
        "in",
        "strategy",
        "ta",
        "math",
        "input",
        "color",
        "plot",
        "close",
        "open",
        "high",
        "low",
        "volume",
        "syminfo",
        "time",
        "bar_index",
        "alert",
        "display",
        "currency",
        "runtime",
        "series",
        "simple",
        "const",
    ]
)


class PineBuildError(AioError, TypeError):
    """The generator tried to build invalid Pine (wrong type, unknown name ...)."""


@dataclass(frozen=True)
class Expr:
    """A Pine expression: its source text and its type (``na`` has type ``float``)."""

    code: str
    type: PineType

    def _num(self, other: Expr | float, op: str) -> Expr:
        o = _lift(other)
        _need(op, "left", self, ("int", "float"))
        _need(op, "right", o, ("int", "float"))
        t: PineType = "int" if self.type == o.type == "int" and op != "/" else "float"
        return Expr(f"({self.code} {op} {o.code})", t)

    def __add__(self, other: Expr | float) -> Expr:
        return self._num(other, "+")

    def __sub__(self, other: Expr | float) -> Expr:
        return self._num(other, "-")

    def __mul__(self, other: Expr | float) -> Expr:
        return self._num(other, "*")

    def __truediv__(self, other: Expr | float) -> Expr:
        return self._num(other, "/")

    def _cmp(self, other: Expr | float, op: str) -> Expr:
        o = _lift(other)
        _need(op, "left", self, ("int", "float"))
        _need(op, "right", o, ("int", "float"))
        return Expr(f"({self.code} {op} {o.code})", "bool")

    def gt(self, other: Expr | float) -> Expr:
        return self._cmp(other, ">")

    def lt(self, other: Expr | float) -> Expr:
        return self._cmp(other, "<")

    def ge(self, other: Expr | float) -> Expr:
        return self._cmp(other, ">=")

    def le(self, other: Expr | float) -> Expr:
        return self._cmp(other, "<=")

    def and_(self, *others: Expr) -> Expr:
        for e in (self, *others):
            _need("and", "operand", e, ("bool",))
        return Expr("(" + " and ".join(e.code for e in (self, *others)) + ")", "bool")

    def or_(self, *others: Expr) -> Expr:
        for e in (self, *others):
            _need("or", "operand", e, ("bool",))
        return Expr("(" + " or ".join(e.code for e in (self, *others)) + ")", "bool")

    def not_(self) -> Expr:
        _need("not", "operand", self, ("bool",))
        return Expr(f"(not {self.code})", "bool")

    def eq_str(self, other: Expr) -> Expr:
        _need("==", "left", self, ("string",))
        _need("==", "right", other, ("string",))
        return Expr(f"({self.code} == {other.code})", "bool")

    def choose(self, if_true: Expr, if_false: Expr) -> Expr:
        """``self ? if_true : if_false`` (both branches of one type; int mixes with float)."""
        _need("?:", "condition", self, ("bool",))
        types = {if_true.type, if_false.type}
        if types <= {"int", "float"}:
            t: PineType = "int" if types == {"int"} else "float"
        elif len(types) == 1:
            t = if_true.type
        else:
            raise PineBuildError(f"?: branches of different types {if_true.type}/{if_false.type}")
        return Expr(f"({self.code} ? {if_true.code} : {if_false.code})", t)


def _need(op: str, what: str, e: Expr, types: Sequence[str]) -> None:
    if not isinstance(e, Expr):
        raise PineBuildError(f"{op}: {what} must be a Pine expression, got {e!r}")
    if e.type not in types:
        raise PineBuildError(f"{op}: {what} {e.code} is {e.type}, expected {'/'.join(types)}")


def _lift(x: Expr | float) -> Expr:
    if isinstance(x, Expr):
        return x
    if isinstance(x, bool):
        raise PineBuildError(f"a bool literal is not a number: {x!r}")
    if isinstance(x, int):
        return int_(x)
    if isinstance(x, float):
        return float_(x)
    raise PineBuildError(f"cannot use {x!r} in a Pine expression")


# --------------------------------------------------------------------------- literals


def int_(v: int) -> Expr:
    """An int literal."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise PineBuildError(f"int literal expected, got {v!r}")
    return Expr(str(v) if v >= 0 else f"({v})", "int")


def float_(v: float) -> Expr:
    """A float literal (always written with a decimal point or exponent)."""
    f = float(v)
    if not math.isfinite(f):
        raise PineBuildError(f"float literal must be finite, got {v!r}")
    text = repr(f)
    if "e" in text or "E" in text:
        mant, exp = text.lower().split("e")
        text = (mant if "." in mant else mant + ".0") + "e" + exp
    return Expr(text if f >= 0 else f"({text})", "float")


def boolean(v: bool) -> Expr:
    """``true`` / ``false``."""
    return Expr("true" if v else "false", "bool")


def string(text: object) -> Expr:
    """A string literal of user text, escaped so it cannot change the script."""
    return Expr(pine_string(text), "string")


def string_list(items: Sequence[object]) -> Expr:
    """An array literal of escaped strings, e.g. ``["sma", "ema"]``."""
    if not items:
        raise PineBuildError("an options list needs at least one item")
    return Expr("[" + ", ".join(pine_string(i) for i in items) + "]", "string[]")


def const(name: str) -> Expr:
    """A named built-in constant; only those in :data:`CONSTANTS` exist."""
    if name not in CONSTANTS:
        raise PineBuildError(f"unknown Pine constant {name!r}; known: {sorted(CONSTANTS)}")
    return Expr(name, CONSTANTS[name])


def verbatim(code: str, type_: PineType) -> Expr:
    """An expression written by another aio-ray generator (e.g. the candle-pattern conditions
    of :mod:`aio_ray.pine.patterns`), never user text: one line, balanced parentheses, no
    string literal or comment; parenthesized so it composes like any other :class:`Expr`."""
    depth = 0
    for ch in code:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            break
    bad = depth != 0 or any(t in code for t in ("\n", "\r", '"', "'", "//", "/*"))
    if bad or not code.strip():
        raise PineBuildError(f"verbatim expression rejected: {code!r}")
    return Expr(code if _wrapped(code) else f"({code})", type_)


def _wrapped(code: str) -> bool:
    """Whether ``code`` is one parenthesized group, ``( ... )``."""
    if not (code.startswith("(") and code.endswith(")")):
        return False
    depth = 0
    for k, ch in enumerate(code):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0:
            return k == len(code) - 1
    return False


na = Expr("na", "float")
"""Pine's ``na`` (used here as a float)."""

SERIES: dict[str, Expr] = {n: Expr(n, "float") for n in ("open", "high", "low", "close")}
"""The price series."""

MINTICK = Expr("syminfo.mintick", "float")
POSITION_SIZE = Expr("strategy.position_size", "float")

CONSTANTS: dict[str, PineType] = {
    **{
        f"strategy.{c}": "const"
        for c in (
            "long",
            "short",
            "fixed",
            "commission.percent",
            "commission.cash_per_contract",
            "commission.cash_per_order",
        )
    },
    **{f"color.{c}": "const" for c in ("blue", "orange", "red", "green", "gray", "purple", "teal")},
    **{f"currency.{c}": "const" for c in ("USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "NZD")},
    "display.data_window": "const",
    "alert.freq_once_per_bar_close": "const",
    "plot.style_circles": "const",
    **{f"shape.{c}": "const" for c in ("triangleup", "triangledown", "xcross")},
    **{f"location.{c}": "const" for c in ("abovebar", "belowbar")},
    **{f"size.{c}": "const" for c in ("tiny", "small")},
}


# --------------------------------------------------------------------------- functions


@dataclass(frozen=True)
class Fn:
    """A built-in Pine function: positional parameters, keyword parameters, result type.

    Each parameter is ``(name, accepted types)``; all positional ones are required, keyword
    ones optional. ``returns`` is a type, a tuple of types (a tuple result, destructured by
    :meth:`ScriptBuilder.unpack`), or None (a statement call).
    """

    name: str
    params: tuple[tuple[str, tuple[str, ...]], ...]
    keywords: tuple[tuple[str, tuple[str, ...]], ...] = ()
    returns: PineType | tuple[PineType, ...] | None = "float"


_F = ("int", "float")
_N = ("float",)  # a number, int promotes
_I = ("int",)
_B = ("bool",)
_S = ("string",)
_C = ("const",)

FUNCTIONS: dict[str, Fn] = {
    f.name: f
    for f in (
        Fn("ta.sma", (("source", _F), ("length", _I))),
        Fn("ta.ema", (("source", _F), ("length", _I))),
        Fn("ta.rsi", (("source", _F), ("length", _I))),
        Fn("ta.atr", (("length", _I),)),
        Fn("ta.stoch", (("source", _F), ("high", _F), ("low", _F), ("length", _I))),
        Fn("ta.crossover", (("source1", _F), ("source2", _F)), returns="bool"),
        Fn("ta.crossunder", (("source1", _F), ("source2", _F)), returns="bool"),
        Fn("ta.barssince", (("condition", _B),), returns="int"),
        Fn(
            "ta.macd",
            (("source", _F), ("fastlen", _I), ("slowlen", _I), ("siglen", _I)),
            returns=("float", "float", "float"),
        ),
        Fn("ta.bb", (("series", _F), ("length", _I), ("mult", _F)), returns=("float",) * 3),
        Fn("ta.dmi", (("diLength", _I), ("adxSmoothing", _I)), returns=("float",) * 3),
        Fn("math.floor", (("number", _F),), returns="int"),
        Fn("math.ceil", (("number", _F),), returns="int"),
        Fn(
            "input.int",
            (("defval", _I), ("title", _S)),
            (("minval", _I), ("maxval", _I), ("step", _I), ("tooltip", _S)),
            returns="int",
        ),
        Fn(
            "input.float",
            (("defval", _F), ("title", _S)),
            (("minval", _F), ("maxval", _F), ("step", _F), ("tooltip", _S)),
        ),
        Fn(
            "input.string",
            (("defval", _S), ("title", _S)),
            (("options", ("string[]",)), ("tooltip", _S)),
            returns="string",
        ),
        Fn("strategy.entry", (("id", _S), ("direction", _C)), returns=None),
        Fn("strategy.close", (("id", _S),), returns=None),
        Fn(
            "strategy.exit",
            (("id", _S), ("from_entry", _S)),
            (("stop", _F), ("limit", _F)),
            returns=None,
        ),
        Fn(
            "plot",
            (("series", _F), ("title", _S)),
            (("color", _C), ("display", _C), ("style", _C)),
            returns=None,
        ),
        Fn(
            "plotshape",
            (("series", _B), ("title", _S)),
            (
                ("style", _C),
                ("location", _C),
                ("color", _C),
                ("size", _C),
                ("force_overlay", _B),
            ),
            returns=None,
        ),
        Fn("alert", (("message", _S), ("freq", _C)), returns=None),
        Fn("alertcondition", (("condition", _B),), (("title", _S), ("message", _S)), returns=None),
        Fn("runtime.error", (("message", _S),), returns=None),
    )
}
"""Every built-in the generator may call (each one is exercised by the Pine tests)."""


def _fmt_args(fn: Fn, args: Sequence[Expr], kwargs: dict[str, Expr]) -> str:
    if len(args) != len(fn.params):
        raise PineBuildError(
            f"{fn.name}() takes {len(fn.params)} positional argument(s) "
            f"({', '.join(p for p, _ in fn.params)}), got {len(args)}"
        )
    parts = []
    for (pname, types), a in zip(fn.params, args, strict=True):
        _need(fn.name, pname, a, types)
        parts.append(a.code)
    allowed = dict(fn.keywords)
    for k, v in kwargs.items():
        if k not in allowed:
            raise PineBuildError(
                f"{fn.name}() has no keyword {k!r}; accepted: {', '.join(allowed) or 'none'}"
            )
        _need(fn.name, k, v, allowed[k])
        parts.append(f"{k}={v.code}")
    return f"{fn.name}({', '.join(parts)})"


def call(name: str, *args: Expr | float, **kwargs: Expr | float) -> Expr:
    """A call of built-in ``name`` returning one value (see :data:`FUNCTIONS`)."""
    fn = FUNCTIONS.get(name)
    if fn is None:
        raise PineBuildError(f"unknown Pine function {name!r}; known: {sorted(FUNCTIONS)}")
    if fn.returns is None or isinstance(fn.returns, tuple):
        raise PineBuildError(f"{name}() does not return one value; use the builder")
    code = _fmt_args(fn, [_lift(a) for a in args], {k: _lift(v) for k, v in kwargs.items()})
    return Expr(code, fn.returns)


# --------------------------------------------------------------------------- script


class ScriptBuilder:
    """Accumulates the lines of one script; tracks declared variables and their types."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.vars: dict[str, PineType] = {}
        self._indent = 0

    def _emit(self, text: str) -> None:
        self.lines.append("    " * self._indent + text)

    def comment(self, text: object) -> None:
        """A ``//`` comment line of user or generated text (escaped)."""
        self._emit("// " + comment_text(text))

    def raw_header(self, line: str) -> None:
        """A fixed header line (``//@version=6``); only literals from this package."""
        if "\n" in line or not line.startswith("//"):
            raise PineBuildError(f"header lines must be single // comments, got {line!r}")
        self._emit(line)

    def blank(self) -> None:
        self.lines.append("")

    def _new_name(self, name: str) -> str:
        if not _IDENT.match(name) or name in _RESERVED:
            raise PineBuildError(f"invalid or reserved Pine identifier {name!r}")
        if name in self.vars:
            raise PineBuildError(f"variable {name!r} declared twice")
        return name

    def ref(self, name: str) -> Expr:
        """A declared variable."""
        if name not in self.vars:
            raise PineBuildError(f"variable {name!r} used before it is declared")
        return Expr(name, self.vars[name])

    def let(self, name: str, value: Expr) -> Expr:
        """``name = value``; returns the variable."""
        _need("=", name, value, ("int", "float", "bool", "string"))
        self._new_name(name)
        if self._indent:
            raise PineBuildError(f"declare {name!r} at the top level (every bar)")
        self._emit(f"{name} = {value.code}")
        self.vars[name] = value.type
        return self.ref(name)

    def var_float(self, name: str) -> Expr:
        """``var float name = na``: a float kept from bar to bar."""
        self._new_name(name)
        self._emit(f"var float {name} = na")
        self.vars[name] = "float"
        return self.ref(name)

    def assign(self, name: str, value: Expr) -> None:
        """``name := value`` for a declared variable of the same type."""
        target = self.ref(name)
        ok = value.type == target.type or (target.type == "float" and value.type == "int")
        if not ok:
            raise PineBuildError(f"cannot assign {value.type} {value.code} to {target.type} {name}")
        self._emit(f"{name} := {value.code}")

    def unpack(self, names: Sequence[str], fn_name: str, *args: Expr | float) -> list[Expr]:
        """``[a, b, c] = fn(...)`` for a tuple-returning built-in."""
        fn = FUNCTIONS.get(fn_name)
        if fn is None or not isinstance(fn.returns, tuple):
            raise PineBuildError(f"{fn_name!r} is not a tuple-returning built-in")
        if len(names) != len(fn.returns):
            raise PineBuildError(f"{fn_name}() returns {len(fn.returns)} values, not {len(names)}")
        code = _fmt_args(fn, [_lift(a) for a in args], {})
        for n in names:
            self._new_name(n)
        self._emit(f"[{', '.join(names)}] = {code}")
        for n, t in zip(names, fn.returns, strict=True):
            self.vars[n] = t
        return [self.ref(n) for n in names]

    def do(self, fn_name: str, *args: Expr | float, **kwargs: Expr | float) -> None:
        """A statement call (``strategy.entry(...)``, ``plot(...)`` ...)."""
        fn = FUNCTIONS.get(fn_name)
        if fn is None or fn.returns is not None:
            raise PineBuildError(f"{fn_name!r} is not a statement built-in")
        self._emit(
            _fmt_args(fn, [_lift(a) for a in args], {k: _lift(v) for k, v in kwargs.items()})
        )

    def declaration(self, kind: Literal["strategy", "indicator"], title: Expr, **kw: Expr) -> None:
        """The ``strategy(...)`` / ``indicator(...)`` declaration; keyword values are literals
        or constants (see :data:`DECLARATION_KEYWORDS`)."""
        _need(kind, "title", title, ("string",))
        allowed = DECLARATION_KEYWORDS[kind]
        parts = [title.code]
        for k, v in kw.items():
            if k not in allowed:
                raise PineBuildError(f"{kind}() has no keyword {k!r}; accepted: {sorted(allowed)}")
            _need(kind, k, v, allowed[k])
            parts.append(f"{k}={v.code}")
        self._emit(f"{kind}({', '.join(parts)})")

    @contextmanager
    def if_(self, cond: Expr) -> Iterator[None]:
        """An ``if cond`` block: statements emitted inside are indented under it."""
        _need("if", "condition", cond, ("bool",))
        self._emit(f"if {cond.code}")
        self._indent += 1
        start = len(self.lines)
        try:
            yield
        finally:
            self._indent -= 1
        if len(self.lines) == start:
            raise PineBuildError(f"empty if block: if {cond.code}")

    def source(self) -> str:
        """The script text (LF line ends, final newline)."""
        if self._indent:
            raise PineBuildError("unclosed block")
        return "\n".join(self.lines) + "\n"


_DECL_COMMON: dict[str, tuple[str, ...]] = {"shorttitle": _S, "overlay": _B}
DECLARATION_KEYWORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "indicator": dict(_DECL_COMMON),
    "strategy": {
        **_DECL_COMMON,
        "initial_capital": _F,
        "currency": _C,
        "default_qty_type": _C,
        "default_qty_value": _F,
        "pyramiding": _I,
        "commission_type": _C,
        "commission_value": _F,
        "slippage": _I,
        "margin_long": _F,
        "margin_short": _F,
        "process_orders_on_close": _B,
        "calc_on_every_tick": _B,
        "calc_on_order_fills": _B,
    },
}
"""Keywords the generator may give the declaration, with their accepted types."""
