"""Pruners: MedianPruner and ASHA decisions on hand-made curves, and end to end."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aiotune as at
from _asha_reference import AshaReference
from aiotune.errors import ConfigurationError
from aiotune.execution.inbox import ReportInbox
from aiotune.pruning import ASHA, ASHAState, MedianPruner, MedianState, Pruner, PrunerState
from aiotune.trial import Direction, Trial, TrialStatus

X = at.Space(x=at.Float(0.0, 1.0))


def ended(
    number: int, curve: Mapping[int, float], status: TrialStatus = TrialStatus.COMPLETE
) -> Trial:
    """The record of a trial that reported ``curve`` and ended with ``status``."""
    last = curve[max(curve)] if curve else None
    score = last if status in (TrialStatus.COMPLETE, TrialStatus.PRUNED) else None
    return Trial(number=number, params={}, status=status, score=score, intermediate=dict(curve))


def feed(state: PrunerState, number: int, curve: Mapping[int, float]) -> dict[int, bool]:
    """Report ``curve`` step by step (until pruned); return each step's decision."""
    decisions: dict[int, bool] = {}
    for step, value in sorted(curve.items()):
        decisions[step] = state.report(number, step, value)
        if decisions[step]:
            break
    return decisions


def flip(direction: Direction, value: float) -> float:
    """``value`` written for ``direction``: the same ranking whichever way is better."""
    return value if direction == "maximize" else -value


# -- the protocol -------------------------------------------------------------------------


def test_built_in_pruners_follow_the_protocol_and_show_their_settings() -> None:
    for pruner in (MedianPruner(), ASHA()):
        assert isinstance(pruner, Pruner)
        assert isinstance(pruner.bind("maximize"), PrunerState)
    assert repr(MedianPruner()) == "MedianPruner(warmup_steps=0, min_trials=5)"
    assert repr(ASHA(7)) == "ASHA(min_resource=7, reduction_factor=3, max_resource=None)"


def test_each_bind_starts_a_fresh_study() -> None:
    pruner = MedianPruner(min_trials=1)
    first = pruner.bind("maximize")
    first.report(0, 0, 1.0)
    second = pruner.bind("maximize")
    assert second.report(1, 0, 0.0) is False  # the first study's trial is not evidence here
    assert first.report(1, 0, 0.0) is True


@pytest.mark.parametrize(
    ("make", "argument"),
    [
        (lambda: MedianPruner(warmup_steps=-1), "warmup_steps"),
        (lambda: MedianPruner(warmup_steps=1.5), "warmup_steps"),  # type: ignore[arg-type]
        (lambda: MedianPruner(warmup_steps=True), "warmup_steps"),
        (lambda: MedianPruner(min_trials=0), "min_trials"),
        (lambda: MedianPruner(min_trials="5"), "min_trials"),  # type: ignore[arg-type]
        (lambda: ASHA(min_resource=0), "min_resource"),
        (lambda: ASHA(min_resource=1.0), "min_resource"),  # type: ignore[arg-type]
        (lambda: ASHA(reduction_factor=1), "reduction_factor"),
        (lambda: ASHA(reduction_factor=2.5), "reduction_factor"),  # type: ignore[arg-type]
        (lambda: ASHA(max_resource=0), "max_resource"),
        (lambda: ASHA(min_resource=3, max_resource=3), "max_resource"),
        (lambda: ASHA(max_resource=False), "max_resource"),
        (lambda: MedianPruner().bind("max"), "direction"),  # type: ignore[arg-type]
        (lambda: ASHA().bind("up"), "direction"),  # type: ignore[arg-type]
    ],
)
def test_bad_arguments_raise_configuration_error(make: Callable[[], object], argument: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        make()
    assert info.value.argument == argument


@pytest.mark.parametrize("state", [MedianPruner().bind("maximize"), ASHA().bind("minimize")])
def test_a_non_finite_value_is_refused_and_not_recorded(state: PrunerState) -> None:
    with pytest.raises(ValueError, match="finite"):
        state.report(0, 1, float("nan"))
    assert state.report(0, 1, 0.5) is False  # the state is still sound


# -- MedianPruner --------------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_median_prunes_a_trial_worse_than_the_median_at_the_same_step(
    direction: Direction,
) -> None:
    state = MedianPruner(min_trials=3).bind(direction)
    for number, level in enumerate([0.5, 0.7, 0.9]):
        feed(state, number, {s: flip(direction, level * s) for s in range(4)})
    # step 0: every value is 0, a tie with the median, so the trial goes on
    assert feed(state, 3, {s: flip(direction, 0.6 * s) for s in range(4)}) == {0: False, 1: True}
    assert feed(state, 4, {s: flip(direction, 0.8 * s) for s in range(4)}) == dict.fromkeys(
        range(4), False
    )


