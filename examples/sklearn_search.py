"""TuneSearchCV: search an SVM pipeline's hyper-parameters like GridSearchCV, with aiotune.

Needs the ``sklearn`` extra (``pip install 'aiotune[sklearn]'``). Uses the
wine data set that ships with scikit-learn: nothing is downloaded. Each
candidate is one aiotune trial (a 5-fold cross-validation) in a worker
process; the median pruner stops a candidate whose first folds score below
the median of the others, so hopeless settings cost one or two fits.
"""

from __future__ import annotations

import argparse

from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import aiotune as at
from aiotune.integrations.sklearn import TuneSearchCV


def main(trials: int) -> None:
    """Search, then report the best params and the held-out accuracy."""
    X, y = load_wine(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    search = TuneSearchCV(
        Pipeline([("scale", StandardScaler()), ("svc", SVC())]),
        at.Space(  # step__param names, as in GridSearchCV
            svc__C=at.Float(1e-3, 1e3, log=True),
            svc__gamma=at.Float(1e-5, 1.0, log=True),
        ),
        strategy=at.Bayesian(seed=0),
        max_trials=trials,
        cv=5,
        concurrency=2,
        pruner=at.MedianPruner(min_trials=3),
    )
    search.fit(X_train, y_train)  # inside a running loop: await search.fit_async(...)
    statuses = search.result_.status_counts()
    print(f"trials: {search.n_trials_} ({statuses[at.TrialStatus.PRUNED]} pruned)")
    print(f"best params: {search.best_params_}")
    print(f"best cross-validated accuracy: {search.best_score_:.3f}")
    print(f"held-out accuracy: {search.score(X_test, y_test):.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    main(parser.parse_args().trials)
