"""The `aio` command contracts, end to end on the real Dukascopy days (in-process CLI runner)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from aio_ray.cli import app

runner = CliRunner()

CONTRACT_INDICATORS = [
    "ts",
    "rsi",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "sma",
    "ema",
    "stoch_k",
    "stoch_d",
    "atr",
    "adx",
    "plus_di",
    "minus_di",
]


def aio(*args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture(scope="module")
def real_bars(dukascopy_dir, tmp_path_factory, ray_local) -> Path:
    """`aio ingest dukascopy --mirror` then `aio bars` on 2019-02-04/05, as a user runs them."""
    root = tmp_path_factory.mktemp("cli")
    code, out, err = aio(
        "ingest",
        "dukascopy",
        "--symbol",
        "EURUSD",
        "--start",
        "2019-02-04",
        "--end",
        "2019-02-06",
        "--mirror",
        str(dukascopy_dir),
        "--out",
        str(root / "ticks"),
    )
    assert code == 0, err
    assert "266,219 kept" in out
    code, out, err = aio(
        "bars",
        "--ticks",
        str(root / "ticks"),
        "--timeframes",
        "1m,5m,15m,1h,4h,1d",
        "--out",
        str(root / "bars"),
        "--json",
    )
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["ticks_total"] == 266_219
    return root / "bars"


def test_bars_layout_is_the_contract(real_bars):
    for tf in ("1m", "5m", "15m", "1h", "4h", "1d"):
        files = list((real_bars / f"timeframe={tf}").rglob("*.parquet"))
        assert files, tf
        df = pl.read_parquet(files[0])
        assert df["ticks"].sum() == 266_219
    assert pl.read_parquet(next((real_bars / "timeframe=1d").rglob("*.parquet"))).height == 2


def test_indicators_writes_the_contract_columns(real_bars, tmp_path):
    out = tmp_path / "ind.parquet"
    code, _, err = aio(
        "indicators", "--bars", str(real_bars), "--timeframe", "15m", "--out", str(out)
    )
    assert code == 0, err
    df = pl.read_parquet(out)
    assert df.columns == CONTRACT_INDICATORS
    assert df.height == 192
    last = df.row(-1, named=True)
    assert all(np.isfinite(last[c]) for c in CONTRACT_INDICATORS[1:])
    assert 0 <= last["rsi"] <= 100 and last["bb_lower"] < last["bb_middle"] < last["bb_upper"]


def test_backtest_json_is_the_contract(real_bars):
    from aio_ray.bars.arrays import BarArrays
    from aio_ray.bars.store import read_bars
    from aio_ray.strategies.engine import BacktestConfig, run_backtest
    from aio_ray.strategies.families import get_family
    from aio_ray.strategies.space import defaults

    params = {"fast": 10, "slow": 20, "ma": "sma"}
    code, out, err = aio(
        "backtest",
        "--bars",
        str(real_bars),
        "--timeframe",
        "15m",
        "--family",
        "ma_cross",
        "--params",
        json.dumps(params),
        "--price-model",
        "single",
        "--commission",
        "0",
        "--json",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) >= {"metrics", "trades"}
    for key in (
        "net_profit",
        "cagr",
        "sharpe",
        "sortino",
        "max_drawdown",
        "profit_factor",
        "win_rate",
        "trades",
        "exposure",
        "avg_trade",
    ):
        assert key in doc["metrics"]
    assert doc["trades"], "an SMA 10/20 cross trades on two days of 15m bars"
    for t in doc["trades"]:
        assert {
            "side",
            "entry_ts",
            "entry_price",
            "exit_ts",
            "exit_price",
            "exit_reason",
            "pnl",
        } <= set(t)
        assert (
            t["entry_ts"].endswith("Z")
            and dt.datetime.fromisoformat(t["entry_ts"]).tzinfo is not None
        )
    # the same numbers as calling the engine directly
    mb = BarArrays.from_frame(read_bars(real_bars, "15m"), timeframe="15m")
    fam = get_family("ma_cross")
    res = run_backtest(
        mb,
        fam.signals(mb, {**defaults("ma_cross"), **params}),
        BacktestConfig(price_model="single", commission_type="percent"),
    )
    assert len(doc["trades"]) == res.trades.height
    assert doc["metrics"]["net_profit"] == pytest.approx(res.metrics["net_profit"], abs=1e-9)
    assert [t["entry_price"] for t in doc["trades"]] == res.trades["entry_price"].to_list()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--family", "nope", "--params", "{}"], "unknown strategy family 'nope'"),
        (["--family", "ma_cross", "--params", '{"fast": 30, "slow": 20}'], "fast < slow"),
        (
            ["--family", "ma_cross", "--params", '{"fast": 10, "slow": 20, "bogus": 1}'],
            "unknown parameter 'bogus'",
        ),
        (["--family", "ma_cross", "--params", '{"fast": -5}'], "fast"),
        (["--family", "ma_cross", "--params", "{not json"], "not valid JSON"),
        (["--family", "ma_cross", "--params", "[1, 2]"], "JSON object"),
    ],
)
def test_backtest_bad_input_names_what_is_wrong(real_bars, args, message):
    code, out, err = aio("backtest", "--bars", str(real_bars), "--timeframe", "15m", *args)
    assert code == 2
    assert message in (err + out)


def test_backtest_missing_timeframe_and_too_few_bars(real_bars):
    code, _out, err = aio(
        "backtest",
        "--bars",
        str(real_bars),
        "--timeframe",
        "30m",
        "--family",
        "ma_cross",
        "--params",
        "{}",
    )
    assert code == 2 and "no 30m bars" in err
    code, _out, err = aio(
        "backtest",
        "--bars",
        str(real_bars),
        "--timeframe",
        "1d",
        "--family",
        "ma_cross",
        "--params",
        "{}",
    )
    assert code == 2 and "2 bars are too few for the warm-up" in err


@pytest.fixture(scope="module")
def synthetic_bars(tmp_path_factory, ray_local) -> Path:
    """Three weeks of seeded synthetic ticks -> 5m/15m bars (enough days for daily OOS returns)."""
    root = tmp_path_factory.mktemp("cli_syn")
    code, _, err = aio(
        "ingest",
        "synthetic",
        "--start",
        "2025-07-01",
        "--end",
        "2025-07-22",
        "--seed",
        "7",
        "--out",
        str(root / "ticks"),
        "--local",
    )
    assert code == 0, err
    code, _, err = aio(
        "bars",
        "--ticks",
        str(root / "ticks"),
        "--timeframes",
        "5m,15m",
        "--out",
        str(root / "bars"),
    )
    assert code == 0, err
    return root / "bars"


SEARCH = [
    "--set",
    "search.n_folds=2",
    "--set",
    "search.warmup_bars=30",
    "--set",
    "search.ranking.min_trades=5",
]
# the significance gates off: three weeks of a seeded martingale support no claim, and the
# passing path of every surface is what this search is for
RELAXED = [
    "--set",
    "search.ranking.min_dsr=0.0",
    "--set",
    "search.ranking.max_pbo=1.0",
    "--set",
    "search.ranking.min_trl_confidence=0.0",
    "--set",
    "search.ranking.min_sharpe=-1e9",
    "--set",
    "search.ranking.min_profit_factor=0.0",
]


def _optimize(bars: Path, tmp_path: Path, db: str, *extra: str) -> tuple[int, str, str]:
    return aio(
        "--set",
        f"data.workdir={tmp_path}",
        *SEARCH,
        *extra,
        "optimize",
        "--bars",
        str(bars),
        "--timeframes",
        "5m,15m",
        "--families",
        "ma_cross,bb_reversion",
        "--trials",
        "16",
        "--db",
        db,
        "--json",
        "--seed",
        "3",
    )


def test_optimize_then_rank_when_nothing_passes_the_gates(synthetic_bars, tmp_path):
    """A real search with the default (strict) gates on a martingale: the verdict says that
    nothing passed, `aio rank` shows it and the best rejected, `aio pine --top` writes nothing
    unless asked to export the rejected, which then say so in their header."""
    db = f"sqlite:///{tmp_path / 'lib.db'}"
    code, out, err = _optimize(synthetic_bars, tmp_path, db)
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["complete"] and summary["trials_ok"] + summary["trials_failed"] == 16
    assert summary["seeds"]["sampler"] == 3
    assert summary["top"] == [] and summary["verdict"]["verdict"] == "none_passed"

    code, out, err = aio("rank", "--db", db, "--top", "5", "--json")
    assert code == 0, err
    v = json.loads(out)
    assert v["verdict"] == "none_passed" and v["passed"] == 0 and v["strategies"] == []
    assert v["run_id"] == summary["run_id"] and v["candidates"] == summary["trials_ok"]
    assert isinstance(v["effective_trials"], int) and 1 <= v["effective_trials"] <= 16
    assert v["gates"]["min_dsr"] == 0.95 and v["gates"]["min_trades"] == 5
    assert re.match(r"0 of 16 candidates passed \(", v["message"]), v["message"]
    assert v["message"] == summary["verdict"]["message"]
    assert v["best_rejected"] and all(r["failed"] for r in v["best_rejected"])
    assert "pbo" in v

    code, out, err = aio("rank", "--db", db)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == v["message"] and lines[1] == f"run {v['run_id']}"
    assert "best rejected (not significant):" in lines
    rejected = [x for x in lines if x.startswith("  rejected ")]
    assert len(rejected) == len(v["best_rejected"])
    for line, r in zip(rejected, v["best_rejected"], strict=True):
        assert f"failed: {'; '.join(r['failed'])}" in line
    assert not any(x.startswith("#") for x in lines)  # nothing is ranked

    out_dir = tmp_path / "pine"
    code, out, err = aio("pine", "--db", db, "--top", "5", "--out", str(out_dir))
    assert code == 0, err
    assert v["message"] in out and "no script written" in out
    assert not out_dir.exists()  # nothing written, not even the folder
    code, out, err = aio(
        "pine", "--db", db, "--top", "5", "--out", str(out_dir), "--include-rejected"
    )
    assert code == 0, err
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["verdict"] == "none_passed" and manifest["strategies"] == []
    assert manifest["message"] == v["message"]
    want = [r["strategy_id"] for r in v["best_rejected"] if r.get("strategy_id")]
    assert [e["strategy_id"] for e in manifest["rejected"]] == want and want
    for e, r in zip(
        manifest["rejected"], [r for r in v["best_rejected"] if r.get("strategy_id")], strict=True
    ):
        assert e["rank"] is None and e["significant"] is False and e["failed"] == r["failed"]
        head = (out_dir / e["file"]).read_text().splitlines()
        assert head[0] == "//@version=6"
        assert head[1].startswith("// NOT SIGNIFICANT: failed " + r["failed"][0].split(" ")[0])
        assert v["run_id"] in head[1]
    assert sorted(p.name for p in out_dir.glob("*.pine")) == sorted(
        e["file"] for e in manifest["rejected"]
    )

    # rerunning the same search without --resume is refused
    code, _, err = aio(
        "--set",
        f"data.workdir={tmp_path}",
        *SEARCH,
        "optimize",
        "--bars",
        str(synthetic_bars),
        "--timeframes",
        "5m,15m",
        "--families",
        "ma_cross,bb_reversion",
        "--trials",
        "16",
        "--db",
        db,
        "--seed",
        "3",
    )
    assert code == 2 and "resume" in err


def test_optimize_then_rank_with_the_gates_off(synthetic_bars, tmp_path):
    """The same real search with the significance gates off: what passed is ranked, and
    `aio rank` and `aio pine --top` show exactly those strategies."""
    db = f"sqlite:///{tmp_path / 'lib.db'}"
    code, out, err = _optimize(synthetic_bars, tmp_path, db, *RELAXED)
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["verdict"]["verdict"] == "passed" and summary["top"]
    code, out, err = aio("rank", "--db", db, "--top", "5", "--json")
    assert code == 0, err
    v = json.loads(out)
    rows = v["strategies"]
    assert v["verdict"] == "passed" and v["passed"] == len(summary["top"]) >= len(rows) >= 1
    assert re.match(r"\d+ of \d+ procedures passed every gate", v["message"]), v["message"]
    assert v["gates"]["min_dsr"] == 0.0
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert [r["strategy_id"] for r in rows] == [t["strategy_id"] for t in summary["top"]][:5]
    for r in rows:
        assert r["family"] in ("ma_cross", "bb_reversion") and r["timeframe"] in ("5m", "15m")
        assert {"sharpe", "max_drawdown", "profit_factor", "dsr", "trades"} <= set(r["criteria"])
        assert "holdout" in r and r["params"] and r["run_id"] == v["run_id"]
        assert r["failed"] == [] and "fold_picks" in r  # the verdict's figures of the strategy
    code, out, err = aio("rank", "--db", db, "--top", "1")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == v["message"]
    assert [x.split()[0] for x in lines if x.startswith("#")] == ["#1"]
    assert "best rejected" not in out

    out_dir = tmp_path / "pine"
    code, out, err = aio("pine", "--db", db, "--top", "5", "--out", str(out_dir))
    assert code == 0, err
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert [e["strategy_id"] for e in manifest["strategies"]] == [r["strategy_id"] for r in rows]
    assert manifest["verdict"] == "passed" and manifest["rejected"] == []
    for e in manifest["strategies"]:
        assert "NOT SIGNIFICANT" not in (out_dir / e["file"]).read_text()


def _legacy_library(
    tmp_path: Path, verdict: dict | None = None, ranked: int = 2
) -> tuple[str, list[str]]:
    """A library with run-1 (ranked: the first ``ranked`` of two strategies) and optionally
    its stored verdict, written through the library's own API."""
    from aio_ray.library import Library

    url = f"sqlite:///{tmp_path / 'lib.db'}"
    lib = Library(url)
    lib.start_run("run-1", {}, {"sampler": 1})
    ids = [
        lib.upsert_strategy(
            "run-1", "ma_cross", {"fast": f, "slow": 30, "ma": "sma"}, "15m", "EURUSD"
        )
        for f in (5, 10)
    ]
    lib.save_ranking(
        "run-1",
        [
            {
                "strategy_id": sid,
                "score": 0.9 - i / 10,
                "criteria": {"sharpe": 1.0, "dsr": 0.97, "max_drawdown": 0.1},
            }
            for i, sid in enumerate(ids[:ranked])
        ],
    )
    if verdict is not None:
        lib.save_verdict("run-1", verdict(ids) if callable(verdict) else verdict)
    lib.close()
    return url, ids


