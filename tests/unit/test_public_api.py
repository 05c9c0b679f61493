"""The package's curated public API: every name resolves, and importing the package is light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import aio_ray


def test_every_exported_name_resolves() -> None:
    for name in aio_ray.__all__:
        assert getattr(aio_ray, name) is not None, name
    assert set(aio_ray.__all__) <= set(dir(aio_ray))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        aio_ray.nope  # noqa: B018


def test_importing_the_package_loads_neither_ray_nor_numba() -> None:
    code = (
        "import sys, aio_ray; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'numba', 'torch')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