def test_median_is_taken_over_the_other_trials_at_that_step() -> None:
    state = MedianPruner(min_trials=2).bind("maximize")
    state.report(0, 0, 1.0)
    state.report(1, 0, 3.0)
    # the others' median is 2.0; with itself counted it would be 1.5, a tie
    assert state.report(2, 0, 1.5) is True
    # with an even number of others, the median is the mean of the middle two
    for number, value in enumerate([1.0, 2.0, 4.0, 9.0]):
        state.report(number, 1, value)
    assert state.report(4, 1, 2.9) is True  # median 3.0
    assert state.report(5, 1, 3.0) is False  # a tie goes on


def test_median_honours_warmup_steps() -> None:
    state = MedianPruner(warmup_steps=2, min_trials=1).bind("maximize")
    feed(state, 0, {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0})
    assert feed(state, 1, {0: 0.0, 1: 0.0, 2: 0.0, 3: 0.0}) == {0: False, 1: False, 2: True}


def test_median_waits_for_min_trials_other_trials_at_that_step() -> None:
    state = MedianPruner(min_trials=3).bind("minimize")
    state.report(0, 5, 1.0)
    state.report(1, 5, 1.0)
    assert state.report(9, 5, 2.0) is False  # two others at step 5
    state.report(2, 3, 1.0)  # another step is no evidence for step 5
    assert state.report(9, 5, 2.0) is False
    state.report(2, 5, 1.0)
    assert state.report(9, 5, 2.0) is True


def test_median_counts_running_pruned_and_failed_trials_but_forgets_cancelled_ones() -> None:
    state = MedianPruner(min_trials=3).bind("maximize")
    feed(state, 0, {0: 1.0})  # still running
    feed(state, 1, {0: 1.0})
    state.finish(ended(1, {0: 1.0}, TrialStatus.PRUNED))
    feed(state, 2, {0: 1.0})
    state.finish(ended(2, {0: 1.0}, TrialStatus.FAILED))
    feed(state, 3, {0: 1.0})
    state.finish(ended(3, {0: 1.0}, TrialStatus.CANCELLED))
    assert state.values_at(0) == {0: 1.0, 1: 1.0, 2: 1.0}
    assert state.report(4, 0, 0.5) is True


def test_median_a_retried_trial_counts_once_with_its_last_attempt() -> None:
    state = MedianPruner(min_trials=2).bind("maximize")
    feed(state, 0, {0: 1.0, 1: 1.0, 2: 1.0})  # attempt 1 fails after step 2
    feed(state, 0, {0: 0.0})  # attempt 2 reports step 0 again
    feed(state, 1, {0: 2.0})
    assert state.values_at(0) == {0: 0.0, 1: 2.0}
    state.finish(ended(0, {0: 0.0}, TrialStatus.FAILED))  # its record: attempt 2 only
    assert state.values_at(2) == {}


def test_median_warm_starts_from_resumed_trials() -> None:
    state = MedianPruner(min_trials=3).bind("maximize")
    for number in range(3):
        state.finish(ended(number, {1: 0.5, 2: 0.6}))
    assert state.report(3, 1, 0.4) is True


def test_median_state_serves_as_the_inboxs_decision_from_many_threads() -> None:
    async def main() -> MedianState:
        state = MedianPruner(min_trials=1).bind("maximize")
        inbox = ReportInbox(asyncio.get_running_loop(), decide=state.report)
        for number in range(8):
            inbox.watch(number)

        def run(number: int) -> None:
            for step in range(50):
                inbox.report(number, step, float(number))

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(run, range(8)))
        return state

    state = asyncio.run(main())
    assert all(state.values_at(step) == {n: float(n) for n in range(8)} for step in range(50))


# -- ASHA ---------------------------------------------------------------------------------


