"""Executable facts: every mathematical statement the lab teaches, with a numerical check.

A fact is registered with a name, a one-line statement, the topic it belongs to, and a check that
computes both sides of the statement and returns the measured error (max absolute or relative
difference, as the check documents); the fact holds when error <= tol. `nnlab facts` runs them all,
and so does the test suite.

    @fact("softmax-shift", "softmax(x + c) = softmax(x) for every constant c", topic="numpy-engine")
    def _check() -> float: ...
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from nnlab.errors import NNLabError

TOPICS = (
    "numpy-engine",
    "convolution",
    "pytorch-models",
    "segmentation",
    "diffusion",
    "autoencoder",
    "ocr",
    "eeg",
)

# modules that register facts; a new topic module is added here
FACT_MODULES = (
    "nnlab.facts.basics",
    "nnlab.facts.numpy_engine",
    "nnlab.facts.convolution",
    "nnlab.facts.segmentation",
    "nnlab.facts.diffusion",
    "nnlab.facts.compression",
    "nnlab.facts.course",
    "nnlab.facts.eeg",
)


@dataclass(frozen=True)
class Fact:
    name: str
    statement: str
    topic: str
    check: Callable[[], float]
    tol: float


@dataclass(frozen=True)
class FactResult:
    fact: Fact
    error: float
    seconds: float

    @property
    def passed(self) -> bool:
        return self.error <= self.fact.tol  # False for NaN too


FACTS: dict[str, Fact] = {}


def fact(name: str, statement: str, topic: str, tol: float = 1e-10):
    """Register the decorated zero-argument function as the check of a fact."""
    if topic not in TOPICS:
        raise ValueError(f"fact {name}: unknown topic {topic!r} (one of {TOPICS})")

    def register(check: Callable[[], float]) -> Callable[[], float]:
        if name in FACTS:
            raise ValueError(f"fact {name!r} registered twice")
        FACTS[name] = Fact(name, statement, topic, check, tol)
        return check

    return register


def all_facts() -> dict[str, Fact]:
    for module in FACT_MODULES:
        importlib.import_module(module)
    return FACTS


def select(topic: str | None = None, name: str | None = None) -> list[Fact]:
    facts = list(all_facts().values())
    if topic is not None and name is not None:
        other = next((f.topic for f in facts if f.name == name and f.topic != topic), None)
        if other is not None and topic in TOPICS:
            raise NNLabError(f"fact '{name}' is in topic '{other}', not '{topic}'")
    if topic is not None:
        if topic not in TOPICS:
            raise NNLabError(f"unknown topic '{topic}' (one of {', '.join(TOPICS)})")
        facts = [f for f in facts if f.topic == topic]
    if name is not None:
        facts = [f for f in facts if f.name == name]
        if not facts:
            raise NNLabError(f"no fact named '{name}' (see `nnlab facts --list`)")
    return facts


def run_fact(f: Fact) -> FactResult:
    t0 = time.perf_counter()
    error = float(f.check())
    return FactResult(f, error, time.perf_counter() - t0)
