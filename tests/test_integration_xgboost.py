"""ReportCallback: XGBoost boosting rounds as trial.report steps, so pruners stop boosters."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import xgboost
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

import aiotune as at
from aiotune.integrations.xgboost import ReportCallback

X, y = load_breast_cancer(return_X_y=True)
X_TRAIN, X_VALID, Y_TRAIN, Y_VALID = train_test_split(
    X, y, test_size=0.3, random_state=0, stratify=y
)
ROUNDS = 40
SPACE = at.Space(
    eta=at.Float(0.005, 0.5, log=True),
    max_depth=at.Int(1, 8),
    min_child_weight=at.Float(0.1, 20.0, log=True),
)


def objective(params: dict[str, Any], trial: at.RunningTrial) -> float:
    """The validation log-loss after the last round (XGBoost runs in the trial's thread)."""
    booster = xgboost.train(
        {**params, "objective": "binary:logistic", "eval_metric": "logloss", "nthread": 1},
        xgboost.DMatrix(X_TRAIN, Y_TRAIN),
        num_boost_round=ROUNDS,
        evals=[
            (xgboost.DMatrix(X_TRAIN, Y_TRAIN), "train"),
            (xgboost.DMatrix(X_VALID, Y_VALID), "valid"),
        ],
        callbacks=[ReportCallback(trial, "logloss")],
        verbose_eval=False,
    )
    score = float(booster.eval(xgboost.DMatrix(X_VALID, Y_VALID)).split(":")[1])
    assert score == pytest.approx(trial.intermediate[ROUNDS], rel=1e-5)  # it reported "valid"
    return score


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
        max_trials=16,
        concurrency=1,
        direction="minimize",
        executor="thread",
        pruner=pruner,
    )


@pytest.mark.slow
def test_the_median_pruner_trains_fewer_rounds_for_the_same_best_score() -> None:
    unpruned = study(None)
    pruned = study(at.MedianPruner(warmup_steps=5, min_trials=4))

    assert rounds(unpruned) == 16 * ROUNDS
    assert all(t.status is at.TrialStatus.COMPLETE for t in unpruned.trials)
    assert pruned.status_counts()[at.TrialStatus.PRUNED] > 0
    assert rounds(pruned) < 0.6 * rounds(unpruned)
    assert pruned.best.score == pytest.approx(unpruned.best.score, rel=0.01)
    for trial in pruned.trials:  # one report per round, at steps 1, 2, ...
        assert list(trial.intermediate) == list(range(1, len(trial.intermediate) + 1))


async def test_reports_every_n_rounds_and_names_what_is_evaluated() -> None:
    def sparse(params: dict[str, Any], trial: at.RunningTrial) -> float:
        dvalid = xgboost.DMatrix(X_VALID, Y_VALID)
        xgboost.train(
            {**params, "objective": "binary:logistic", "eval_metric": "auc", "nthread": 1},
            xgboost.DMatrix(X_TRAIN, Y_TRAIN),
            num_boost_round=12,
            evals=[(dvalid, "valid")],
            callbacks=[ReportCallback(trial, "auc", every=4)],
            verbose_eval=False,
        )
        return trial.intermediate[12]

    def wrong(params: dict[str, Any], trial: at.RunningTrial) -> float:
        xgboost.train(
            {**params, "objective": "binary:logistic", "eval_metric": "auc", "nthread": 1},
            xgboost.DMatrix(X_TRAIN, Y_TRAIN),
            num_boost_round=2,
            evals=[(xgboost.DMatrix(X_VALID, Y_VALID), "valid")],
            callbacks=[ReportCallback(trial, "logloss")],
            verbose_eval=False,
        )
        return 0.0

    result = await at.tune(sparse, SPACE, max_trials=1, concurrency=1, executor="thread")
    [trial] = result.trials
    assert trial.status is at.TrialStatus.COMPLETE, trial.error
    assert list(trial.intermediate) == [4, 8, 12]
    assert 0.9 < trial.intermediate[12] <= 1.0

    result = await at.tune(wrong, SPACE, max_trials=1, concurrency=1, executor="thread")
    [trial] = result.trials
    assert trial.status is at.TrialStatus.FAILED
    assert trial.error is not None
    assert trial.error.type == "ConfigurationError"
    assert "logloss is not evaluated" in trial.error.message
    assert "valid/auc" in trial.error.message


def test_every_must_be_a_positive_int() -> None:
    with pytest.raises(at.ConfigurationError, match="every"):
        ReportCallback(None, "auc", every=0)  # type: ignore[arg-type]


def test_without_xgboost_the_import_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xgboost.callback", None)  # makes the import fail
    monkeypatch.delitem(sys.modules, "aiotune.integrations.xgboost")
    with pytest.raises(at.MissingExtraError, match=r"aiotune\[xgboost\]") as caught:
        importlib.import_module("aiotune.integrations.xgboost")
    assert caught.value.extra == "xgboost"


@pytest.mark.slow
def test_the_example_runs(tmp_path: Path) -> None:
    example = Path(__file__).parent.parent / "examples" / "xgboost_pruning.py"
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
    assert lines[0].startswith(f"pruner=None: {6 * 60} boosting rounds, 0 of 6 trials pruned")
    assert lines[1].startswith("pruner=MedianPruner(")