def test_asha_rungs_grow_geometrically_below_max_resource() -> None:
    assert [ASHA().rung_resource(k) for k in range(4)] == [1, 3, 9, 27]
    assert [ASHA(max_resource=27).rung_resource(k) for k in range(4)] == [1, 3, 9, None]
    assert [ASHA(2, 2, 17).rung_resource(k) for k in range(5)] == [2, 4, 8, 16, None]


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_asha_promotes_only_the_best_while_a_rung_holds_fewer_than_eta(
    direction: Direction,
) -> None:
    state = ASHA(reduction_factor=3).bind(direction)
    assert state.report(0, 1, flip(direction, 0.5)) is False  # the first one always goes on
    assert state.report(1, 1, flip(direction, 0.4)) is True
    assert state.report(2, 1, flip(direction, 0.6)) is False  # best so far
    assert state.report(3, 1, flip(direction, 0.55)) is True  # 4 // 3 = 1: only the best
    assert state.report(4, 1, flip(direction, 0.6)) is False  # a tie with the best goes on
    # six values: the top 2 go on, i.e. anything as good as the second best, 0.6
    assert state.report(5, 1, flip(direction, 0.58)) is True
    assert state.report(6, 1, flip(direction, 0.59)) is True
    # eight values: 0.4 0.5 0.55 0.58 0.59 0.6 0.6 0.7 -> top 2: >= 0.6
    assert state.report(7, 1, flip(direction, 0.7)) is False
    # nine values: top 3 -> >= 0.6 still; 0.65 ranks third
    assert state.report(8, 1, flip(direction, 0.65)) is False


def test_asha_decides_only_when_a_trial_reaches_a_rung() -> None:
    state = ASHA(min_resource=2, reduction_factor=2).bind("maximize")  # rungs 2, 4, 8, ...
    feed(state, 0, dict.fromkeys(range(9), 1.0))
    # before min_resource, and between rungs, even a hopeless trial goes on
    assert state.report(1, 0, -5.0) is False
    assert state.report(1, 1, -5.0) is False
    assert state.report(1, 2, 1.0) is False  # a tie at rung 2
    assert state.report(1, 3, -5.0) is False
    assert state.report(1, 4, -5.0) is True


def test_asha_takes_the_first_report_at_or_past_a_rung_as_the_trials_value_there() -> None:
    state = ASHA(min_resource=1, reduction_factor=3).bind("maximize")
    feed(state, 0, {2: 0.5, 4: 0.6, 10: 0.9})  # reports every other step, then skips
    assert state.rung_values(0) == {0: 0.5}  # rung 1: step 2
    assert state.rung_values(1) == {0: 0.6}  # rung 3: step 4
    assert state.rung_values(2) == {0: 0.9}  # rung 9: step 10


def test_asha_a_report_crossing_several_rungs_is_judged_at_each() -> None:
    state = ASHA(reduction_factor=2).bind("maximize")  # rungs 1, 2, 4, 8
    state.report(0, 1, 0.5)
    state.report(1, 4, 0.9)  # crosses 1, 2 and 4: best at each
    assert [state.rung_values(k) for k in range(3)] == [{0: 0.5, 1: 0.9}, {1: 0.9}, {1: 0.9}]
    state.report(2, 1, 0.6)
    assert state.report(2, 2, 0.4) is True  # worse than trial 1 at rung 2


def test_asha_max_resource_leaves_no_rung_at_or_above_it() -> None:
    state = ASHA(min_resource=1, reduction_factor=3, max_resource=9).bind("maximize")
    feed(state, 0, {1: 1.0, 3: 1.0, 9: 1.0, 27: 1.0})
    assert state.report(1, 1, 1.0) is False
    assert state.report(1, 3, 1.0) is False
    assert state.report(1, 9, 0.0) is False  # step 9 is max_resource: no rung there
    assert state.report(1, 27, 0.0) is False


def test_asha_counts_every_status_but_cancelled() -> None:
    state = ASHA(reduction_factor=2).bind("maximize")
    for number, status in enumerate(TrialStatus):
        feed(state, number, {1: 1.0})
        state.finish(ended(number, {1: 1.0}, status))
    assert sorted(state.rung_values(0)) == [
        n for n, status in enumerate(TrialStatus) if status is not TrialStatus.CANCELLED
    ]


def test_asha_a_retried_trial_counts_once_with_its_last_attempt() -> None:
    state = ASHA(reduction_factor=2).bind("maximize")
    feed(state, 0, {1: 0.9, 2: 0.9})
    state.report(0, 1, 0.1)  # the retry reaches rung 1 again
    assert state.rung_values(0) == {0: 0.1}
    assert state.rung_values(1) == {0: 0.9}
    state.finish(ended(0, {1: 0.1}, TrialStatus.FAILED))
    assert state.rung_values(1) == {}


def test_asha_warm_starts_from_resumed_trials() -> None:
    state = ASHA(reduction_factor=3).bind("minimize")
    for number, loss in enumerate([0.3, 0.2, 0.1]):
        state.finish(ended(number, {0: 1.0, 1: loss, 2: loss, 3: loss, 4: loss}))
    assert state.rung_values(1) == {0: 0.3, 1: 0.2, 2: 0.1}
    assert state.report(3, 1, 0.15) is True  # only 0.1 is in the top 4 // 3 = 1
    assert state.report(4, 1, 0.05) is False


