"""The `aio pine` / `aio verify-pine` commands and the library side: a real SQLite library,
real bars written by the bar store, the real CLI app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aio_ray.bars.store import write_bars
from aio_ray.cli import app
from aio_ray.library import Library
from aio_ray.pine.generate import read_meta
from aio_ray.pine.library import pine_for_strategy
from aio_ray.strategies.engine import BacktestConfig
from tests.support.pine_fixtures import params, real_bars, require_pinets, require_pynescript

runner = CliRunner()
HOSTILE_NAME = 'best "one"\nstrategy.entry("X", strategy.long)'


def _invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture()
def library(tmp_path: Path) -> tuple[str, list[str]]:
    """A library with one ranked run of two strategies (15m), costs and holdout recorded."""
    url = f"sqlite:///{tmp_path / 'lib.db'}"
    lib = Library(url)
    cfg = BacktestConfig(commission=3.0, slippage_points=1.0, initial_capital=50_000.0)
    lib.start_run("run-1", {"backtest": cfg.model_dump(mode="json")}, {"sampler": 7})
    a = lib.upsert_strategy(
        "run-1", "ma_cross", params("ma_cross", stops=False), "15m", "EURUSD", name=HOSTILE_NAME
    )
    b = lib.upsert_strategy("run-1", "rsi_reversion", params("rsi_reversion"), "15m", "EURUSD")
    lib.record_holdout("run-1", a, {"net_profit": 123.5, "sharpe": 1.5, "trades": 9})
    lib.record_trades(
        "run-1",
        a,
        "holdout",
        [
            {
                "side": "long",
                "entry_ts": 1549238400000,
                "exit_ts": 1549411140000,
                "entry_price": 1.14,
                "exit_price": 1.15,
                "size": 100000.0,
                "pnl": 10.0,
                "pnl_pips": 1.0,
                "exit_reason": "signal",
            }
        ],
    )
    lib.save_ranking(
        "run-1",
        [
            {"strategy_id": a, "score": 0.9, "criteria": {}},
            {"strategy_id": b, "score": 0.5, "criteria": {}},
        ],
    )
    lib.close()
    return url, [a, b]


def test_pine_from_family_and_params_without_a_library(tmp_path: Path) -> None:
    out = tmp_path / "s.pine"
    res = _invoke(
        "pine",
        "--family",
        "ma_cross",
        "--params",
        '{"fast": 10, "slow": 20, "ma": "sma"}',
        "--timeframe",
        "1h",
        "--out",
        str(out),
    )
    assert res.exit_code == 0, res.output
    meta = read_meta(out.read_text())
    assert meta["params"]["fast"] == 10 and meta["params"]["ma"] == "sma"
    assert meta["params"]["atr_length"] == 14  # missing parameters take the defaults
    assert meta["timeframe"] == "1h" and meta["kind"] == "strategy"
    # to stdout, and the overlay variant
    res = _invoke("pine", "--family", "bb_breakout", "--timeframe", "15m", "--kind", "indicator")
    assert res.exit_code == 0 and res.output.startswith("//@version=6")
    assert "\nindicator(" in res.output and "strategy.entry" not in res.output


def test_pine_refuses_bad_arguments_by_name() -> None:
    res = _invoke(
        "pine", "--family", "ma_cross", "--params", '{"fast": 50, "slow": 20}', "--timeframe", "1h"
    )
    assert res.exit_code == 2 and "fast < slow" in res.output
    res = _invoke("pine", "--family", "ma_cross", "--timeframe", "7m")
    assert res.exit_code == 2 and "unknown timeframe" in res.output
    res = _invoke("pine", "--family", "ma_cross", "--strategy", "x", "--timeframe", "1h")
    assert res.exit_code == 2 and "exactly one of" in res.output
    res = _invoke("pine", "--strategy", "abc")
    assert res.exit_code == 2 and "--db" in res.output


def test_pine_from_params_uses_the_configured_backtest_costs() -> None:
    """``--set search.backtest.*`` reaches the script (it was read from a field that does not
    exist, so the defaults were always used)."""
    res = _invoke(
        "--set",
        "search.backtest.commission=4.5",
        "--set",
        "search.backtest.initial_capital=25000",
        "pine",
        "--family",
        "ma_cross",
        "--timeframe",
        "1h",
    )
    assert res.exit_code == 0, res.output
    meta = read_meta(res.output)
    assert meta["backtest"]["commission"] == 4.5 and meta["backtest"]["price_model"] == "single"
    assert "initial_capital=25000.0" in res.output
    default = read_meta(_invoke("pine", "--family", "ma_cross", "--timeframe", "1h").output)
    assert default["backtest"]["commission"] != 4.5


def test_pine_for_a_library_strategy_states_its_source(library: tuple[str, list[str]]) -> None:
    url, (a, _) = library
    res = _invoke("pine", "--db", url, "--strategy", a)
    assert res.exit_code == 0, res.output
    code = res.output
    meta = read_meta(code)
    assert meta["strategy_id"] == a and meta["family"] == "ma_cross"
    assert meta["backtest"]["commission"] == 3.0 and meta["backtest"]["price_model"] == "single"
    assert "initial_capital=50000.0" in code and "slippage=1," in code
    assert "holdout_net_profit=123.5" in code and "Data period: 2019-02-04 00:00 UTC" in code
    # the hostile display name is one escaped literal
    assert "strategy(\"best 'one' strategy.entry('X', strategy.long)\"" in code
    res = _invoke("pine", "--db", url, "--strategy", "nope")
    assert res.exit_code == 2 and "not in library" in res.output


def test_pine_top_writes_one_script_per_strategy_and_a_manifest(
    library: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, ids = library
    out = tmp_path / "top"
    res = _invoke("pine", "--db", url, "--top", "5", "--out", str(out))
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["run_id"] == "run-1"
    assert [e["strategy_id"] for e in manifest["strategies"]] == ids
    assert [e["rank"] for e in manifest["strategies"]] == [1, 2]
    for e in manifest["strategies"]:
        code = (out / e["file"]).read_text()
        assert read_meta(code)["strategy_id"] == e["strategy_id"]
        assert e["verification"] is None  # never verified yet
    assert len(list(out.glob("*.pine"))) == 2


@pytest.mark.slow
@pytest.mark.shared
def test_verify_pine_reports_parity_and_stores_it_with_the_strategy(
    library: tuple[str, list[str]], tmp_path: Path, dukascopy_dir: Path
) -> None:
    require_pinets()
    require_pynescript()
    url, (a, _) = library
    bars_dir = tmp_path / "bars"
    write_bars(bars_dir, "15m", "EURUSD", real_bars(dukascopy_dir, ("15m",))["15m"])
    script = tmp_path / "a.pine"
    assert _invoke("pine", "--db", url, "--strategy", a, "--out", str(script)).exit_code == 0

    res = _invoke(
        "verify-pine",
        str(script),
        "--bars",
        str(bars_dir),
        "--timeframe",
        "15m",
        "--json",
        "--db",
        url,
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output.strip().splitlines()[-1])
    assert rep["parsed"] and rep["ran"] and rep["parity_passed"] is True
    assert rep["trades"]["ours"] == rep["trades"]["pine"] > 0
    code, stored = pine_for_strategy(Library(url), a, "strategy")
    assert code == script.read_text()
    assert stored is not None and stored["parity_passed"] is True and stored["parsed"] is True
    assert stored["report"]["trades"]["ours"] == rep["trades"]["ours"]

    # an edited script fails, names the first differing bar, and that is stored too
    bad = tmp_path / "bad.pine"
    bad.write_text(
        script.read_text().replace('i_fast = input.int(5, "fast"', 'i_fast = input.int(6, "fast"')
    )
    res = _invoke(
        "verify-pine", str(bad), "--bars", str(bars_dir), "--timeframe", "15m", "--db", url
    )
    assert res.exit_code == 1 and "parity FAILED at bar 4" in res.output
    stored = Library(url).pine_verification(a, "strategy")
    assert stored is not None and stored["parity_passed"] is False and stored["first_diff_bar"] == 4

    # a syntax error: reported with its line, nothing run
    broken = tmp_path / "broken.pine"
    broken.write_text(
        script.read_text().replace(
            "atr_value = ta.atr(i_atr_length)", "atr_value = ta.atr(i_atr_length"
        )
    )
    res = _invoke(
        "verify-pine", str(broken), "--bars", str(bars_dir), "--timeframe", "15m", "--json"
    )
    assert res.exit_code == 1
    rep = json.loads(res.output.strip().splitlines()[-1])
    assert rep["parsed"] is False and rep["syntax_error"]["line"] > 10 and rep["ran"] is False


# ----------------------------------------------------------------------------- the verdict

HOSTILE_GATE = 'deflated Sharpe 0.1 < 0.95\nstrategy.entry("X", strategy.long) */ /* //'


def _judge(url: str, passed: list[str], rejected: list[str]) -> dict[str, Any]:
    """Store run-1's verdict (passed: its ranking; rejected: the best rejected, each failing
    the DSR gate and a hostile one) through the library's own API; the message in the
    verdict module's words."""
    from aio_ray.strategies.verdict import verdict_message

    lib = Library(url)
    rows = {r.strategy.id: r for r in lib.top("run-1", 10)}

    def summary(sid: str, dsr: float, failed: list[str]) -> dict[str, Any]:
        s = rows[sid].strategy
        return {
            "strategy_id": sid,
            "family": s.family,
            "timeframe": s.timeframe,
            "params": s.params,
            "dsr": dsr,
            "score": 0.3,
            "failed": failed,
        }

    v = {
        "verdict": "passed" if passed else "none_passed", "passed": len(passed),
        "candidates": 400, "failed_candidates": 0, "procedures": 2, "effective_trials": 12,
        "pbo": 0.61, "gates": {"min_dsr": 0.95, "max_pbo": 0.5},
        "strategies": [summary(s, 0.99, []) for s in passed],
        "best_rejected": [summary(s, 0.1, [HOSTILE_GATE, "PBO 0.61 >= max_pbo 0.5"])
                          for s in rejected],
    }  # fmt: skip
    v["message"] = verdict_message(v)
    lib.save_ranking("run-1", [{"strategy_id": s, "score": 0.9, "criteria": {}} for s in passed])
    lib.save_verdict("run-1", v)
    lib.close()
    return v


