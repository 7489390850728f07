"""report_callback: LightGBM boosting rounds as trial.report steps, so pruners stop boosters."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightgbm
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

import aiotune as at
from aiotune.integrations.lightgbm import report_callback

X, y = load_breast_cancer(return_X_y=True)
X_TRAIN, X_VALID, Y_TRAIN, Y_VALID = train_test_split(
    X, y, test_size=0.3, random_state=0, stratify=y
)
ROUNDS = 50
SPACE = at.Space(
    learning_rate=at.Float(0.005, 0.5, log=True),
    num_leaves=at.Int(2, 64, log=True),
    min_child_samples=at.Int(2, 60, log=True),
)


def train(params: dict[str, Any], trial: at.RunningTrial, metric: str = "binary_logloss") -> Any:
    return lightgbm.train(
        {**params, "objective": "binary", "metric": ["binary_logloss", "auc"], "verbose": -1}
        | {"num_threads": 1, "seed": 0, "deterministic": True},
        lightgbm.Dataset(X_TRAIN, Y_TRAIN),
        num_boost_round=ROUNDS,
        valid_sets=[lightgbm.Dataset(X_VALID, Y_VALID)],
        callbacks=[report_callback(trial, metric)],
    )


def objective(params: dict[str, Any], trial: at.RunningTrial) -> float:
    """The validation log-loss after the last round (LightGBM runs in the trial's thread)."""
    booster = train(params, trial)
    return float(booster.best_score["valid_0"]["binary_logloss"])


def rounds(result: at.TuningResult) -> int:
    """Boosting rounds trained in the study: each trial reported once per round."""
    return sum(len(trial.intermediate) for trial in result.trials)


def study(pruner: at.Pruner | None) -> at.TuningResult:
    # Threads, one trial at a time: the same params, the same order, the same decisions
    # every run (what is measured is the pruning, not the pool).
    return at.run(
        objective,
        SPACE,
        strategy=at.Random(seed=0),
        max_trials=20,
        concurrency=1,
        direction="minimize",
        executor="thread",
        pruner=pruner,
    )


@pytest.mark.slow
def test_asha_trains_fewer_rounds_for_the_same_best_score() -> None:
    unpruned = study(None)
    pruned = study(at.ASHA(min_resource=5, reduction_factor=3, max_resource=ROUNDS))

    assert rounds(unpruned) == 20 * ROUNDS
    assert pruned.status_counts()[at.TrialStatus.PRUNED] > 0
    assert rounds(pruned) < 0.6 * rounds(unpruned)
    assert pruned.best.score == pytest.approx(unpruned.best.score, rel=0.01)
    for trial in pruned.trials:  # one report per round, at steps 1, 2, ...
        assert list(trial.intermediate) == list(range(1, len(trial.intermediate) + 1))


async def test_reports_every_n_rounds_the_metric_asked_for() -> None:
    def by_auc(params: dict[str, Any], trial: at.RunningTrial) -> float:
        booster = lightgbm.train(
            {**params, "objective": "binary", "metric": ["binary_logloss", "auc"]}
            | {"verbose": -1, "num_threads": 1},
            lightgbm.Dataset(X_TRAIN, Y_TRAIN),
            num_boost_round=20,
            valid_sets=[lightgbm.Dataset(X_TRAIN, Y_TRAIN), lightgbm.Dataset(X_VALID, Y_VALID)],
            valid_names=["training", "valid"],
            callbacks=[report_callback(trial, "auc", every=5)],
        )
        assert trial.intermediate[20] == booster.best_score["valid"]["auc"]
        return float(booster.best_score["valid"]["auc"])

    result = await at.tune(by_auc, SPACE, max_trials=2, concurrency=1, executor="thread")
    for trial in result.trials:
        assert trial.status is at.TrialStatus.COMPLETE, trial.error
        assert list(trial.intermediate) == [5, 10, 15, 20]
        assert 0.9 < trial.intermediate[20] <= 1.0  # the validation AUC, not the training one


async def test_a_metric_that_is_not_evaluated_fails_the_trial_with_a_clear_error() -> None:
    def wrong(params: dict[str, Any], trial: at.RunningTrial) -> float:
        train(params, trial, metric="rmse")
        return 0.0

    result = await at.tune(wrong, SPACE, max_trials=1, concurrency=1, executor="thread")
    [trial] = result.trials
    assert trial.status is at.TrialStatus.FAILED
    assert trial.error is not None
    assert trial.error.type == "ConfigurationError"
    assert "rmse is not evaluated" in trial.error.message
    assert "valid_0/binary_logloss" in trial.error.message


def test_every_must_be_a_positive_int() -> None:
    with pytest.raises(at.ConfigurationError, match="every"):
        report_callback(None, "auc", every=0)  # type: ignore[arg-type]


def test_without_lightgbm_the_callback_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # makes `import lightgbm` fail
    with pytest.raises(at.MissingExtraError, match=r"aiotune\[lightgbm\]") as caught:
        report_callback(None, "auc")  # type: ignore[arg-type]
    assert caught.value.extra == "lightgbm"
    assert importlib.import_module("aiotune.integrations.lightgbm")  # the module imports fine


@pytest.mark.slow
def test_the_example_runs(tmp_path: Path) -> None:
    example = Path(__file__).parent.parent / "examples" / "lightgbm_pruning.py"
    done = subprocess.run(
        [sys.executable, str(example), "--trials", "6"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"pruner=None: {6 * 100} boosting rounds, 0 of 6 trials pruned")
    assert lines[1].startswith("pruner=ASHA(")
