"""ASHA with Hyperband-style brackets: rungs per bracket, each bracket ranks its own trials."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _asha_reference import AshaReference
from aiotune.errors import ConfigurationError
from aiotune.pruning import ASHA, PrunerState
from aiotune.trial import Direction, Trial, TrialStatus


def feed(state: PrunerState, number: int, curve: Mapping[int, float]) -> int:
    """Report ``curve`` step by step until pruned; return the last step reported."""
    for step, value in sorted(curve.items()):
        if state.report(number, step, value):
            return step
    return max(curve)


def test_bracket_s_starts_its_rungs_at_min_resource_times_eta_to_the_s() -> None:
    asha = ASHA(1, 3, 27, brackets=3)
    assert [[asha.rung_resource(k, s) for k in range(3)] for s in range(3)] == [
        [1, 3, 9],
        [3, 9, None],
        [9, None, None],
    ]
    assert repr(asha) == "ASHA(min_resource=1, reduction_factor=3, max_resource=27, brackets=3)"
    assert repr(ASHA(1, 3, 27)) == "ASHA(min_resource=1, reduction_factor=3, max_resource=27)"


def test_trial_n_goes_to_bracket_n_mod_brackets_and_is_judged_only_from_its_first_rung() -> None:
    state = ASHA(1, 3, 27, brackets=3).bind("maximize")
    for number in range(3):  # one good trial per bracket, to judge the others against
        feed(state, 3 + number, {1: 0.9, 3: 0.9, 9: 0.9})
    # trial 6 (bracket 0) is judged at step 1; trial 7 (bracket 1) only from step 3;
    # trial 8 (bracket 2) only at step 9
    assert state.report(6, 1, 0.1) is True
    assert state.report(7, 1, 0.1) is False
    assert state.report(7, 3, 0.1) is True
    assert [state.report(8, step, 0.1) for step in (1, 3)] == [False, False]
    assert state.report(8, 9, 0.1) is True
    assert state.rung_values(0, 0) == {3: 0.9, 6: 0.1}
    assert state.rung_values(0, 1) == {4: 0.9, 7: 0.1}
    assert state.rung_values(0, 2) == {5: 0.9, 8: 0.1}


def test_each_bracket_ranks_only_its_own_trials() -> None:
    state = ASHA(1, 2, 16, brackets=2).bind("minimize")  # bracket 1: rungs 2, 4, 8
    for number in (0, 2, 4):  # bracket 0: three good losses at steps 1 and 2
        feed(state, number, {1: 0.1, 2: 0.1})
    # trial 1 is bracket 1's first trial at step 2: it goes on with a poor loss
    assert state.report(1, 2, 0.8) is False
    assert state.report(3, 2, 0.9) is True  # 2 // 2 = 1: only bracket 1's best goes on
    assert state.report(5, 2, 0.7) is False


def test_a_resumed_study_holds_the_same_evidence_in_each_bracket() -> None:
    asha = ASHA(1, 3, 27, brackets=2)
    live, records = asha.bind("maximize"), []
    for number in range(8):
        curve = {s: (number * 7 % 5) / 10 + s / 100 for s in range(1, 10)}
        last = feed(live, number, curve)
        kept = {s: v for s, v in curve.items() if s <= last}
        status = TrialStatus.COMPLETE if last == 9 else TrialStatus.PRUNED
        records.append(Trial(number, {}, status, kept[last], kept))
        live.finish(records[-1])
    resumed = asha.bind("maximize")
    for record in records:
        resumed.finish(record)
    for bracket in range(2):
        for k in range(3):
            assert resumed.rung_values(k, bracket) == live.rung_values(k, bracket)
    assert live.rung_values(0, 1).keys() == {1, 3, 5, 7}  # odd numbers, judged from step 3
    assert live.rung_values(0, 0).keys() == {0, 2, 4, 6}  # even ones from step 1


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"brackets": 0}, "brackets"),
        ({"brackets": 1.0}, "brackets"),
        ({"brackets": 3, "max_resource": 9}, "brackets"),  # bracket 2 would start at 9
    ],
)
def test_bad_brackets_raise_configuration_error(kwargs: dict[str, object], argument: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ASHA(1, 3, **kwargs)  # type: ignore[arg-type]
    assert caught.value.argument == argument


def late_bloomer(number: int) -> dict[int, float]:
    """Odd trials start worse and end better: 0.5 -> 0.9, even ones 0.6 -> 0.7 (10 steps);
    the odd ones lead from step 5 on."""
    start, end = (0.5, 0.9) if number % 2 else (0.6, 0.7)
    return {s: start + (end - start) * (s - 1) / 9 for s in range(1, 11)}


@pytest.mark.parametrize(("brackets", "best"), [(1, 0.7), (3, 0.9)])
def test_brackets_let_a_late_bloomer_complete_when_the_first_rung_misjudges_it(
    brackets: int, best: float
) -> None:
    """Judged at step 1 only, every late bloomer after the first is pruned there; with
    brackets, those of the later brackets reach the steps where they lead."""
    state = ASHA(1, 3, 10, brackets=brackets).bind("maximize")  # rungs 1, 3, 9
    finals = []
    for number in range(2, 14):  # trial 2 (bracket 2 of 3) is the first: a steady one
        curve = late_bloomer(number)
        if feed(state, number, curve) == 10:
            finals.append(curve[10])
    assert max(finals) == pytest.approx(best)


REPORTS = st.lists(
    st.tuples(st.integers(0, 7), st.integers(0, 30), st.integers(-3, 3).map(float)), max_size=40
)


@settings(max_examples=100, deadline=None)
@given(
    reports=REPORTS,
    direction=st.sampled_from(["maximize", "minimize"]),
    brackets=st.integers(1, 3),
    eta=st.integers(2, 3),
)
def test_brackets_match_a_brute_force_reference(
    reports: list[tuple[int, int, float]], direction: Direction, brackets: int, eta: int
) -> None:
    """Each bracket is a plain ASHA over its own trials, with rungs from ``eta**s``."""
    state = ASHA(1, eta, 30, brackets=brackets).bind(direction)
    reference = AshaReference(direction, 1, eta, max_resource=30, brackets=brackets)
    for number, step, value in reports:
        assert state.report(number, step, value) is reference.report(number, step, value)