def test_rank_without_a_ranked_run_says_so_with_a_null_verdict(tmp_path):
    db = f"sqlite:///{tmp_path / 'empty.db'}"
    code, out, err = aio("rank", "--db", db, "--json")
    assert code == 0, err
    v = json.loads(out)
    assert v["verdict"] is None and v["strategies"] == [] and v["best_rejected"] == []
    assert (
        v["run_id"] is None
        and v["message"] == "no ranked run in the library yet (run `aio optimize`)"
    )
    code, out, err = aio("rank", "--db", db)
    assert code == 0 and out.strip() == v["message"]
    code, _, err = aio("rank", "--db", db, "--run-id", "no-such-run")
    assert code == 2 and "no-such-run" in err


def test_rank_of_a_run_that_predates_verdicts(tmp_path):
    url, ids = _legacy_library(tmp_path)
    code, out, err = aio("rank", "--db", url, "--json")
    assert code == 0, err
    v = json.loads(out)
    assert v["verdict"] == "passed" and v["passed"] == 2 and v["run_id"] == "run-1"
    assert [r["strategy_id"] for r in v["strategies"]] == ids
    assert "no verdict was stored for run run-1" in v["message"]
    code, out, err = aio("rank", "--db", url)
    assert code == 0 and out.splitlines()[0] == v["message"]
    assert [x.split()[0] for x in out.splitlines() if x.startswith("#")] == ["#1", "#2"]


