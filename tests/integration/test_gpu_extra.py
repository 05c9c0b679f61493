"""The `gpu` extra installs the vLLM that Ray 2.60's LLM stages are built for (issue 17).

Runs everywhere, no GPU and no vllm needed: the extra is read from pyproject.toml, the vLLM
that `ray[llm]` requires is read from the installed ray distribution's own metadata
(`Requires-Dist: vllm[...]==X; extra == "llm"`), which a plain `pip install -e '.[test,vision]'`
installs, llm extra or not.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from aio_ray.vision.backends.vllm_engine import VLLM_VERSION

REPO = Path(__file__).resolve().parents[2]


def _pyproject() -> dict:
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def _by_name(reqs: list[str]) -> dict[str, Requirement]:
    out: dict[str, Requirement] = {}
    for text in reqs:
        req = Requirement(text)
        assert req.name.lower() not in out, f"{req.name} listed twice: {reqs}"
        out[req.name.lower()] = req
    return out


def _exact(req: Requirement) -> str:
    """The version of an exact ``==X`` pin (fails on ranges, wildcards or several clauses)."""
    specs = list(req.specifier)
    assert len(specs) == 1 and specs[0].operator == "==", f"{req} is not one exact pin"
    assert "*" not in specs[0].version, f"{req} is a wildcard pin"
    return specs[0].version


def _llm_extra(lines: list[str]) -> dict[str, Requirement]:
    """The requirements among ``Requires-Dist`` lines that only the ``llm`` extra brings
    (markers evaluated for this interpreter; base requirements dropped)."""
    out: dict[str, Requirement] = {}
    for text in lines:
        req = Requirement(text)
        if req.marker is None:
            continue
        if req.marker.evaluate({"extra": "llm"}) and not req.marker.evaluate({"extra": ""}):
            out[req.name.lower()] = req
    return out


def _ray_llm_requirements() -> dict[str, Requirement]:
    """What the installed ray asks for under its ``llm`` extra."""
    return _llm_extra(importlib.metadata.requires("ray") or [])


def test_the_gpu_extra_is_ray_llm_at_the_project_ray_pin():
    project = _pyproject()["project"]
    deps = _by_name(project["dependencies"])
    gpu = _by_name(project["optional-dependencies"]["gpu"])
    ray_pin = _exact(deps["ray"])
    assert set(gpu) == {"ray", "vllm"}, gpu
    assert "llm" in gpu["ray"].extras
    assert _exact(gpu["ray"]) == ray_pin
    # the metadata read below is that of the ray the project pins
    assert importlib.metadata.version("ray") == ray_pin


def test_the_gpu_extra_pins_the_vllm_that_ray_llm_requires():
    ray_llm = _ray_llm_requirements()
    assert "vllm" in ray_llm, f"ray {importlib.metadata.version('ray')} lists no vllm for [llm]"
    wanted = _exact(ray_llm["vllm"])
    gpu = _by_name(_pyproject()["project"]["optional-dependencies"]["gpu"])
    assert _exact(gpu["vllm"]) == wanted
    assert VLLM_VERSION == wanted  # the version the backend module says it is written for
    assert wanted == "0.29.0"  # Ray 2.60.0's pin, as the README states


def test_the_metadata_reader_keeps_only_what_the_llm_extra_adds():
    # lines shaped like ray's own Requires-Dist
    kept = _llm_extra(
        [
            'vllm[audio]==0.29.0; extra == "llm"',
            'py-spy>=0.2.0; python_version < "3.0" and extra == "llm"',
            'aiohttp>=3.7; extra == "default"',
            'async-timeout; python_version < "3.0"',
            "click>=7.0",
        ]
    )
    assert set(kept) == {"vllm"}
    assert kept["vllm"].extras == {"audio"} and _exact(kept["vllm"]) == "0.29.0"
    with pytest.raises(AssertionError, match="not one exact pin"):
        _exact(Requirement("vllm>=0.10"))
    with pytest.raises(AssertionError, match="not one exact pin"):
        _exact(Requirement("vllm>=0.29,<0.30"))


def test_the_readme_states_the_vllm_version_of_the_vision_backend():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Vision on a GPU cluster", 1)[1].split("\n## ", 1)[0]
    stated = set(re.findall(r"vLLM (\d+\.\d+\.\d+)", section))
    assert stated == {VLLM_VERSION}, stated
    assert "ray[llm]==2.60.0" in section
