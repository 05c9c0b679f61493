"""Fast checks of the Serve app's parts without Ray: settings resolution, the library's
control events and change marker (SQLite, and PostgreSQL when AIO_TEST_POSTGRES_URL is set),
and the curve helpers."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the `serve` package lives at the repository root
    sys.path.insert(0, str(REPO))

from aio_ray.errors import ConfigError
from aio_ray.library import Library
from serve.config import resolve
from serve.curves import drawdown, thin

TOKEN = "unit-token-0123456789abcdef"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("AIO_HOME", str(tmp_path))
    monkeypatch.delenv("AIO_LIBRARY_URL", raising=False)
    monkeypatch.delenv("AIO_CONTROL_TOKEN", raising=False)
    (tmp_path / "cfg").mkdir()
    cfg = tmp_path / "cfg" / "app.yaml"
    cfg.write_text(yaml.safe_dump({
        "data": {"workdir": "work", "symbol": "eurusd"},
        "library": {"url": "sqlite:///work/lib.db"},
        "serve": {"top": 3, "max_body_bytes": 2048},
    }))  # fmt: skip
    return tmp_path


def test_relative_paths_resolve_against_the_home_not_the_working_directory(home, monkeypatch):
    monkeypatch.chdir("/")
    r = resolve({"app_config": "cfg/app.yaml"})
    assert r.library_url == f"sqlite:///{home}/work/lib.db"
    assert r.bars_dir == home / "work" / "bars"
    assert r.symbol == "EURUSD"
    assert r.settings.top == 3 and r.settings.max_body_bytes == 2048  # the serve: section
    assert r.token_sha256 is None and r.public()["control"].startswith("disabled")


def test_builder_arguments_win_over_the_file(home):
    r = resolve({"app_config": "cfg/app.yaml", "top": 7, "library_url": "sqlite:////x/y.db",
                 "bars_dir": "elsewhere"})  # fmt: skip
    assert r.settings.top == 7 and r.settings.max_body_bytes == 2048
    assert r.library_url == "sqlite:////x/y.db" and r.bars_dir == home / "elsewhere"


def test_the_token_comes_from_the_environment_or_a_file_never_the_config(home, monkeypatch):
    monkeypatch.setenv("MY_TOKEN", TOKEN)
    a = resolve({"app_config": "cfg/app.yaml", "token_env": "MY_TOKEN"})
    (home / "tok").write_text(TOKEN + "\n")
    b = resolve({"app_config": "cfg/app.yaml", "token_file": "tok"})
    assert a.token_sha256 == b.token_sha256 is not None
    assert TOKEN not in repr(a) and TOKEN not in str(a.public())
    monkeypatch.setenv("MY_TOKEN", "short")
    with pytest.raises(ConfigError, match="shorter than 16"):
        resolve({"app_config": "cfg/app.yaml", "token_env": "MY_TOKEN"})


@pytest.mark.parametrize(
    "args, match",
    [
        ({"app_config": "cfg/app.yaml", "topp": 3}, "topp"),
        ({"app_config": "cfg/app.yaml", "max_body_bytes": 10}, "max_body_bytes"),
        ({"app_config": "cfg/missing.yaml"}, "missing.yaml"),
        ({"token_env": "NOT A NAME", "library_url": "sqlite:///x.db"}, "token_env"),
        ({}, "no library to serve"),
        ({"app_config": "cfg/app.yaml", "token_file": "nope"}, "token_file"),
    ],
)
def test_bad_settings_name_what_is_wrong(home, args, match):
    with pytest.raises(ConfigError, match=match):
        resolve(args)


def test_a_bad_serve_section_in_the_file_is_reported_with_the_file(home):
    cfg = home / "cfg" / "app.yaml"
    cfg.write_text(yaml.safe_dump({"serve": {"top": "many"}}))
    with pytest.raises(ConfigError, match="app.yaml"):
        resolve({"app_config": "cfg/app.yaml"})


# ----------------------------------------------------------------------------- library control


@pytest.fixture(params=["sqlite", "postgres"])
def lib(request, tmp_path):
    if request.param == "sqlite":
        library = Library(f"sqlite:///{tmp_path}/lib.db")
    else:
        url = os.environ.get("AIO_TEST_POSTGRES_URL")
        if not url:
            pytest.skip('AIO_TEST_POSTGRES_URL not set: run `eval "$(.ci/postgres.sh)"`')
        library = Library(url)
    run = f"run-{uuid.uuid4().hex[:8]}"
    library.start_run(run, {"x": 1}, {"seed": 0})
    sids = [library.upsert_strategy(run, "ma_cross", {"fast": i, "slow": 30}, "1h", "EURUSD")
            for i in (5, 6)]  # fmt: skip
    yield library, run, sids
    library.close()


def test_control_state_replays_events_in_order(lib):
    library, _, (a, b) = lib
    start = library.control_events(limit=1)
    after = start[0]["id"] if start else 0
    library.record_control(a, "pause", {"reason": "news"}, "alice")
    library.record_control(a, "params", {"params": {"fast": 7, "slow": 30}}, "bob")
    library.record_control(b, "pause", {}, "alice")
    library.record_control(b, "resume", {}, "carol")
    library.record_control(None, "config_reload", {"changed": []}, "alice")
    state = library.control_state()
    assert state[a]["paused"] is True and state[a]["params"] == {"fast": 7, "slow": 30}
    assert state[a]["updated_by"] == "bob"
    assert state[b] == {**state[b], "paused": False, "params": None, "updated_by": "carol"}
    mine = library.control_events(after_id=after, limit=100)
    assert [e["action"] for e in mine] == ["config_reload", "resume", "pause", "params", "pause"]
    assert mine[-1]["payload"] == {"reason": "news"} and mine[-1]["who"] == "alice"
    assert all(e["at_ms"] > 1_600_000_000_000 for e in mine)
    assert [e["action"] for e in library.control_events(b, after_id=after)] == ["resume", "pause"]
    with pytest.raises(ValueError, match="who"):
        library.record_control(a, "pause", {}, "")


def test_change_marker_moves_with_control_pine_checks_and_rankings(lib):
    library, run, (a, _) = lib
    m0 = library.change_marker()
    assert library.change_marker() == m0
    library.record_control(a, "pause", {}, "alice")
    m1 = library.change_marker()
    assert m1 != m0
    library.record_pine_verification(a, "strategy", parsed=True, parity_passed=None,
                                     first_diff_bar=None, report={})  # fmt: skip
    m2 = library.change_marker()
    assert m2 != m1
    library.save_ranking(run, [{"strategy_id": a, "score": 0.5, "criteria": {"sharpe": 1.0}}])
    m3 = library.change_marker()
    assert m3 != m2
    library.finish_run(run)
    m4 = library.change_marker()
    assert m4 != m3
    library.save_verdict(run, {"verdict": "none_passed", "passed": 0, "message": "x"})
    assert library.change_marker() != m4  # a (re-)judged run is seen by the app's caches


# ----------------------------------------------------------------------------- curves


def test_drawdown_is_the_fall_below_the_running_peak():
    eq = np.array([100.0, 110.0, 99.0, 121.0, 110.0])
    np.testing.assert_allclose(drawdown(eq), [0.0, 0.0, 99 / 110 - 1, 0.0, 110 / 121 - 1])
    assert drawdown(np.array([])).size == 0


def test_thinning_keeps_the_ends_and_the_trough():
    idx = thin(100_000, keep=[54_321], max_points=1_000)
    assert idx[0] == 0 and idx[-1] == 99_999 and 54_321 in idx
    assert len(idx) <= 1_003 and np.all(np.diff(idx) > 0)
    assert np.array_equal(thin(10), np.arange(10))


# ----------------------------------------------------------------------------- the verdict

HOSTILE_MESSAGE = '<img src=x onerror="document.body.dataset.pwned=1"></script><b>0 of 9'
HOSTILE_GATE = '"><script>document.body.dataset.pwned=2</script> PBO 0.7 >= 0.5'


def _judged_library(tmp_path, passed: bool) -> tuple[str, list[str], dict]:
    """run-1 of a real SQLite library with two strategies and a stored verdict (one passed,
    or none), hostile text in its message and failed gates."""
    url = f"sqlite:///{tmp_path}/lib.db"
    library = Library(url)
    library.start_run("run-1", {}, {"sampler": 0})
    sids = [library.upsert_strategy("run-1", "ma_cross", {"fast": f, "slow": 30}, "1h", "EURUSD")
            for f in (5, 6)]  # fmt: skip
    rejected = [
        {
            "strategy_id": sids[1],
            "family": "ma_cross",
            "timeframe": "1h",
            "dsr": 0.12,
            "failed": ["deflated Sharpe 0.120 < min_dsr 0.95", HOSTILE_GATE],
        }
    ]
    v = {"verdict": "passed" if passed else "none_passed", "passed": int(passed),
         "candidates": 900, "failed_candidates": 3, "procedures": 2, "effective_trials": 17,
         "pbo": 0.7, "gates": {"min_dsr": 0.95, "max_pbo": 0.5},
         "strategies": [{"strategy_id": sids[0], "family": "ma_cross", "timeframe": "1h",
                         "failed": []}] if passed else [],
         "best_rejected": rejected,
         "message": ("1 of 2 procedures passed every gate: ma_cross 1h." if passed
                     else HOSTILE_MESSAGE)}  # fmt: skip
    if passed:
        library.save_ranking(
            "run-1",
            [{"strategy_id": sids[0], "score": 0.8, "criteria": {"sharpe": 1.2, "dsr": 0.97}}],
        )
    library.save_verdict("run-1", v)
    library.close()
    return url, sids, v


@pytest.mark.parametrize("passed", [False, True])
def test_rankings_carry_the_verdict_beside_the_rows(tmp_path, passed):
    from fastapi.testclient import TestClient

    from serve.app import create_app
    from serve.service import Core

    url, sids, v = _judged_library(tmp_path, passed)
    core = Core({"library_url": url})
    data = core.rankings()
    assert data["run_id"] == "run-1"
    for k in ("verdict", "passed", "candidates", "effective_trials", "pbo", "message", "gates"):
        assert data[k] == v[k], k
    assert data["best_rejected"] == v["best_rejected"]
    assert [r["strategy_id"] for r in data["strategies"]] == (sids[:1] if passed else [])
    with TestClient(create_app(core=core)) as http:
        body = http.get("/rankings").json()
        assert body["verdict"] == v["verdict"] and body["message"] == v["message"]
        assert body["best_rejected"][0]["failed"][1] == HOSTILE_GATE
        assert http.get("/rankings.json").json()["message"] == v["message"]
        # a timeframe filters the rows, never the run's verdict
        other = http.get("/rankings", params={"timeframe": "15m"}).json()
        assert other["strategies"] == [] and other["verdict"] == v["verdict"]


def test_rankings_without_any_judged_run_have_a_null_verdict(tmp_path):
    from serve.service import Core

    url = f"sqlite:///{tmp_path}/empty.db"
    Library(url).close()
    data = Core({"library_url": url}).rankings()
    assert data["run_id"] is None and data["verdict"] is None and data["strategies"] == []
    assert data["best_rejected"] == [] and "no ranked run" in data["message"]


@pytest.mark.slow
@pytest.mark.parametrize("passed", [False, True])
def test_the_dashboard_banner_says_the_verdict_and_escapes_it(tmp_path, passed):
    """The real dashboard in a real headless Chromium over the app (uvicorn, no Ray): the
    banner carries the verdict; hostile text stays text."""
    import socket
    import subprocess
    import threading
    import time
    from html import escape

    import uvicorn
    from test_serve import CHROMIUM_FLAGS, _chromium

    from serve.app import create_app

    if not (REPO / "serve/static/vendor").is_dir() and not os.environ.get("CI"):
        pytest.skip("charting library not vendored: run bash serve/vendor.sh")
    exe = _chromium()
    url, sids, v = _judged_library(tmp_path, passed)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(create_app({"library_url": url}), host="127.0.0.1",
                                           port=port, log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start in 30 s"
            time.sleep(0.1)
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
               f"http://127.0.0.1:{port}/dashboard"]  # fmt: skip
        dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert 'data-state="ready"' in html, html[:3000]
    assert "pwned" not in html.split("<body", 1)[1].split(">", 1)[0]  # nothing ran
    assert "<script>document" not in html and "<img src" not in html
    if passed:
        assert 'data-verdict="passed"' in html and 'class="verdict passed"' in html
        assert v["message"] in html and 'data-rejected="0"' in html
        assert 'data-strategies="1"' in html and f'data-strategy-id="{sids[0]}"' in html
    else:
        assert 'data-verdict="none_passed"' in html and 'class="verdict none_passed"' in html
        assert escape(HOSTILE_MESSAGE, quote=False) in html  # shown as text
        assert 'data-rejected="1"' in html and f'data-rejected-id="{sids[1]}"' in html
        assert escape(HOSTILE_GATE, quote=False) in html
        assert 'data-strategies="0"' in html and "No strategy passed every gate" in html
        assert "No Pine script: no strategy passed every gate." in html