def _assert_warned(code: str, plain: str) -> str:
    """``code`` is ``plain`` with one NOT SIGNIFICANT comment after the version line; the
    hostile gate text stays inside that one comment."""
    lines, base = code.splitlines(), plain.splitlines()
    assert lines[0] == base[0] == "//@version=6"
    assert lines[1].startswith("// NOT SIGNIFICANT: failed deflated Sharpe 0.1 < 0.95 ")
    assert lines[2:] == base[1:]
    assert "*/" not in lines[1] and "/*" not in lines[1] and '"' not in lines[1]
    return lines[1]


def test_pine_top_when_nothing_passed_writes_nothing_unless_asked(
    library: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, (a, b) = library
    v = _judge(url, passed=[], rejected=[a, b])
    assert v["message"].startswith("0 of 400 candidates passed")
    out = tmp_path / "top"
    res = _invoke("pine", "--db", url, "--top", "5", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert v["message"] in res.output and "no script written" in res.output
    assert not out.exists()

    res = _invoke("pine", "--db", url, "--top", "5", "--out", str(out), "--include-rejected")
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["verdict"] == "none_passed" and manifest["strategies"] == []
    assert [e["strategy_id"] for e in manifest["rejected"]] == [a, b]
    lib = Library(url)
    for e in manifest["rejected"]:
        assert e["file"].startswith("rejected_") and e["failed"][0] == HOSTILE_GATE
        plain, _ = pine_for_strategy(lib, e["strategy_id"], "strategy")
        line = _assert_warned((out / e["file"]).read_text(), plain)
        assert "PBO 0.61 >= max_pbo 0.5" in line and v["message"][:40] in line
        assert read_meta((out / e["file"]).read_text())["strategy_id"] == e["strategy_id"]


def test_pine_top_exports_only_what_passed_and_flags_the_rejected(
    library: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, (a, b) = library
    v = _judge(url, passed=[a], rejected=[b])
    assert v["message"].startswith("1 of 2 procedures passed every gate")
    out = tmp_path / "top"
    res = _invoke("pine", "--db", url, "--top", "5", "--out", str(out))
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["strategy_id"] for e in manifest["strategies"]] == [a]
    assert manifest["rejected"] == [] and len(list(out.glob("*.pine"))) == 1
    assert "NOT SIGNIFICANT" not in (out / manifest["strategies"][0]["file"]).read_text()

    both = tmp_path / "both"
    res = _invoke("pine", "--db", url, "--top", "5", "--out", str(both), "--include-rejected")
    assert res.exit_code == 0, res.output
    manifest = json.loads((both / "manifest.json").read_text())
    assert [e["strategy_id"] for e in manifest["strategies"]] == [a]
    assert [e["strategy_id"] for e in manifest["rejected"]] == [b]
    assert "NOT SIGNIFICANT" not in (both / manifest["strategies"][0]["file"]).read_text()
    plain, _ = pine_for_strategy(Library(url), b, "strategy")
    _assert_warned((both / manifest["rejected"][0]["file"]).read_text(), plain)

    # one strategy by id: a rejected one says so, a passing one does not
    res = _invoke("pine", "--db", url, "--strategy", b)
    assert res.exit_code == 0 and _assert_warned(res.output, plain)
    res = _invoke("pine", "--db", url, "--strategy", a)
    assert res.exit_code == 0 and "NOT SIGNIFICANT" not in res.output


def test_pine_help_documents_include_rejected() -> None:
    import re

    res = _invoke("pine", "--help")
    text = re.sub(r"[\s│]+", " ", res.output)  # the help is wrapped in a box
    assert res.exit_code == 0 and "--include-rejected" in text
    assert "NOT SIGNIFICANT" in text and "passed every gate" in text