def test_rank_of_a_stored_passed_verdict_merges_its_figures(tmp_path):
    from aio_ray.strategies.verdict import verdict_message

    def verdict(ids):
        v = {
            "verdict": "passed",
            "passed": 1,
            "candidates": 200,
            "failed_candidates": 0,
            "procedures": 2,
            "effective_trials": 40,
            "pbo": 0.2,
            "gates": {"min_dsr": 0.95},
            "strategies": [
                {
                    "strategy_id": ids[0],
                    "family": "ma_cross",
                    "timeframe": "15m",
                    "dsr": 0.97,
                    "sharpe_annualized": 1.8,
                    "trades": 44,
                    "end_exits": 1,
                    "failed": [],
                }
            ],
            "best_rejected": [
                {
                    "strategy_id": ids[1],
                    "family": "ma_cross",
                    "timeframe": "15m",
                    "dsr": 0.4,
                    "failed": ["deflated Sharpe 0.400 < min_dsr 0.95"],
                }
            ],
        }
        v["message"] = verdict_message(v)
        return v

    url, ids = _legacy_library(tmp_path, verdict, ranked=1)
    code, out, err = aio("rank", "--db", url, "--json")
    assert code == 0, err
    v = json.loads(out)
    assert v["verdict"] == "passed" and v["passed"] == 1 and v["effective_trials"] == 40
    assert v["message"].startswith(
        "1 of 2 procedures passed every gate (200 candidates, 40 effective"
    )
    (row,) = v["strategies"]
    assert row["strategy_id"] == ids[0] and row["rank"] == 1 and row["score"] == pytest.approx(0.9)
    assert row["dsr"] == 0.97 and row["trades"] == 44 and row["criteria"]["dsr"] == 0.97
    assert v["best_rejected"][0]["strategy_id"] == ids[1]
    code, out, err = aio("rank", "--db", url)
    assert code == 0 and out.splitlines()[0] == v["message"] and "best rejected" not in out


