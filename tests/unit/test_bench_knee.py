"""The knee's step run: the ladder, then refinement steps between the last rate that held and the
first that did not (bench/openloop.py), against a payment whose latency is set by the rate."""

from __future__ import annotations

import asyncio

import pytest

from bench import openloop
from bench.openloop import Run, Steps, between


def test_a_refinement_tries_the_geometric_middle_to_a_tenth():
    assert between(19.3, 25.1) == 22.0
    assert between(4.0, 5.2) == 4.6


@pytest.mark.parametrize(
    ("capacity", "knee", "tried"),
    [
        # held at 19.3, missed at 25.1; then 22.0 held and 23.5 missed
        (23.0, 22.0, [4.0, 5.2, 6.8, 8.8, 11.4, 14.9, 19.3, 25.1, 22.0, 23.5]),
        # the ladder's last rate that held is the knee when every refinement misses
        (19.5, 19.3, [4.0, 5.2, 6.8, 8.8, 11.4, 14.9, 19.3, 25.1, 22.0, 20.6]),
        (3.0, 0.0, [4.0]),  # the first step missed: nothing to refine
    ],
)
def test_the_knee_is_the_highest_rate_that_held_ladder_and_refinements_alike(monkeypatch, capacity, knee, tried):
    async def at_rate(name: str, payment: object, rate: float, seconds: float, seed: int = 1) -> Run:
        run = Run.named(name, rate)
        latency = 0.1 if rate <= capacity else 0.9
        run.init.seconds.append(latency)
        run.confirm.seconds.append(latency)
        return run

    monkeypatch.setattr(openloop, "open_loop", at_rate)
    found, runs = asyncio.run(openloop.step("ours", object(), Steps(4.0, 1.3, 1, 400.0)))  # type: ignore[arg-type]
    assert found == knee
    assert [r.rate for r in runs] == tried


def test_without_refinements_the_ladder_alone_gives_the_knee(monkeypatch):
    async def at_rate(name: str, payment: object, rate: float, seconds: float, seed: int = 1) -> Run:
        run = Run.named(name, rate)
        run.init.seconds.append(0.1 if rate < 20 else 0.9)
        run.confirm.seconds.append(0.1)
        return run

    monkeypatch.setattr(openloop, "open_loop", at_rate)
    found, runs = asyncio.run(openloop.step("ours", object(), Steps(4.0, 1.3, 1, 400.0, refinements=0)))  # type: ignore[arg-type]
    assert (found, runs[-1].rate) == (19.3, 25.1)
