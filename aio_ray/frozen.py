"""The base of every configuration model (strict: unknown fields are errors; immutable;
hashable) and :func:`config_id`, the stable id a run is reproduced and cached by."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict

__all__ = ["Frozen", "config_id"]


class Frozen(BaseModel):
    """Base of all configuration models: strict, immutable, hashable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def config_id(cfg: BaseModel) -> str:
    """A stable 12-hex-digit id of a configuration (sha256 of its canonical JSON)."""
    blob = json.dumps(cfg.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
