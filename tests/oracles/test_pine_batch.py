"""Batch verification: one parser and one PineTS (Node) process for many scripts.

Real PineTS, real pynescript, real bars written by the product; nothing of ours mocked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aio_ray.bars.store import write_bars
from aio_ray.cli import app
from aio_ray.pine.generate import ScriptSource, generate
from aio_ray.pine.runner import PineRunError, PineRuntime
from aio_ray.pine.verify import verify_script, verify_scripts
from tests.support.pine_fixtures import (
    params,
    real_bars,
    require_pinets,
    require_pynescript,
    synthetic_bars,
)

FAMS = ("ma_cross", "rsi_reversion", "bb_breakout")
# PineTS guards `while true` with an iteration cap; a long nested loop only takes time.
SLOW = (
    '//@version=6\nindicator("slow")\nfloat s = 0.0\nfor i = 0 to 5000\n'
    '    for j = 0 to 1000\n        s += 1\nplot(s, "s")\n'
)


def _codes(tf: str = "15m") -> list[str]:
    return [generate(ScriptSource(f, params(f), tf)) for f in FAMS]


def _strip(rep: Any) -> dict[str, Any]:
    d = rep.to_dict()
    d.pop("timings_s")
    return d


@pytest.fixture(scope="module")
def tools() -> None:
    require_pinets()
    require_pynescript()


def test_batch_equals_per_script_and_a_broken_script_fails_alone(tools: None) -> None:
    bars = synthetic_bars(1500)
    codes = _codes()
    broken = codes[1].replace("ta.atr(i_atr_length)", "ta.atr(i_atr_length", 1)
    assert broken != codes[1]
    batch = verify_scripts(codes, bars)
    single = [verify_script(c, bars) for c in codes]
    assert [_strip(r) for r in batch] == [_strip(r) for r in single]
    assert all(r.parity_passed for r in batch)

    mixed = verify_scripts([codes[0], broken, codes[2]], bars)
    assert mixed[0].parity_passed and mixed[2].parity_passed
    assert mixed[1].parsed is False and mixed[1].ran is False
    assert mixed[1].syntax_error["line"] > 10
    assert mixed[1].summary().startswith("syntax error at line")


def test_runtime_restarts_node_after_a_timeout_and_continues(tools: None) -> None:
    bars = synthetic_bars(500)
    code = _codes()[0]
    with PineRuntime() as rt:
        first = rt.run(code, bars, "15m")
        pid = rt.pid
        with pytest.raises(PineRunError, match=r"timed out after 2 s on 500 bars.*restarted"):
            rt.run(SLOW, bars, "15m", timeout_s=2)
        again = rt.run(code, bars, "15m")
        assert rt.restarts == 1 and rt.pid != pid
        assert again.closed_trades == first.closed_trades
        # a runtime error (not a crash) keeps the process
        pid = rt.pid
        with pytest.raises(PineRunError, match="PineTS run"):
            rt.run('//@version=6\nindicator("x")\nplot(ta.nosuch(close), "x")\n', bars, "15m")
        rt.run(code, bars, "15m")
        assert rt.pid == pid and rt.restarts == 1
    assert rt.pid is None


def test_a_timeout_in_a_batch_fails_only_that_script(tools: None) -> None:
    bars = synthetic_bars(500)
    codes = _codes()
    slow_meta = {"kind": "indicator", "family": "ma_cross", "params": params("ma_cross"),
                 "timeframe": "15m"}  # fmt: skip
    reps = verify_scripts(
        [codes[0], SLOW, codes[2]],
        bars,
        metas=[None, slow_meta, None],
        syntax=False,
        timeout_s=3,
    )
    assert reps[0].parity_passed and reps[2].parity_passed
    assert reps[1].ran is False and "timed out after 3 s" in (reps[1].run_error or "")


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_verify_pine_several_files_text_json_and_exit_codes(
    tools: None, tmp_path: Path, dukascopy_dir: Path
) -> None:
    bars_dir = tmp_path / "bars"
    write_bars(bars_dir, "15m", "EURUSD", real_bars(dukascopy_dir, ("15m",))["15m"])
    files = []
    for f, code in zip(FAMS, _codes(), strict=True):
        p = tmp_path / f"{f}.pine"
        p.write_text(code)
        files.append(str(p))
    common = ("--bars", str(bars_dir), "--timeframe", "15m")
    res = _invoke("verify-pine", *files, *common)
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert [ln.split()[0] for ln in lines[:3]] == ["PASS"] * 3
    assert lines[-1] == "verify-pine: 3 of 3 script(s) passed"

    broken = tmp_path / "broken.pine"
    broken.write_text(
        Path(files[1]).read_text().replace("ta.atr(i_atr_length)", "ta.atr(i_atr_length")
    )
    res = _invoke("verify-pine", files[0], str(broken), files[2], *common, "--json")
    assert res.exit_code == 1, res.output
    rows = json.loads(res.output.strip().splitlines()[-1])
    assert [r["file"] for r in rows] == [files[0], str(broken), files[2]]
    assert [r["parity_passed"] for r in rows] == [True, None, True]
    assert rows[1]["parsed"] is False and rows[1]["syntax_error"]["line"] > 10

    # one file: today's JSON object, not a list
    res = _invoke("verify-pine", files[0], *common, "--json")
    assert res.exit_code == 0 and json.loads(res.output.strip().splitlines()[-1])["parsed"] is True

    res = _invoke("verify-pine", files[0], str(tmp_path / "missing.pine"), *common)
    assert res.exit_code == 2
