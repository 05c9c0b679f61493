"""Configuration modes (demo / dev / prod / backtest), backtest mode's replay, JSON logging."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml

from aio_ray.config import load_config

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["demo", "null", "dev", "prod", "backtest", "dukascopy"])
def test_every_mode_config_loads(name):
    cfg = load_config(REPO / "configs" / f"{name}.yaml")
    assert cfg.data.start < cfg.data.end
    if name == "backtest":
        assert cfg.mode == "backtest" and cfg.replay.library_url == "sqlite:///data/demo/library.db"
    else:
        assert cfg.mode == "search"


def test_the_demo_plants_an_edge_and_the_null_run_is_the_same_without_it():
    demo, null, forward = (
        load_config(REPO / "configs" / f"{n}.yaml") for n in ("demo", "null", "backtest")
    )
    assert demo.synthetic.edge == "mean_reversion" and demo.synthetic.edge_strength > 0
    assert null.synthetic.edge == "none" and null.synthetic.edge_strength == 0
    assert forward.synthetic == demo.synthetic  # the forward month comes from the same generator
    assert forward.data.start >= demo.data.end  # ... after everything the demo searched
    assert (null.data.start, null.data.end, null.search) == (
        demo.data.start,
        demo.data.end,
        demo.search,
    )
    assert null.data.workdir != demo.data.workdir and null.library.url != demo.library.url


def test_modes_differ_in_size_budget_and_logging():
    dev, demo, prod = (load_config(REPO / "configs" / f"{n}.yaml") for n in ("dev", "demo", "prod"))
    span = {
        k: (c.data.end - c.data.start).days
        for k, c in (("dev", dev), ("demo", demo), ("prod", prod))
    }
    assert span["dev"] < span["demo"] < span["prod"]
    assert dev.search.n_trials < demo.search.n_trials < prod.search.n_trials
    assert (dev.logging.level, dev.logging.format) == ("DEBUG", "text")
    assert prod.logging.format == "json"
    assert prod.data.source == "dukascopy" and prod.library.url.startswith("postgresql")


def test_unknown_mode_and_bad_logging_are_config_errors():
    from aio_ray.errors import ConfigError

    with pytest.raises(ConfigError, match="mode"):
        load_config(None, ["mode=live"])
    with pytest.raises(ConfigError, match="format"):
        load_config(None, ["logging.format=xml"])
    with pytest.raises(ConfigError, match="top"):
        load_config(None, ["replay.top=0"])


def test_json_logging_is_one_object_per_line_and_merges_progress_fields(capsys):
    from aio_ray.logsetup import configure_logging

    try:
        configure_logging("INFO", "json")
        logging.getLogger("aio_ray.test").info("hello %s", "world")
        logging.getLogger("aio_ray.progress").info(
            json.dumps({"stage": "bars", "done": 3, "total": 7})
        )
        logging.getLogger("aio_ray.test").debug("not shown at INFO")
        lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    finally:
        configure_logging("INFO", "text")
    rows = [json.loads(ln) for ln in lines]
    assert [r.get("message") for r in rows] == ["hello world", None]
    assert rows[0]["level"] == "INFO" and rows[0]["logger"] == "aio_ray.test"
    assert rows[0]["time"].endswith("+00:00")
    assert (rows[1]["stage"], rows[1]["done"], rows[1]["total"]) == ("bars", 3, 7)


@pytest.fixture(scope="module")
def searched(tmp_path_factory, ray_local):
    """A tiny real search on one week; its library is what backtest mode replays."""
    from aio_ray.pipeline import run_bars, run_ingest, run_optimize

    root = tmp_path_factory.mktemp("modes")
    work = root / "search"
    tree = {
        "data": {"source": "synthetic", "start": "2025-07-01", "end": "2025-07-12", "workdir": str(work)},
        "synthetic": {"seed": 5},
        "bars": {"timeframes": ["1m", "15m", "1h"]},
        "search": {"timeframes": ["15m", "1h"], "n_trials": 96, "seed": 5, "n_folds": 2,
                   "holdout_fraction": 0.2, "warmup_bars": 30, "max_concurrent": 2,
                   # the significance gates off: a 96-candidate search of a few days
                   # exercises the replay plumbing; the gates are tested in test_ranking
                   "ranking": {"min_trades": 3, "min_dsr": 0.0, "max_pbo": 1.0, "min_trl_confidence": 0.0,
                               "min_sharpe": -1e9, "min_profit_factor": 0.0}},
        "library": {"url": f"sqlite:///{work}/library.db"},
    }  # fmt: skip
    path = root / "search.yaml"
    path.write_text(yaml.safe_dump(tree))
    cfg = load_config(path)
    run_ingest(cfg)
    run_bars(cfg)
    run_optimize(cfg.data.bars_dir, cfg, storage=work / "tune")
    return {"root": root, "tree": tree, "url": tree["library"]["url"]}


def _backtest_cfg(searched, **replay):
    root = searched["root"]
    tree = {
        "mode": "backtest",
        "data": {"source": "synthetic", "start": "2025-07-14", "end": "2025-07-26",
                 "workdir": str(root / "forward")},
        "synthetic": {"seed": 5},
        "bars": {"timeframes": ["1m", "15m", "1h"]},
        "search": {"timeframes": ["15m", "1h"]},
        "replay": {"library_url": searched["url"], **replay},
        "library": {"url": f"sqlite:///{root}/unused.db"},
    }  # fmt: skip
    path = root / "backtest.yaml"
    path.write_text(yaml.safe_dump(tree))
    return load_config(path)


def test_backtest_mode_replays_the_ranked_top_on_a_new_period(searched, ray_local):
    from aio_ray.bars.arrays import BarArrays
    from aio_ray.bars.store import read_bars
    from aio_ray.library import open_library
    from aio_ray.pipeline import format_summary, run_pipeline
    from aio_ray.strategies.engine import run_backtest
    from aio_ray.strategies.families import get_family

    cfg = _backtest_cfg(searched, top=3)
    summary = run_pipeline(cfg)
    assert summary["mode"] == "backtest" and "search" not in summary
    rows = summary["backtest"]["strategies"]
    ranked = open_library(searched["url"]).top(n=3)
    assert [r["strategy_id"] for r in rows] == [r.strategy.id for r in ranked]
    start_ms = 1752451200000  # 2025-07-14T00:00:00Z: nothing replayed is from the search period
    for row in rows:
        assert row["window"][0] >= start_ms
        assert row["ranked_criteria"] is not None and "sharpe" in row["metrics"]
        # oracle: the same strategy backtested from bar 0 of the new bars trades identically
        # (the family issues no order before its indicators are defined)
        mb = BarArrays.from_frame(
            read_bars(cfg.data.bars_dir, row["timeframe"], "EURUSD"), timeframe=row["timeframe"]
        )
        fam = get_family(row["family"])
        full = run_backtest(mb, fam.signals(mb, row["params"]), cfg.search.backtest)
        assert row["trades"] == full.trades.height
    on_disk = json.loads(Path(summary["backtest"]["report"]).read_text())
    assert [r["strategy_id"] for r in on_disk["strategies"]] == [r["strategy_id"] for r in rows]
    text = format_summary(summary)
    assert 1 <= len(rows) <= 3, rows  # the ranked top of the search, at most the 3 asked for
    assert f"backtest mode: {len(rows)} strategies" in text and rows[0]["strategy_id"] in text


def test_backtest_mode_with_unknown_ids_or_an_empty_library_says_so(searched, ray_local, tmp_path):
    from aio_ray.replay import ReplayError, replay_strategies

    cfg = _backtest_cfg(searched, strategy_ids=["nope-123"])
    from aio_ray.pipeline import run_bars, run_ingest

    run_ingest(cfg)
    run_bars(cfg)
    with pytest.raises(ReplayError, match="'nope-123' is not in the library"):
        replay_strategies(cfg)
    empty = cfg.model_copy(
        update={
            "replay": cfg.replay.model_copy(
                update={"library_url": f"sqlite:///{tmp_path}/empty.db", "strategy_ids": ()}
            )
        }
    )
    with pytest.raises(ReplayError, match="no ranking of any run"):
        replay_strategies(empty)