def test_optimize_with_unreachable_library_fails_before_searching(real_bars, tmp_path):
    code, _out, err = aio(
        "optimize",
        "--bars",
        str(real_bars),
        "--timeframes",
        "15m",
        "--trials",
        "5",
        "--db",
        "postgresql+psycopg://aio:secret@127.0.0.1:1/nowhere",
    )
    assert code == 2
    assert "127.0.0.1:1" in err and "secret" not in err


def test_unknown_family_and_timeframe_in_optimize(real_bars):
    code, _, err = aio(
        "optimize", "--bars", str(real_bars), "--families", "ma_cross,nope", "--trials", "5"
    )
    assert code == 2 and "nope" in err
    code, _, err = aio("optimize", "--bars", str(real_bars), "--timeframes", "7m", "--trials", "5")
    assert code == 2 and "7m" in err


def test_config_typo_is_an_error():
    code, _, err = aio("--set", "search.n_trails=5", "rank")
    assert code == 2 and "n_trails" in err


def _pipeline_config(root: Path, ranking: dict) -> Path:
    import yaml

    work = root / "work"
    tree = {
        "data": {"source": "synthetic", "start": "2025-07-01", "end": "2025-07-20",
                 "workdir": str(work)},
        "synthetic": {"seed": 3},
        "bars": {"timeframes": ["1m", "15m", "1h"]},
        "search": {"timeframes": ["15m", "1h"], "n_trials": 20, "seed": 3, "n_folds": 2,
                   "holdout_fraction": 0.25, "warmup_bars": 30, "max_concurrent": 2,
                   "ranking": {"min_trades": 3, **ranking}, "pattern_filter": False},
        "patterns": {"enabled": False},
        "library": {"url": f"sqlite:///{work}/library.db"},
    }  # fmt: skip
    path = root / f"pipeline-{len(ranking)}.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


