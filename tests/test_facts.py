"""Every registered fact holds; a false statement is reported as failing."""

from __future__ import annotations

import pytest

from nnlab.facts import FACTS, TOPICS, all_facts, fact, run_fact


@pytest.mark.parametrize("name", sorted(all_facts()))
def test_fact_holds(name):
    f = all_facts()[name]
    assert f.topic in TOPICS and f.statement
    result = run_fact(f)
    assert result.passed, f"{name}: error {result.error:.3e} > tolerance {f.tol:.0e}"


def test_a_false_fact_fails(monkeypatch):
    monkeypatch.setattr("nnlab.facts.FACTS", dict(FACTS))

    @fact("one-equals-two", "1 = 2", topic="numpy-engine", tol=1e-12)
    def _wrong() -> float:
        return abs(1.0 - 2.0)

    import nnlab.facts

    assert not run_fact(nnlab.facts.FACTS["one-equals-two"]).passed

    @fact("nan-is-not-a-pass", "NaN error never passes", topic="numpy-engine")
    def _nan() -> float:
        return float("nan")

    assert not run_fact(nnlab.facts.FACTS["nan-is-not-a-pass"]).passed
    with pytest.raises(ValueError, match="unknown topic"):
        fact("x", "x", topic="astrology")
