"""The registries: tick sources and vision backends, one name each, checked where a config
names them; each tick source's settings section is on the root config with its declared type,
each vision backend's entry names a VisionBackend class."""

from __future__ import annotations

import datetime as dt
import importlib

import pytest
from pydantic import ValidationError

from aio_ray.config import AppConfig
from aio_ray.data.config import DataConfig, ValidationConfig
from aio_ray.data.sources import SOURCE_NAMES, SOURCES
from aio_ray.data.sources.base import TickSource, get_source
from aio_ray.errors import SourceError
from aio_ray.vision.backends import VisionBackend, make_backend
from aio_ray.vision.config import VisionSettings
from aio_ray.vision.registry import BACKEND_CLASSES, BACKENDS


def test_every_registered_source_loads_under_its_own_name() -> None:
    assert SOURCE_NAMES == ("synthetic", "dukascopy", "files")
    for name in SOURCES:
        src = get_source(name)
        assert isinstance(src, TickSource)
        assert src.name == name


def test_each_source_settings_section_is_on_the_root_config_with_its_type() -> None:
    cfg = AppConfig()
    for name in SOURCES:
        src = get_source(name)
        if src.section is None:
            assert src.settings is None
            continue
        assert src.settings is not None
        assert isinstance(getattr(cfg, src.section), src.settings), name


def test_an_unknown_source_name_is_refused_by_the_config_with_the_accepted_names() -> None:
    with pytest.raises(
        ValidationError, match=r"unknown tick source 'csv'; accepted: synthetic, dukascopy, files"
    ):
        DataConfig(source="csv")


def test_an_unknown_source_name_is_refused_by_the_lookup() -> None:
    with pytest.raises(SourceError, match=r"unknown tick source 'ftp'; accepted: synthetic"):
        get_source("ftp")


def test_a_source_given_the_wrong_settings_type_says_which_it_needs(tmp_path) -> None:
    src = get_source("synthetic")
    data = DataConfig(workdir=tmp_path, start=dt.date(2025, 7, 1), end=dt.date(2025, 7, 2))
    with pytest.raises(
        SourceError, match=r"needs its 'synthetic' settings as SyntheticConfig, got DukascopyConfig"
    ):
        src.ingest(data, AppConfig().dukascopy, ValidationConfig(), use_ray=False)
    assert not (tmp_path / "ticks").exists()  # refused before anything was written


def test_the_registry_drives_the_ingest_the_pipeline_runs(tmp_path) -> None:
    cfg = AppConfig().model_copy(
        update={
            "data": DataConfig(workdir=tmp_path, start=dt.date(2025, 7, 1), end=dt.date(2025, 7, 2))
        }
    )
    src = get_source(cfg.data.source)
    rep = src.ingest(cfg.data, cfg.synthetic, cfg.validation, use_ray=False)
    assert rep.ok and rep.source == "synthetic"
    assert rep.totals["kept"] > 10_000
    assert list(rep.days) == ["2025-07-01"]


# ----------------------------------------------------------------------------- vision backends


def test_every_registered_vision_backend_names_a_backend_class() -> None:
    assert BACKENDS == ("cpu", "vllm", "http")
    for name, target in BACKEND_CLASSES.items():
        module, cls = target.split(":")
        backend_cls = getattr(importlib.import_module(module), cls)
        assert backend_cls.name == name  # what every record names as its backend
        assert callable(backend_cls.analyze)


def test_an_unknown_vision_backend_is_refused_by_the_settings_with_the_accepted_names() -> None:
    with pytest.raises(
        ValidationError, match=r"unknown vision backend 'gpt4'; accepted: cpu, vllm, http"
    ):
        VisionSettings(backend="gpt4")


def test_the_registry_builds_the_cpu_backend_by_name() -> None:
    backend: VisionBackend = make_backend("cpu")
    assert type(backend).__name__ == "CpuBackend" and backend.name == "cpu"
    assert backend.model_id
