"""Pruning LightGBM boosters: ASHA stops hopeless ones after a few boosting rounds.

Needs the ``lightgbm`` extra (``pip install 'aiotune[lightgbm]'``). Uses the
breast-cancer data set that ships with scikit-learn: nothing is downloaded.
``report_callback`` reports the validation log-loss after every round, and
the study runs twice, without and with ``at.ASHA``, to show the rounds saved.
"""

from __future__ import annotations

import argparse
from typing import Any

import lightgbm
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

import aiotune as at
from aiotune.integrations.lightgbm import report_callback

ROUNDS = 100
SPACE = at.Space(
    learning_rate=at.Float(0.005, 0.5, log=True),
    num_leaves=at.Int(2, 64, log=True),
    min_child_samples=at.Int(2, 60, log=True),
    feature_fraction=at.Float(0.3, 1.0),
)


def objective(params: dict[str, Any], trial: at.RunningTrial) -> float:
    """Validation log-loss after the last round (runs in a worker process)."""
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, random_state=0, stratify=y)
    booster = lightgbm.train(
        {**params, "objective": "binary", "metric": "binary_logloss", "verbose": -1}
        | {"num_threads": 1, "seed": 0},
        lightgbm.Dataset(X_train, y_train),
        num_boost_round=ROUNDS,
        valid_sets=[lightgbm.Dataset(X_valid, y_valid)],
        callbacks=[report_callback(trial, "binary_logloss")],  # may raise at.Pruned
    )
    return float(booster.best_score["valid_0"]["binary_logloss"])


def main(trials: int) -> None:
    """Run the study without and with pruning; print the rounds each trained."""
    for pruner in (None, at.ASHA(min_resource=5, reduction_factor=3, max_resource=ROUNDS)):
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
    parser.add_argument("--trials", type=int, default=20)
    main(parser.parse_args().trials)