def test_public_names() -> None:
    import aiotune.pruning as module

    assert sorted(module.__all__) == sorted(
        ["ASHA", "ASHAState", "MedianPruner", "MedianState", "Pruner", "PrunerState"]
    )
    for name in module.__all__:
        assert getattr(module, name).__doc__


# -- both against a brute-force reference --------------------------------------------------

REPORTS = st.lists(
    st.tuples(
        st.integers(0, 5),  # trial number
        st.integers(0, 10),  # step
        st.integers(-3, 3).map(float),  # value: few distinct ones, so ties happen
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(
    reports=REPORTS,
    direction=st.sampled_from(["maximize", "minimize"]),
    warmup=st.integers(0, 3),
    min_trials=st.integers(1, 4),
)
def test_median_matches_a_brute_force_reference(
    reports: list[tuple[int, int, float]], direction: Direction, warmup: int, min_trials: int
) -> None:
    state = MedianPruner(warmup_steps=warmup, min_trials=min_trials).bind(direction)
    seen: dict[int, dict[int, float]] = {}  # step -> number -> value
    for number, step, value in reports:
        seen.setdefault(step, {})[number] = value
        others = [v for n, v in seen[step].items() if n != number]
        median = statistics.median(others) if others else 0.0
        worse = value < median if direction == "maximize" else value > median
        expected = step >= warmup and len(others) >= min_trials and worse
        assert state.report(number, step, value) is expected


@settings(max_examples=150, deadline=None)
@given(
    reports=REPORTS,
    direction=st.sampled_from(["maximize", "minimize"]),
    min_resource=st.integers(1, 3),
    eta=st.integers(2, 4),
)
def test_asha_matches_a_brute_force_reference(
    reports: list[tuple[int, int, float]], direction: Direction, min_resource: int, eta: int
) -> None:
    state = ASHA(min_resource=min_resource, reduction_factor=eta).bind(direction)
    reference = AshaReference(direction, min_resource, eta)
    for number, step, value in reports:
        assert state.report(number, step, value) is reference.report(number, step, value)


@settings(max_examples=100, deadline=None)
@given(
    reports=REPORTS,
    finished=st.lists(st.tuples(st.integers(0, 5), st.sampled_from(list(TrialStatus)))),
)
def test_finish_leaves_the_same_evidence_as_a_resumed_study(
    reports: list[tuple[int, int, float]], finished: list[tuple[int, TrialStatus]]
) -> None:
    """Live reports then ``finish`` == ``finish`` of the journal's records alone."""
    curves: dict[int, dict[int, float]] = {}
    for number, step, value in reports:
        curves.setdefault(number, {})[step] = value
    records = {n: ended(n, curves.get(n, {}), status) for n, status in dict(finished).items()}
    for pruner in (MedianPruner(min_trials=1), ASHA(reduction_factor=2)):
        live, resumed = pruner.bind("maximize"), pruner.bind("maximize")
        for number, step, value in reports:
            live.report(number, step, value)
        for record in records.values():
            live.finish(record)
            if record.status is not TrialStatus.CANCELLED:  # the tuner never loads those
                resumed.finish(record)
        for number, curve in curves.items():  # trials still running in the live study
            if number not in records:
                resumed.finish(ended(number, curve, TrialStatus.PRUNED))
        assert evidence(live) == evidence(resumed)


def evidence(state: PrunerState) -> list[dict[int, float]]:
    """What a built-in state holds: values by step (median), or by rung (ASHA)."""
    if isinstance(state, MedianState):
        return [state.values_at(step) for step in range(11)]
    assert isinstance(state, ASHAState)
    return [state.rung_values(k) for k in range(4)]


# -- end to end (needs Tuner(pruner=...) wired in) -------------------------------------------


def rising(params: dict[str, Any], trial: Any) -> float:
    """A learning curve that climbs to ``x`` over steps 1..9; reports every step."""
    value = 0.0
    for step in range(1, 10):
        value = params["x"] * step / 9
        trial.report(value, step)
    return value


async def rising_async(params: dict[str, Any], trial: Any) -> float:
    """:func:`rising` on the event loop."""
    await asyncio.sleep(0)
    return rising(params, trial)


def fixed(*xs: float) -> Callable[[at.Space, at.History], AsyncIterator[dict[str, Any]]]:
    """A strategy that suggests ``x`` = each of ``xs``, in order."""

    async def strategy(space: at.Space, history: at.History) -> AsyncIterator[dict[str, Any]]:
        for x in xs:
            yield {"x": x}

    return strategy


def test_pruners_are_exported_at_the_top_level() -> None:
    assert {"ASHA", "MedianPruner", "Pruner", "PrunerState"} <= set(at.__all__)
    assert at.ASHA is ASHA
    assert at.MedianPruner is MedianPruner


async def test_median_pruner_stops_trials_through_the_tuner() -> None:
    result = await at.tune(
        rising_async,
        X,
        strategy=fixed(0.9, 0.8, 0.7, 0.6, 0.5, 0.95, 0.3),
        concurrency=1,
        pruner=MedianPruner(min_trials=3),
    )
    statuses = [t.status for t in result.trials]
    assert statuses == ["complete"] * 3 + ["pruned", "pruned", "complete", "pruned"]
    for trial in result.trials:
        if trial.status is TrialStatus.PRUNED:
            assert list(trial.intermediate) == [1]  # stopped at its first report
            assert trial.score == trial.intermediate[1]
    assert result.best.params == {"x": 0.95}


async def test_asha_prunes_worker_processes_at_rungs_only() -> None:
    result = await at.tune(
        rising,
        X,
        strategy=at.Random(seed=0),
        max_trials=12,
        concurrency=2,
        pruner=ASHA(min_resource=1, reduction_factor=3, max_resource=9),
    )
    pruned = [t for t in result.trials if t.status is TrialStatus.PRUNED]
    complete = [t for t in result.trials if t.status is TrialStatus.COMPLETE]
    assert pruned
    assert complete
    assert len(pruned) + len(complete) == 12
    assert all(max(t.intermediate) in (1, 3) for t in pruned)  # the rungs below 9
    assert all(t.score == t.intermediate[max(t.intermediate)] for t in pruned)
    assert all(sorted(t.intermediate) == list(range(1, 10)) for t in complete)


async def test_a_resumed_study_warm_starts_its_pruner(tmp_path: Path) -> None:
    journal = tmp_path / "trials.jsonl"
    await at.tune(
        rising_async,
        X,
        strategy=fixed(0.9, 0.8, 0.7),
        observers=[at.JsonlWriter(journal)],
    )
    result = await at.tune(
        rising_async,
        X,
        strategy=fixed(0.2),
        max_trials=4,
        pruner=MedianPruner(min_trials=3),
        resume=journal,
    )
    (new,) = [t for t in result.trials if t.number == 3]
    assert new.status is TrialStatus.PRUNED
    assert list(new.intermediate) == [1]


async def test_a_pruned_trial_is_journaled_with_its_curve(tmp_path: Path) -> None:
    journal = tmp_path / "trials.jsonl"
    result = await at.tune(
        rising,
        X,
        strategy=fixed(0.9, 0.8, 0.7, 0.1),
        concurrency=1,
        pruner=MedianPruner(min_trials=3),
        observers=[at.JsonlWriter(journal)],
    )
    loaded = at.load(journal)
    assert loaded.trials == result.trials
    pruned = loaded.trials[3]
    assert pruned.status is TrialStatus.PRUNED
    assert dict(pruned.intermediate) == {1: pytest.approx(0.1 / 9)}
    assert pruned.score == pruned.intermediate[1]
    assert loaded.best.number == 0  # the best is always a complete trial


class _BlockingPruner:
    """A pruner whose decision blocks until released: a trial waits inside ``report``."""

    def __init__(self) -> None:
        import threading

        self.entered = threading.Event()
        self.release = threading.Event()

    def bind(self, direction: Direction) -> PrunerState:
        pruner = self

        class State:
            def report(self, number: int, step: int, value: float) -> bool:
                pruner.entered.set()
                pruner.release.wait(30)
                return False

            def finish(self, trial: Trial) -> None:
                pass

        return State()


async def test_a_trial_cancelled_while_blocked_in_report_leaves_nothing_behind() -> None:
    import anyio

    pruner = _BlockingPruner()
    tuner = at.Tuner(rising, X, max_trials=1, concurrency=1, pruner=pruner)
    with anyio.CancelScope() as scope:
        async with tuner:
            await anyio.to_thread.run_sync(pruner.entered.wait, 30)  # the worker waits in report
            scope.cancel()
            pruner.release.set()
            await anyio.sleep_forever()
    (trial,) = tuner.history.trials
    assert trial.status is TrialStatus.CANCELLED
    # the autouse fixture checks that the worker process is gone
