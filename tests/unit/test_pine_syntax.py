"""Every generated script parses with pynescript; syntax errors carry line and column.

One pynescript parser per test process: the module fixture pays its warm-up once. That
warm-up (ANTLR building its parsing tables in pure Python for every construct the scripts
use) takes 10-30 s on 2 cores, hence the slow mark; the tests still run in CI.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aio_ray.pine.escape import safe_text
from aio_ray.pine.generate import ScriptSource, generate
from aio_ray.pine.verify import check_syntax
from tests.support.pine_fixtures import FAMILIES, HOSTILE, params, require_pynescript, warm_parser

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def parser() -> Iterator[None]:
    require_pynescript()
    warm_parser()
    yield


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", ["strategy", "indicator"])
@pytest.mark.parametrize("stops", [False, True])
def test_generated_scripts_parse(family: str, kind: str, stops: bool) -> None:
    code = generate(ScriptSource(family, params(family, stops=stops), "1h"), kind)  # type: ignore[arg-type]
    res = check_syntax(code)
    assert res.ok, f"{res.error} at line {res.line}:{res.column}"


def test_a_syntax_error_is_reported_with_line_and_column() -> None:
    code = generate(ScriptSource("rsi_reversion", params("rsi_reversion"), "1h"))
    lines = code.splitlines()
    k = next(i for i, ln in enumerate(lines) if ln.startswith("atr_value = ta.atr("))
    lines[k] = lines[k].rstrip(")")  # drop the closing parenthesis
    res = check_syntax("\n".join(lines) + "\n")
    assert not res.ok
    assert res.error and "expecting" in res.error
    # pynescript points at the next token after the fault: this line or the next one
    assert res.line in (k + 1, k + 2)
    assert res.column is not None and res.column >= 0


def _title_and_statements(code: str) -> tuple[str, int]:
    from pynescript.ast import parse

    tree = parse(code)
    decl = tree.body[0].value  # strategy(...)
    assert decl.func.id == "strategy"
    return decl.args[0].value.value, len(tree.body)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_stay_inside_the_title_literal(name: str) -> None:
    p = params("ma_cross")
    plain = generate(ScriptSource("ma_cross", p, "15m", name="plain"))
    evil = generate(ScriptSource("ma_cross", p, "15m", name=name))
    title, n_statements = _title_and_statements(evil)
    assert title == safe_text(name)
    assert n_statements == _title_and_statements(plain)[1]
