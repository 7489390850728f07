"""The suite every strategy passes: built-in ones and a user-written async generator.

Params in the space; same seed, same sequence; a clean ``aclose()`` mid-run;
pending params honoured; and a resumed history continued, not repeated.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

import aiotune as at
from aiotune.strategies import Bayesian, StrategyLike, suggest_function

SPACE = at.Space(
    x=at.Float(0.0, 1.0),
    n=at.Int(1, 3),
    c=at.Categorical(["a", "b"]),
)  # a 3 x 3 x 2 grid at resolution 3


async def numbered(space: at.Space, history: at.History) -> AsyncIterator[dict[str, Any]]:
    """A user-written strategy: the params of trial k are drawn from a stream seeded by k."""
    while True:
        yield space.sample(np.random.default_rng([7, history.next_number]))


def make(name: str) -> StrategyLike:
    """A fresh strategy of the kind ``name``."""
    if name == "grid":
        return at.Grid(resolution=3)
    if name == "random":
        return at.Random(seed=0)
    if name == "bayesian":
        return Bayesian(seed=0, n_initial=4)
    return numbered


NAMES = ["grid", "random", "bayesian", "user"]
DEDUPLICATING = {"grid", "bayesian"}  # promise never to suggest a point twice


def score(params: dict[str, Any]) -> float:
    return float(params["x"] + params["n"] + (params["c"] == "b"))


def finished(number: int, params: dict[str, Any]) -> at.Trial:
    return at.Trial(number, params, at.TrialStatus.COMPLETE, score(params))


async def pull(
    strategy: StrategyLike, history: at.History, n: int, *, finish: bool
) -> list[dict[str, Any]]:
    """Pull ``n`` params as the orchestrator does; finish each at once, or leave it pending."""
    generator = suggest_function(strategy)(SPACE, history)
    out = []
    try:
        for _ in range(n):
            params = SPACE.validate(await anext(generator))
            number = history.next_number
            history.add_pending(number, params)
            if finish:
                history.record(finished(number, params))
            out.append(params)
    finally:
        await generator.aclose()  # type: ignore[attr-defined]
    return out


def keys(params: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [tuple(p.values()) for p in params]


@pytest.mark.parametrize("name", NAMES)
async def test_params_are_in_the_space(name: str) -> None:
    result = await at.tune(score, SPACE, strategy=make(name), max_trials=8, executor="thread")
    assert len(result.trials) == 8
    for trial in result.trials:
        assert SPACE.validate(trial.params) == trial.params


@pytest.mark.parametrize("name", NAMES)
async def test_same_seed_same_sequence(name: str) -> None:
    runs = [await pull(make(name), at.History(), 7, finish=True) for _ in range(2)]
    assert runs[0] == runs[1]


@pytest.mark.parametrize("name", NAMES)
async def test_aclose_mid_run_is_clean(name: str) -> None:
    history = at.History()
    generator = suggest_function(make(name))(SPACE, history)
    for number in range(5):
        params = await anext(generator)
        history.add_pending(number, params)
        history.record(finished(number, params))
    await generator.aclose()  # type: ignore[attr-defined]
    with pytest.raises(StopAsyncIteration):
        await anext(generator)
    result = await at.tune(score, SPACE, strategy=make(name), max_trials=3, executor="thread")
    assert result.stop_reason == "max_trials reached"


@pytest.mark.parametrize("name", NAMES)
async def test_pending_params_are_honoured(name: str) -> None:
    history = at.History()
    in_flight = await pull(make(name), history, 6, finish=False)
    assert dict(history.pending) == dict(enumerate(in_flight))
    if name in DEDUPLICATING:
        assert len(set(keys(in_flight))) == len(in_flight)
    more = await pull(make(name), history, 3, finish=False)  # a second puller, same history
    if name in DEDUPLICATING:
        assert not set(keys(more)) & set(keys(in_flight))


@pytest.mark.parametrize("name", NAMES)
async def test_resume_continues_rather_than_repeats(name: str) -> None:
    whole = await pull(make(name), at.History(), 10, finish=True)
    first_part = [finished(k, p) for k, p in enumerate(whole[:6])]
    resumed_history = at.History("maximize", first_part)
    assert resumed_history.next_number == 6
    resumed = await pull(make(name), resumed_history, 4, finish=True)
    if name in DEDUPLICATING:
        assert not set(keys(resumed)) & set(keys(whole[:6]))
    if name == "grid":
        assert resumed == whole[6:]  # the grid walks on from where it stopped
    if name in ("random", "user"):
        assert resumed == whole[6:]  # trial k gets the params of number k, as uninterrupted
