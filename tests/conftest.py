"""Shared fixtures: the real Dukascopy files beside the project, and a real local Ray head."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("AIO_SHARED_DATA", REPO.parent / "shared" / "data"))
DUKASCOPY_DIR = SHARED_DATA / "dukascopy"


@pytest.fixture(scope="session")
def dukascopy_dir() -> Path:
    """The real Dukascopy EUR/USD mirror (``EURUSD/2019/01/04`` = 2019-02-04); skips if absent."""
    if not (DUKASCOPY_DIR / "EURUSD" / "2019" / "01" / "04" / "00h_ticks.bi5").exists():
        pytest.skip(f"real Dukascopy files not found under {DUKASCOPY_DIR} (set AIO_SHARED_DATA)")
    return DUKASCOPY_DIR


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray head with 2 CPUs, shared by the whole test session."""
    import ray

    if not ray.is_initialized():
        ray.init(
            address="local",  # never attach to another Ray cluster running on this machine
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}},
        )
    yield ray
