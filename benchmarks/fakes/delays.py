"""Scripted delays: a fixed number of milliseconds or a seeded distribution.

A delay is ``{dist: normal, mean, std, min}`` or ``{dist: uniform, low, high}`` (or a plain number of
ms), drawn from a generator the caller seeds, so a benchmark run is reproducible.
"""

from __future__ import annotations

import random
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class NormalDelay(BaseModel):
    """A normally distributed delay in ms, clipped below at ``min``."""

    model_config = ConfigDict(extra="forbid")
    dist: Literal["normal"]
    mean: float = Field(ge=0)
    std: float = Field(0.0, ge=0)
    min: float = Field(0.0, ge=0)


class UniformDelay(BaseModel):
    """A delay in ms drawn uniformly from ``[low, high]``."""

    model_config = ConfigDict(extra="forbid")
    dist: Literal["uniform"]
    low: float = Field(ge=0)
    high: float = Field(ge=0)


Delay = Annotated[float, Field(ge=0)] | NormalDelay | UniformDelay


def sample_delay(spec: Delay, rng: random.Random) -> float:
    """Draw one delay in milliseconds from ``spec`` (a fixed number or a distribution)."""
    if isinstance(spec, NormalDelay):
        return max(spec.min, rng.gauss(spec.mean, spec.std))
    if isinstance(spec, UniformDelay):
        low, high = sorted((spec.low, spec.high))
        return rng.uniform(low, high)
    return float(spec)


def mean_delay(spec: Delay) -> float:
    """The expected delay of ``spec`` in ms (ignoring clipping)."""
    if isinstance(spec, NormalDelay):
        return spec.mean
    if isinstance(spec, UniformDelay):
        return (spec.low + spec.high) / 2
    return float(spec)
