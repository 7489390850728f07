"""Several objectives and constraints: the contract, Pareto fronts, hypervolume, journal, resume."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aiotune as at
from aiotune.strategies.bayesian import BayesianCore
from aiotune.trial import dominates, hypervolume, pareto_front

XY = at.Space(x=at.Float(0.0, 1.0), y=at.Float(0.0, 1.0))
BOTH = ("maximize", "minimize")


def two(params: dict[str, Any]) -> tuple[float, float]:
    """Maximise x, minimise y + x²: a front along y = 0."""
    return params["x"], params["y"] + params["x"] ** 2


def done(number: int, *scores: float, constraints: tuple[float, ...] | None = None) -> at.Trial:
    return at.Trial(
        number=number,
        params={},
        status=at.TrialStatus.COMPLETE,
        scores=scores,
        constraints=constraints,
    )


# -- records ----------------------------------------------------------------------------


def test_scores_is_always_a_tuple_and_score_the_single_float() -> None:
    single = at.Trial(number=0, params={}, status=at.TrialStatus.COMPLETE, score=0.5)
    assert single.scores == (0.5,)
    assert single.score == 0.5
    assert done(1, 0.25).score == 0.25
    multi = done(2, 1.0, 2.0)
    assert multi.scores == (1.0, 2.0)
    assert multi.score is None
    failed = at.Trial(number=3, params={}, status=at.TrialStatus.FAILED)
    assert failed.scores == ()
    assert failed.score is None


def test_feasible_when_every_constraint_is_at_most_zero() -> None:
    assert done(0, 1.0).feasible  # no constraints
    assert done(0, 1.0, constraints=(0.0, -3.0)).feasible
    assert not done(0, 1.0, constraints=(-1.0, 1e-9)).feasible


# -- domination, fronts, hypervolume ----------------------------------------------------


def test_domination_with_ties_and_mixed_directions() -> None:
    assert dominates((2.0, 1.0), (1.0, 1.0), BOTH)  # better in one, equal in the other
    assert not dominates((1.0, 1.0), (1.0, 1.0), BOTH)  # equal: neither dominates
    assert not dominates((2.0, 2.0), (1.0, 1.0), BOTH)  # a trade-off
    assert dominates((2.0, 0.0), (1.0, 1.0), BOTH)
    assert dominates((1.0, 1.0), (2.0, 0.0), ("minimize", "maximize"))


def test_pareto_front_keeps_ties_and_drops_dominated_and_infeasible() -> None:
    trials = [
        done(0, 1.0, 1.0),
        done(1, 1.0, 1.0),  # a tie with 0: both stay
        done(2, 0.5, 1.0),  # dominated by 0 and 1
        done(3, 2.0, 3.0),  # a trade-off: stays
        done(4, 9.0, 0.0, constraints=(1.0,)),  # would dominate everything, but infeasible
        at.Trial(number=5, params={}, status=at.TrialStatus.FAILED),
    ]
    front = pareto_front(trials, BOTH)
    assert [t.number for t in front] == [0, 1, 3]


def test_pareto_front_of_one_objective_is_the_best_and_its_ties() -> None:
    trials = [done(0, 1.0), done(1, 3.0), done(2, 3.0), done(3, 5.0, constraints=(2.0,))]
    result = at.TuningResult(trials=tuple(trials), direction="maximize")
    assert [t.number for t in result.pareto_front] == [1, 2]
    assert result.best.number == 1  # the infeasible 5.0 is not the best


def test_hypervolume_two_objectives_exact() -> None:
    points = [(1.0, 3.0), (2.0, 2.0), (3.0, 1.0), (2.5, 2.5)]
    # Minimising both, reference (4, 4): three staircase steps.
    assert hypervolume(points, (4.0, 4.0), ("minimize", "minimize")) == pytest.approx(6.0)
    # Points beyond the reference add nothing.
    assert hypervolume([(5.0, 0.0)], (4.0, 4.0), ("minimize", "minimize")) == 0.0
    # Maximising the first objective: the same shape mirrored.
    mirrored = [(-x, y) for x, y in points]
    assert hypervolume(mirrored, (-4.0, 4.0), BOTH) == pytest.approx(6.0)


def _counted_volume(points: list[tuple[int, ...]], reference: tuple[int, ...]) -> int:
    """Unit cells of the integer grid dominated by some point (minimisation), by counting."""
    cells = itertools.product(*(range(r) for r in reference))
    return sum(any(all(p[k] <= c[k] for k in range(len(c))) for p in points) for c in cells)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hypervolume_three_objectives_matches_counting(seed: int) -> None:
    import random

    rng = random.Random(seed)
    points = [tuple(rng.randrange(0, 8) for _ in range(3)) for _ in range(12)]
    reference = (8, 8, 8)
    expected = _counted_volume(points, reference)
    directions = ("minimize", "minimize", "minimize")
    assert hypervolume(points, reference, directions) == pytest.approx(expected)
    # The same problem with the second objective maximised (negated values).
    flipped = [(a, -b, c) for a, b, c in points]
    mixed = ("minimize", "maximize", "minimize")
    assert hypervolume(flipped, (8, -8, 8), mixed) == pytest.approx(expected)


# -- the contract through tune ----------------------------------------------------------


async def test_multi_objective_study_has_a_front_and_no_single_best() -> None:
    result = await at.tune(
        two, XY, strategy=at.Random(seed=1), max_trials=20, direction=BOTH, executor="thread"
    )
    assert result.direction == BOTH
    assert all(t.is_complete and len(t.scores) == 2 and t.score is None for t in result.trials)
    with pytest.raises(at.TuningError, match="pareto_front"):
        _ = result.best
    front = result.pareto_front
    assert front
    for t in front:
        assert not any(dominates(o.scores, t.scores, BOTH) for o in result.trials)
    for t in result.trials:
        if t not in front:
            assert any(dominates(f.scores, t.scores, BOTH) for f in front)
    volume = result.hypervolume((0.0, 2.0))
    assert volume == pytest.approx(hypervolume([t.scores for t in front], (0.0, 2.0), BOTH))
    assert 0.0 < volume <= 2.0
    records = result.to_records()
    assert records[0]["scores.0"] == result.trials[0].scores[0]


async def test_wrong_length_and_non_finite_scores_fail_the_trial() -> None:
    def objective(params: dict[str, Any]) -> Any:
        if params["x"] < 0.3:
            return (1.0, 2.0, 3.0)
        if params["x"] < 0.6:
            return (math.nan, 1.0)
        return (params["x"], params["y"])

    result = await at.tune(
        objective, XY, strategy=at.Random(seed=2), max_trials=30, direction=BOTH, executor="thread"
    )
    for t in result.trials:
        if t.params["x"] < 0.3:
            assert t.status is at.TrialStatus.FAILED
            assert t.error is not None
            assert "3 score(s)" in t.error.message
            assert "2 numbers" in t.error.message
        elif t.params["x"] < 0.6:
            assert t.status is at.TrialStatus.FAILED
            assert t.error is not None
            assert "nan" in t.error.message
        else:
            assert t.is_complete


async def test_single_objective_refuses_a_sequence_of_two() -> None:
    result = await at.tune(two, XY, strategy=at.Random(seed=0), max_trials=2, executor="thread")
    assert all(t.status is at.TrialStatus.FAILED for t in result.trials)
    assert "expected one number" in str(result.trials[0].error)


async def test_outcome_constraints_and_all_infeasible_study() -> None:
    def objective(params: dict[str, Any]) -> at.Outcome:
        return at.Outcome(params["x"], constraints=(1.0 - params["y"],))  # feasible iff y >= 1

    result = await at.tune(
        objective, XY, strategy=at.Random(seed=3), max_trials=8, executor="thread"
    )
    assert all(t.is_complete and not t.feasible for t in result.trials)
    assert all(t.constraints == (1.0 - t.params["y"],) for t in result.trials)
    with pytest.raises(at.NoCompleteTrialError, match="feasible"):
        _ = result.best
    assert result.pareto_front == ()


async def test_constraints_function_runs_in_the_parent_after_the_objective() -> None:
    seen: list[tuple[dict[str, Any], Any]] = []

    def limit(params: dict[str, Any], score: Any) -> list[float]:
        seen.append((params, score))
        return [params["x"] - 0.5]  # feasible iff x <= 0.5

    result = await at.tune(
        objectives_sum, XY, strategy=at.Random(seed=4), max_trials=20, constraints=limit
    )
    assert len(seen) == 20
    assert all(isinstance(score, float) for _, score in seen)
    assert result.best.params["x"] <= 0.5
    feasible = [t for t in result.trials if t.feasible]
    assert result.best.score == max(t.score for t in feasible if t.score is not None)
    assert any(t.score is not None and t.score > result.best.score for t in result.trials)


def objectives_sum(params: dict[str, Any]) -> float:
    return float(params["x"] + params["y"])


async def test_outcome_and_function_constraints_combine_and_a_raising_function_fails() -> None:
    def objective(params: dict[str, Any]) -> at.Outcome:
        return at.Outcome((params["x"], params["y"]), constraints=[-1.0])

    def limit(params: dict[str, Any], score: Any) -> tuple[float, ...]:
        assert isinstance(score, tuple)
        assert len(score) == 2
        if params["x"] > 0.8:
            raise RuntimeError("cannot measure")
        return (score[1] - 0.5,)

    result = await at.tune(
        objective,
        XY,
        strategy=at.Random(seed=5),
        max_trials=20,
        direction=("maximize", "maximize"),
        constraints=limit,
        executor="thread",
    )
    for t in result.trials:
        if t.params["x"] > 0.8:
            assert t.status is at.TrialStatus.FAILED
            assert t.error is not None
            assert "constraints" in t.error.message
            assert "cannot measure" in t.error.message
        else:
            assert t.constraints == (-1.0, t.params["y"] - 0.5)
    assert all(t.params["y"] <= 0.5 for t in result.pareto_front)


def test_bad_directions_and_constraints_are_configuration_errors() -> None:
    for bad in [(), ("maximize", "sideways"), ["up"], 3]:
        with pytest.raises(at.ConfigurationError, match="direction"):
            at.Tuner(two, XY, direction=bad)  # type: ignore[arg-type]
    with pytest.raises(at.ConfigurationError, match="constraints"):
        at.Tuner(two, XY, constraints=3)  # type: ignore[arg-type]
    with pytest.raises(at.ConfigurationError, match="pruner"):
        at.Tuner(two, XY, direction=BOTH, pruner=at.MedianPruner())
    assert at.Tuner(two, XY, direction=["minimize"]).direction == "minimize"


# -- ask and tell -----------------------------------------------------------------------


async def test_ask_tell_takes_sequences_and_outcomes() -> None:
    async with at.Study(XY, strategy=at.Random(seed=0), direction=BOTH) as study:
        a = await study.ask()
        b = await study.ask()
        c = await study.ask()
        assert a is not None
        assert b is not None
        assert c is not None
        told = await study.tell(a.number, [1.0, 2.0])
        assert told.scores == (1.0, 2.0)
        assert told.is_complete
        told = await study.tell(b.number, at.Outcome((2.0, 1.0), constraints=(0.5,)))
        assert told.is_complete
        assert not told.feasible
        told = await study.tell(c.number, 1.0)
        assert told.status is at.TrialStatus.FAILED
    assert [t.number for t in study.result.pareto_front] == [a.number]
    assert study.history.best is None


async def test_history_best_skips_infeasible_trials() -> None:
    async with at.Study(XY, strategy=at.Random(seed=0), direction="minimize") as study:
        a = await study.ask()
        b = await study.ask()
        assert a is not None
        assert b is not None
        await study.tell(a.number, at.Outcome(5.0, constraints=(0.0,)))
        await study.tell(b.number, at.Outcome(1.0, constraints=(0.1,)))
        assert study.history.best is not None
        assert study.history.best.number == a.number


# -- journal and resume -----------------------------------------------------------------


async def test_journal_round_trip_and_resume_of_a_multi_objective_study(tmp_path: Path) -> None:
    path = tmp_path / "mo.jsonl"

    def objective(params: dict[str, Any]) -> at.Outcome:
        return at.Outcome(two(params), constraints=(params["y"] - 0.9,))

    first = await at.tune(
        objective,
        XY,
        strategy=at.Random(seed=6),
        max_trials=6,
        direction=BOTH,
        observers=[at.JsonlWriter(path)],
        executor="thread",
    )
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["direction"] == list(BOTH)
    assert all(len(line["scores"]) == 2 and len(line["constraints"]) == 1 for line in lines[1:])
    loaded = at.load(path)
    assert loaded.direction == BOTH
    assert [t.scores for t in loaded.trials] == [t.scores for t in first.trials]
    assert [t.constraints for t in loaded.trials] == [t.constraints for t in first.trials]
    assert loaded.pareto_front == first.pareto_front

    second = await at.tune(
        objective,
        XY,
        strategy=at.Random(seed=6),
        max_trials=10,
        direction=BOTH,
        observers=[at.JsonlWriter(path)],
        resume=path,
        executor="thread",
    )
    assert len(second.trials) == 10
    assert second.trials[:6] == loaded.trials
    with pytest.raises(at.JournalError, match="resume"):
        await at.tune(
            objective,
            XY,
            max_trials=12,
            direction=("maximize", "maximize"),
            resume=path,
            executor="thread",
        )
    with pytest.raises(at.JournalError, match="resume"):
        await at.tune(objectives_sum, XY, max_trials=12, resume=path, executor="thread")


def test_a_journal_written_before_scores_and_constraints_still_loads(tmp_path: Path) -> None:
    space = XY.to_dict()
    header = {
        "kind": "header",
        "format": 1,
        "aiotune": "0.1.0",
        "space": space,
        "fingerprint": XY.fingerprint,
        "direction": "minimize",
        "strategy": "Random(seed=0)",
        "created_at": 1.0,
    }
    trial = {
        "kind": "trial",
        "number": 0,
        "params": {"x": 0.5, "y": 0.25},
        "status": "complete",
        "score": 0.75,
        "intermediate": [],
        "error": None,
        "previous_errors": [],
        "attempts": 1,
        "started_at": 1.0,
        "finished_at": 2.0,
        "duration": 1.0,
        "worker": "host:1",
    }
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps(header) + "\n" + json.dumps(trial) + "\n")
    result = at.load(path)
    assert result.direction == "minimize"
    (only,) = result.trials
    assert only.scores == (0.75,)
    assert only.constraints is None
    assert only.feasible
    assert result.best.number == 0


# -- observers and pruners --------------------------------------------------------------


async def _tell_all(patience: int, scores: list[tuple[float, float]]) -> str | None:
    study = at.Study(
        XY, strategy=at.Random(seed=0), direction=BOTH, observers=[at.Patience(patience)]
    )
    async with study:
        for score in scores:
            asked = await study.ask()
            if asked is None:
                break
            await study.tell(asked.number, score)
            await _settle()
    return study.stop_reason


async def test_patience_counts_trials_that_do_not_join_the_front() -> None:
    # (1,1) joins; a tie does not; (2,2) is a trade-off and joins; the tie again does not.
    assert await _tell_all(2, [(1.0, 1.0), (1.0, 1.0), (2.0, 2.0), (1.0, 1.0)]) is None
    # (1,1) joins; the tie and the dominated (0.5, 2) do not: patience 2 runs out.
    reason = await _tell_all(2, [(1.0, 1.0), (1.0, 1.0), (0.5, 2.0), (3.0, 0.0)])
    assert reason is not None
    assert "patience" in reason


async def _settle() -> None:
    import anyio

    for _ in range(5):
        await anyio.lowlevel.checkpoint()


async def test_target_refuses_a_multi_objective_study() -> None:
    with pytest.raises(at.ConfigurationError, match="Target"):
        await at.tune(
            two,
            XY,
            strategy=at.Random(seed=0),
            max_trials=2,
            direction=BOTH,
            observers=[at.Target(1.0)],
            executor="thread",
        )


async def test_target_and_patience_skip_infeasible_trials() -> None:
    def objective(params: dict[str, Any]) -> at.Outcome:
        return at.Outcome(10.0, constraints=(1.0,))  # always above target, never feasible

    result = await at.tune(
        objective,
        XY,
        strategy=at.Random(seed=0),
        max_trials=6,
        observers=[at.Target(1.0)],
        concurrency=1,
        executor="thread",
    )
    assert result.stop_reason == "max_trials reached"
    assert len(result.trials) == 6
    result = await at.tune(
        objective,
        XY,
        strategy=at.Random(seed=0),
        max_trials=10,
        observers=[at.Patience(3)],
        concurrency=1,
        executor="thread",
    )
    assert result.stop_reason is not None
    assert "patience" in result.stop_reason
    assert 3 <= len(result.trials) < 10  # the stop lands after the observer sees trial 3


# -- Bayesian with constraints and several objectives -----------------------------------


def _run_core(
    core: BayesianCore,
    evaluate: Any,
    n: int,
) -> list[at.Trial]:
    trials: list[at.Trial] = []
    for number in range(n):
        params = core.ask(number, {})
        assert params is not None
        trial = evaluate(number, params)
        core.tell(trial)
        trials.append(trial)
    return trials


def _zdt1(number: int, params: dict[str, Any]) -> at.Trial:
    f1 = params["x"]
    g = 1 + 9 * params["y"]
    return done_with(number, params, (f1, g * (1 - math.sqrt(f1 / g))))


def done_with(
    number: int,
    params: dict[str, Any],
    scores: tuple[float, ...],
    constraints: tuple[float, ...] | None = None,
) -> at.Trial:
    return at.Trial(
        number=number,
        params=params,
        status=at.TrialStatus.COMPLETE,
        scores=scores,
        constraints=constraints,
    )


@pytest.mark.slow
def test_bayesian_multi_objective_beats_random_hypervolume() -> None:
    directions = ("minimize", "minimize")
    reference = (1.1, 11.0)
    volumes = []
    for seed in (0, 1):
        core = BayesianCore(XY, seed, direction=directions, n_initial=8)
        trials = _run_core(core, _zdt1, 30)
        bayes = hypervolume([t.scores for t in trials], reference, directions)
        rng = np.random.default_rng(seed)
        randoms = [_zdt1(i, XY.sample(rng)) for i in range(30)]
        volumes.append((bayes, hypervolume([t.scores for t in randoms], reference, directions)))
    assert sum(b for b, _ in volumes) > sum(r for _, r in volumes)


def test_bayesian_multi_objective_is_deterministic_and_pending_aware() -> None:
    directions = ("minimize", "maximize")

    def asks() -> list[dict[str, Any]]:
        core = BayesianCore(XY, 7, direction=directions, n_initial=5)
        _run_core(core, _zdt1, 8)
        first = core.ask(8, {})
        assert first is not None
        second = core.ask(9, {8: first})
        assert second is not None
        return [first, second]

    one, two_ = asks(), asks()
    assert one == two_
    assert one[0] != one[1]


@pytest.mark.slow
def test_bayesian_finds_the_feasible_region_from_an_infeasible_start() -> None:
    # Maximise x + y subject to x >= 0.85 and y >= 0.85: a corner Sobol rarely hits.
    def evaluate(number: int, params: dict[str, Any]) -> at.Trial:
        return done_with(
            number,
            params,
            (params["x"] + params["y"],),
            (0.85 - params["x"], 0.85 - params["y"]),
        )

    core = BayesianCore(XY, 3, direction="maximize", n_initial=5)
    trials = _run_core(core, evaluate, 25)
    late = trials[10:]
    assert sum(t.feasible for t in late) >= len(late) // 2  # random: about 2 % feasible
    result = at.TuningResult(trials=tuple(trials), direction="maximize")
    assert result.best.feasible
    assert result.best.score is not None
    assert result.best.score > 1.8


async def test_bayesian_runs_a_constrained_multi_objective_study() -> None:
    def objective(params: dict[str, Any]) -> at.Outcome:
        return at.Outcome(two(params), constraints=(params["x"] - 0.7,))

    result = await at.tune(
        objective,
        XY,
        strategy=at.Bayesian(seed=0, n_initial=4),
        max_trials=10,
        direction=BOTH,
        executor="thread",
        concurrency=2,
    )
    assert len(result.trials) == 10
    assert all(t.is_complete for t in result.trials)
    assert all(t.params["x"] <= 0.7 for t in result.pareto_front)
    assert len({tuple(sorted(t.params.items())) for t in result.trials}) == 10


async def test_batched_trials_keep_their_scores_and_constraints() -> None:
    def objective(params: dict[str, Any]) -> at.Outcome:
        return at.Outcome(two(params), constraints=(params["y"] - 0.5,))

    result = await at.tune(
        objective,
        XY,
        strategy=at.Random(seed=8),
        max_trials=8,
        direction=BOTH,
        executor="thread",
        concurrency=2,
        batch=4,
    )
    assert all(t.is_complete for t in result.trials)
    assert all(t.scores == two(t.params) for t in result.trials)
    assert all(t.constraints == (t.params["y"] - 0.5,) for t in result.trials)
