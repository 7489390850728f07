"""The finished-trial record: every field kept, one score kept in step with ``scores``."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

import aiotune as at
from aiotune.trial import ErrorInfo


def _every_field_distinct() -> dict[str, object]:
    return {
        "number": 7,
        "params": {"x": 0.25},
        "status": at.TrialStatus.FAILED,
        "score": None,
        "intermediate": {0: 1.5, 3: 2.5},
        "error": ErrorInfo("ValueError", "boom"),
        "previous_errors": (ErrorInfo("KeyError", "first"),),
        "attempts": 2,
        "started_at": 100.0,
        "finished_at": 103.5,
        "duration": 3.5,
        "worker": "host:42",
        "scores": (),
        "constraints": (0.5, -1.0),
    }


def test_every_field_holds_what_it_was_given_by_name_and_in_order() -> None:
    given = _every_field_distinct()
    by_name = at.Trial(**given)  # type: ignore[arg-type]
    in_order = at.Trial(*given.values())  # type: ignore[arg-type]
    for name, value in given.items():
        assert getattr(by_name, name) == value, name
    assert by_name == in_order
    assert [f.name for f in dataclasses.fields(at.Trial)] == list(given)


def test_a_single_score_and_scores_are_kept_in_step() -> None:
    one = at.Trial(1, {}, at.TrialStatus.COMPLETE, score=0.5)
    assert one.scores == (0.5,)
    from_scores = at.Trial(1, {}, at.TrialStatus.COMPLETE, scores=(0.25,))
    assert from_scores.score == 0.25
    several = at.Trial(1, {}, at.TrialStatus.COMPLETE, scores=(1.0, 2.0))
    assert several.score is None
    assert dataclasses.replace(one, score=0.75).scores == (0.75,)
    assert at.Trial(1, {}, at.TrialStatus.FAILED).intermediate == {}


def test_a_record_is_frozen_and_survives_pickling_and_replace() -> None:
    trial = at.Trial(**_every_field_distinct())  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        trial.number = 8  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(trial)) == trial
    assert dataclasses.replace(trial, attempts=3) == at.Trial(
        **{**_every_field_distinct(), "attempts": 3}  # type: ignore[arg-type]
    )
