"""The suite every strategy passes: built-in ones and a user-written async generator.

Params in the space; same seed, same sequence; a clean ``aclose()`` mid-run;
pending params honoured; and a resumed history continued, not repeated. Each
test runs on a flat space and on a conditional one (a tree).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

import aiotune as at
from aiotune.strategies import Bayesian, StrategyLike, suggest_function

FLAT = at.Space(
    x=at.Float(0.0, 1.0),
    n=at.Int(1, 3),
    c=at.Categorical(["a", "b"]),
)  # a 3 x 3 x 2 grid at resolution 3
TREE = at.Space(
    c=at.Categorical(["a", "b", "c"]),
    x=at.Float(0.0, 1.0, when={"c": ["a", "b"]}),
    n=at.Int(1, 3, when={"c": "a"}),
    deep=at.Bool(when={"n": [2, 3]}),
    y=at.Float(0.0, 1.0, log=False, step=0.25, when={"deep": True}),
)  # at resolution 3: a: 3 x (1 + 2 x (1 + 3)) = 27, b: 3, c: 1 -- 31 points
SPACES = {"flat": FLAT, "tree": TREE}


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


NAMES = [(name, space) for name in ("grid", "random", "bayesian", "user") for space in SPACES]
DEDUPLICATING = {"grid", "bayesian"}  # promise never to suggest a point twice


def score(params: dict[str, Any]) -> float:
    return float(
        params.get("x", 0.5) + params.get("n", 0) + (params["c"] == "b") + params.get("y", 0)
    )


def finished(number: int, params: dict[str, Any]) -> at.Trial:
    return at.Trial(number, params, at.TrialStatus.COMPLETE, score(params))


async def pull(
    strategy: StrategyLike, history: at.History, n: int, *, finish: bool, space: str
) -> list[dict[str, Any]]:
    """Pull ``n`` params as the orchestrator does; finish each at once, or leave it pending."""
    generator = suggest_function(strategy)(SPACES[space], history)
    out = []
    try:
        for _ in range(n):
            params = SPACES[space].validate(await anext(generator))
            number = history.next_number
            history.add_pending(number, params)
            if finish:
                history.record(finished(number, params))
            out.append(params)
    finally:
        await generator.aclose()  # type: ignore[attr-defined]
    return out


def keys(params: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [tuple(p.items()) for p in params]


def test_the_tree_grid_has_31_points() -> None:
    assert TREE.grid_size(3) == 31 == len(list(TREE.grid(3)))


@pytest.mark.parametrize(("name", "space"), NAMES)
async def test_params_are_in_the_space(name: str, space: str) -> None:
    tree = SPACES[space]
    result = await at.tune(score, tree, strategy=make(name), max_trials=8, executor="thread")
    assert len(result.trials) == 8
    for trial in result.trials:
        assert tree.validate(trial.params) == trial.params


@pytest.mark.parametrize(("name", "space"), NAMES)
async def test_same_seed_same_sequence(name: str, space: str) -> None:
    runs = [await pull(make(name), at.History(), 7, finish=True, space=space) for _ in range(2)]
    assert runs[0] == runs[1]


@pytest.mark.parametrize(("name", "space"), NAMES)
async def test_aclose_mid_run_is_clean(name: str, space: str) -> None:
    history = at.History()
    generator = suggest_function(make(name))(SPACES[space], history)
    for number in range(5):
        params = await anext(generator)
        history.add_pending(number, params)
        history.record(finished(number, params))
    await generator.aclose()  # type: ignore[attr-defined]
    with pytest.raises(StopAsyncIteration):
        await anext(generator)
    result = await at.tune(
        score, SPACES[space], strategy=make(name), max_trials=3, executor="thread"
    )
    assert result.stop_reason == "max_trials reached"


@pytest.mark.parametrize(("name", "space"), NAMES)
async def test_pending_params_are_honoured(name: str, space: str) -> None:
    history = at.History()
    in_flight = await pull(make(name), history, 6, finish=False, space=space)
    assert dict(history.pending) == dict(enumerate(in_flight))
    if name in DEDUPLICATING:
        assert len(set(keys(in_flight))) == len(in_flight)
    # A second puller, same history:
    more = await pull(make(name), history, 3, finish=False, space=space)
    if name in DEDUPLICATING:
        assert not set(keys(more)) & set(keys(in_flight))


@pytest.mark.parametrize(("name", "space"), NAMES)
async def test_resume_continues_rather_than_repeats(name: str, space: str) -> None:
    whole = await pull(make(name), at.History(), 10, finish=True, space=space)
    first_part = [finished(k, p) for k, p in enumerate(whole[:6])]
    resumed_history = at.History("maximize", first_part)
    assert resumed_history.next_number == 6
    resumed = await pull(make(name), resumed_history, 4, finish=True, space=space)
    if name in DEDUPLICATING:
        assert not set(keys(resumed)) & set(keys(whole[:6]))
    if name == "grid":
        assert resumed == whole[6:]  # the grid walks on from where it stopped
    if name in ("random", "user"):
        assert resumed == whole[6:]  # trial k gets the params of number k, as uninterrupted
