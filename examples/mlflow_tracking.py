"""Log a study to MLflow: a parent run for the study, a nested run per trial.

Needs the ``mlflow`` extra (``pip install 'aiotune[mlflow]'``). Logs to a
local SQLite tracking store (``mlflow.db`` in the current directory; no
server), tuning a ridge regression on scikit-learn's diabetes data (nothing is
downloaded), then reads the runs back. See them with
``mlflow ui --backend-store-uri sqlite:///mlflow.db`` (the ``mlflow`` package).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.model_selection import cross_val_score

import aiotune as at
from aiotune.integrations.mlflow import MLflowTracker

SPACE = at.Space(alpha=at.Float(1e-4, 1e2, log=True), fit_intercept=at.Bool())
EXPERIMENT = "aiotune-example"


def objective(params: dict[str, Any], trial: at.RunningTrial) -> float:
    """Mean cross-validated R² (runs in a worker process); each fold is a reported step."""
    X, y = load_diabetes(return_X_y=True)
    scores = cross_val_score(Ridge(**params), X, y, cv=3)
    for fold in range(1, len(scores) + 1):
        trial.report(float(scores[:fold].mean()), fold)
    return float(scores.mean())


def main(store: str, trials: int) -> None:
    """Run the study with the tracker, then read its runs back from MLflow."""
    tracker = MLflowTracker(store, experiment=EXPERIMENT)
    result = at.run(
        objective,
        SPACE,
        strategy=at.Random(seed=0),
        max_trials=trials,
        concurrency=2,
        observers=[tracker],
    )
    print(f"best R²: {result.best.score:.3f} {result.best.params}")
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    children = client.search_runs(
        [experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{tracker.run_id}'"
    )
    print(f"parent run {tracker.run_id}: {len(children)} nested trial runs in {store}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--db", type=Path, default=Path("mlflow.db"))
    args = parser.parse_args()
    main(f"sqlite:///{args.db.resolve()}", args.trials)
