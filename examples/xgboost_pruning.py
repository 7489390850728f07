"""Pruning XGBoost boosters: the median pruner stops hopeless ones after a few rounds.

Needs the ``xgboost`` extra (``pip install 'aiotune[xgboost]'``). Uses the
breast-cancer data set that ships with scikit-learn: nothing is downloaded.
``ReportCallback`` reports the validation log-loss after every round, and
the study runs twice, without and with ``at.MedianPruner``, to show the
rounds saved.
"""

from __future__ import annotations

import argparse
from typing import Any

import xgboost
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

import aiotune as at
from aiotune.integrations.xgboost import ReportCallback

ROUNDS = 60
SPACE = at.Space(
    eta=at.Float(0.005, 0.5, log=True),
    max_depth=at.Int(1, 8),
    min_child_weight=at.Float(0.1, 20.0, log=True),
    subsample=at.Float(0.5, 1.0),
)


def objective(params: dict[str, Any], trial: at.RunningTrial) -> float:
    """Validation log-loss after the last round (runs in a worker process)."""
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, random_state=0, stratify=y)
    dvalid = xgboost.DMatrix(X_valid, y_valid)
    booster = xgboost.train(
        {**params, "objective": "binary:logistic", "eval_metric": "logloss", "nthread": 1},
        xgboost.DMatrix(X_train, y_train),
        num_boost_round=ROUNDS,
        evals=[(dvalid, "valid")],
        callbacks=[ReportCallback(trial, "logloss")],  # may raise at.Pruned
        verbose_eval=False,
    )
    return float(booster.eval(dvalid).split(":")[1])


def main(trials: int) -> None:
    """Run the study without and with pruning; print the rounds each trained."""
    for pruner in (None, at.MedianPruner(warmup_steps=5, min_trials=4)):
        result = at.run(
            objective,
            SPACE,
            strategy=at.Random(seed=0),
            max_trials=trials,
            concurrency=2,
            direction="minimize",
            pruner=pruner,
        )
        trained = sum(len(trial.intermediate) for trial in result.trials)  # one report a round
        pruned = result.status_counts()[at.TrialStatus.PRUNED]
        print(
            f"pruner={pruner}: {trained} boosting rounds, {pruned} of {trials} trials pruned, "
            f"best log-loss {result.best.score:.4f} {result.best.params}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    main(parser.parse_args().trials)