@pytest.mark.slow
def test_pipeline_summary_says_the_verdict_before_the_top(tmp_path, ray_local):
    """`aio pipeline` twice on the same data and workdir, for real: with the significance
    gates off, then on. The summary says the verdict first; the top lists only what passed;
    Pine files exist only for what passed (the second run removes the first run's)."""
    relaxed = {
        "min_dsr": 0.0,
        "max_pbo": 1.0,
        "min_trl_confidence": 0.0,
        "min_sharpe": -1e9,
        "min_profit_factor": 0.0,
    }
    pine_dir = tmp_path / "work" / "pine"
    code, out, err = aio("--config", str(_pipeline_config(tmp_path, relaxed)), "pipeline")
    assert code == 0, err
    lines = out.splitlines()
    verdict = next(i for i, x in enumerate(lines) if x.startswith("verdict: "))
    top = next(i for i, x in enumerate(lines) if x.startswith("top "))
    assert verdict + 1 == top
    assert re.match(
        r"verdict: \d+ of 12 procedures passed every gate \(20 candidates", lines[verdict]
    )
    assert re.match(r"top [1-5] \(library sqlite:///.*\):$", lines[top]), lines[top]
    ranked = re.findall(r"^\s*#(\d) +\w+ +(15m|1h) +score .* id ([0-9a-f]{20})$", out, re.MULTILINE)
    assert ranked and [int(r[0]) for r in ranked] == list(range(1, len(ranked) + 1))
    assert "best rejected" not in out
    manifest = json.loads((pine_dir / "manifest.json").read_text())
    assert manifest["verdict"] == "passed"
    assert [s["strategy_id"] for s in manifest["strategies"]] == [r[2] for r in ranked]
    first_files = sorted(p.name for p in pine_dir.glob("*.pine"))
    assert len(first_files) == 2 * len(ranked)

    code, out, err = aio(
        "--config",
        str(_pipeline_config(tmp_path, {})),
        "--log-level",
        "WARNING",
        "pipeline",
        "--json",
    )
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    v = summary["verdict"]
    assert v["verdict"] == "none_passed" and v["passed"] == 0 and summary["top"] == []
    assert v["message"].startswith("0 of 20 candidates passed (") and v["best_rejected"]
    assert {"candidates", "effective_trials", "pbo", "gates"} <= set(v)
    manifest = json.loads((pine_dir / "manifest.json").read_text())
    assert manifest["verdict"] == "none_passed" and manifest["strategies"] == []
    assert manifest["message"] == v["message"]
    assert list(pine_dir.glob("*.pine")) == []  # the first run's scripts passed another verdict

    from aio_ray.pipeline import format_summary

    text = format_summary(summary).splitlines()
    i = text.index(f"verdict: {v['message']}")
    assert text[i + 1].startswith("top 0 (library sqlite:///")
    assert text[i + 1].endswith("no strategy passed every gate; no Pine exported")
    assert text[i + 2] == "best rejected (not significant, not exported):"
    assert [x for x in text if x.startswith("  rejected ")] == text[
        i + 3 : i + 3 + len(v["best_rejected"])
    ]
    assert not any(x.lstrip().startswith("#") for x in text)
