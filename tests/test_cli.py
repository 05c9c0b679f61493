"""The `aio` command contracts, end to end on the real Dukascopy days (in-process CLI runner)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from aio_ray.cli import app

runner = CliRunner()

CONTRACT_INDICATORS = ["ts", "rsi", "macd", "macd_signal", "macd_hist", "bb_upper", "bb_middle", "bb_lower",
                       "sma", "ema", "stoch_k", "stoch_d", "atr", "adx", "plus_di", "minus_di"]


def aio(*args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture(scope="module")
def real_bars(dukascopy_dir, tmp_path_factory, ray_local) -> Path:
    """`aio ingest dukascopy --mirror` then `aio bars` on 2019-02-04/05, as a user runs them."""
    root = tmp_path_factory.mktemp("cli")
    code, out, err = aio("ingest", "dukascopy", "--symbol", "EURUSD", "--start", "2019-02-04", "--end",
                         "2019-02-06", "--mirror", str(dukascopy_dir), "--out", str(root / "ticks"))
    assert code == 0, err
    assert "266,219 kept" in out
    code, out, err = aio("bars", "--ticks", str(root / "ticks"), "--timeframes", "1m,5m,15m,1h,4h,1d",
                         "--out", str(root / "bars"), "--json")
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
    code, _, err = aio("indicators", "--bars", str(real_bars), "--timeframe", "15m", "--out", str(out))
    assert code == 0, err
    df = pl.read_parquet(out)
    assert df.columns == CONTRACT_INDICATORS
    assert df.height == 192
    last = df.row(-1, named=True)
    assert all(np.isfinite(last[c]) for c in CONTRACT_INDICATORS[1:])
    assert 0 <= last["rsi"] <= 100 and last["bb_lower"] < last["bb_middle"] < last["bb_upper"]


def test_backtest_json_is_the_contract(real_bars):
    from aio_ray.bars.store import read_bars
    from aio_ray.strategies.engine import BacktestConfig, run_backtest
    from aio_ray.strategies.evaluate import MarketBars
    from aio_ray.strategies.families import get_family
    from aio_ray.strategies.space import defaults

    params = {"fast": 10, "slow": 20, "ma": "sma"}
    code, out, err = aio("backtest", "--bars", str(real_bars), "--timeframe", "15m", "--family", "ma_cross",
                         "--params", json.dumps(params), "--price-model", "single", "--commission", "0", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) >= {"metrics", "trades"}
    for key in ("net_profit", "cagr", "sharpe", "sortino", "max_drawdown", "profit_factor", "win_rate",
                "trades", "exposure", "avg_trade"):
        assert key in doc["metrics"]
    assert doc["trades"], "an SMA 10/20 cross trades on two days of 15m bars"
    for t in doc["trades"]:
        assert {"side", "entry_ts", "entry_price", "exit_ts", "exit_price", "exit_reason", "pnl"} <= set(t)
        assert t["entry_ts"].endswith("Z") and dt.datetime.fromisoformat(t["entry_ts"]).tzinfo is not None
    # the same numbers as calling the engine directly
    mb = MarketBars.from_frame(read_bars(real_bars, "15m"), "15m")
    fam = get_family("ma_cross")
    res = run_backtest(mb.signal, fam.signals(mb.signal, {**defaults("ma_cross"), **params}),
                       BacktestConfig(price_model="single", commission_type="percent"))
    assert len(doc["trades"]) == res.trades.height
    assert doc["metrics"]["net_profit"] == pytest.approx(res.metrics["net_profit"], abs=1e-9)
    assert [t["entry_price"] for t in doc["trades"]] == res.trades["entry_price"].to_list()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--family", "nope", "--params", "{}"], "unknown strategy family 'nope'"),
        (["--family", "ma_cross", "--params", '{"fast": 30, "slow": 20}'], "fast < slow"),
        (["--family", "ma_cross", "--params", '{"fast": 10, "slow": 20, "bogus": 1}'], "unknown parameter 'bogus'"),
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
    code, out, err = aio("backtest", "--bars", str(real_bars), "--timeframe", "30m", "--family", "ma_cross",
                         "--params", "{}")
    assert code == 2 and "no 30m bars" in err
    code, out, err = aio("backtest", "--bars", str(real_bars), "--timeframe", "1d", "--family", "ma_cross",
                         "--params", "{}")
    assert code == 2 and "2 bars are too few for the warm-up" in err


@pytest.fixture(scope="module")
def synthetic_bars(tmp_path_factory, ray_local) -> Path:
    """Three weeks of seeded synthetic ticks -> 5m/15m bars (enough days for daily OOS returns)."""
    root = tmp_path_factory.mktemp("cli_syn")
    code, _, err = aio("ingest", "synthetic", "--start", "2025-07-01", "--end", "2025-07-22", "--seed", "7",
                       "--out", str(root / "ticks"), "--local")
    assert code == 0, err
    code, _, err = aio("bars", "--ticks", str(root / "ticks"), "--timeframes", "5m,15m", "--out", str(root / "bars"))
    assert code == 0, err
    return root / "bars"


def test_optimize_then_rank(synthetic_bars, tmp_path):
    real_bars = synthetic_bars
    db = f"sqlite:///{tmp_path / 'lib.db'}"
    code, out, err = aio("--set", f"data.workdir={tmp_path}", "--set", "search.n_folds=2",
                         "--set", "search.warmup_bars=30", "--set", "search.ranking.min_trades=5", "optimize", "--bars", str(real_bars),
                         "--timeframes", "5m,15m", "--families", "ma_cross,bb_reversion", "--trials", "16",
                         "--db", db, "--json", "--seed", "3")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["complete"] and summary["trials_ok"] + summary["trials_failed"] == 16
    assert summary["seeds"]["sampler"] == 3
    code, out, err = aio("rank", "--db", db, "--top", "5", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert rows and [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert {r["strategy_id"] for r in rows} == {t["strategy_id"] for t in summary["top"]}
    for r in rows:
        assert r["family"] in ("ma_cross", "bb_reversion") and r["timeframe"] in ("5m", "15m")
        assert {"sharpe", "max_drawdown", "profit_factor", "dsr", "trades"} <= set(r["criteria"])
        assert "holdout" in r and r["params"]
    # rerunning the same search without --resume is refused; with --resume nothing is repeated
    code, _, err = aio("--set", f"data.workdir={tmp_path}", "--set", "search.n_folds=2",
                       "--set", "search.warmup_bars=30", "--set", "search.ranking.min_trades=5", "optimize", "--bars", str(real_bars),
                       "--timeframes", "5m,15m", "--families", "ma_cross,bb_reversion", "--trials", "16",
                       "--db", db, "--seed", "3")
    assert code == 2 and "resume" in err


def test_optimize_with_unreachable_library_fails_before_searching(real_bars, tmp_path):
    code, out, err = aio("optimize", "--bars", str(real_bars), "--timeframes", "15m", "--trials", "5",
                         "--db", "postgresql+psycopg://aio:secret@127.0.0.1:1/nowhere")
    assert code == 2
    assert "127.0.0.1:1" in err and "secret" not in err


def test_unknown_family_and_timeframe_in_optimize(real_bars):
    code, _, err = aio("optimize", "--bars", str(real_bars), "--families", "ma_cross,nope", "--trials", "5")
    assert code == 2 and "nope" in err
    code, _, err = aio("optimize", "--bars", str(real_bars), "--timeframes", "7m", "--trials", "5")
    assert code == 2 and "7m" in err


def test_config_typo_is_an_error():
    code, _, err = aio("--set", "search.n_trails=5", "rank")
    assert code == 2 and "n_trails" in err
