"""TuneSearchCV: a real scikit-learn meta-estimator whose trials run in aiotune's pool."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.estimator_checks import parametrize_with_checks

import aiotune as at
from aiotune.integrations.sklearn import SearchFailedError, TuneSearchCV


def _checked(estimator: Any, space: at.Space) -> TuneSearchCV:
    # The instances sklearn checks GridSearchCV with (Ridge, and a PCA + logistic regression
    # pipeline; cv=2, error_score="raise"), searched by aiotune. Threads, not processes: the
    # checks fit some hundred times, and what they check is the meta-estimator, not the pool.
    return TuneSearchCV(
        estimator,
        space,
        strategy=at.Random(seed=0),
        max_trials=2,
        cv=2,
        error_score="raise",
        concurrency=1,
        executor="thread",
    )


CHECKED = [
    _checked(Ridge(), at.Space(alpha=at.Float(0.1, 1.0))),
    _checked(
        Pipeline([("pca", PCA()), ("logisticregression", LogisticRegression())]),
        at.Space(logisticregression__C=at.Float(0.1, 1.0)),
    ),
]

# The checks of the inner estimator's own numerics on other input containers are run on
# Ridge only: on the classifier pipeline they take a minute more and check LogisticRegression.
INNER_NUMERICS = {"check_estimator_sparse_array", "check_estimator_sparse_matrix"}


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")  # the checks provoke convergence and data warnings
@parametrize_with_checks(CHECKED)
def test_passes_the_scikit_learn_estimator_checks(estimator: Any, check: Any) -> None:
    name = getattr(check, "func", check).__name__
    repeat = name in INNER_NUMERICS or getattr(check, "keywords", {}).get("readonly_memmap")
    if isinstance(estimator.estimator, Pipeline) and repeat:
        pytest.skip("the inner estimator's numerics on another container: checked on Ridge")
    check(estimator)


def test_finds_the_same_best_params_as_grid_search_cv() -> None:
    X, y = load_iris(return_X_y=True)
    grid = {"C": [0.01, 0.1, 1.0, 10.0], "kernel": ["linear", "rbf"]}
    expected = GridSearchCV(SVC(), grid, cv=3).fit(X, y)

    search = TuneSearchCV(
        SVC(),
        at.Space(C=at.Categorical(grid["C"]), kernel=at.Categorical(grid["kernel"])),
        strategy=at.Grid(),
        max_trials=None,
        cv=3,
        concurrency=2,
    ).fit(X, y)

    assert search.best_params_ == expected.best_params_
    assert search.best_score_ == pytest.approx(expected.best_score_)
    assert search.n_trials_ == 8
    # the same table: GridSearchCV's keys (and ours), the same candidates and scores
    assert set(expected.cv_results_) <= set(search.cv_results_)
    ours = {tuple(sorted(p.items())): i for i, p in enumerate(search.cv_results_["params"])}
    for i, params in enumerate(expected.cv_results_["params"]):
        j = ours[tuple(sorted(params.items()))]
        for key in ("mean_test_score", "std_test_score", "rank_test_score", "split2_test_score"):
            assert search.cv_results_[key][j] == pytest.approx(expected.cv_results_[key][i])
        assert search.cv_results_["param_C"][j] == expected.cv_results_["param_C"][i]
        assert search.cv_results_["mean_fit_time"][j] > 0
    assert np.array_equal(search.predict(X), expected.predict(X))
    assert search.score(X, y) == pytest.approx(expected.score(X, y))
    assert search.result_.best.params == search.best_params_


@pytest.mark.slow
def test_works_in_a_pipeline_and_under_cross_val_score() -> None:
    X, y = load_iris(return_X_y=True)
    pipeline = Pipeline([("scale", StandardScaler()), ("svc", SVC())])
    search = TuneSearchCV(
        pipeline,
        at.Space(svc__C=at.Float(0.1, 100.0, log=True), svc__gamma=at.Float(1e-3, 1.0, log=True)),
        strategy=at.Random(seed=0),
        max_trials=4,
        cv=3,
        concurrency=2,
    )
    scores = cross_val_score(search, X, y, cv=2)
    assert scores.shape == (2,)
    assert all(0.8 < score <= 1.0 for score in scores)

    # and the search as a step of a pipeline (in threads this time: quicker to start)
    search.set_params(executor="thread")
    outer = Pipeline([("scale", StandardScaler()), ("search", search)]).fit(X, y)
    fitted = outer.named_steps["search"]
    assert set(fitted.best_params_) == {"svc__C", "svc__gamma"}
    assert fitted.best_estimator_.named_steps["svc"].C == fitted.best_params_["svc__C"]
    assert (outer.predict(X) == y).mean() > 0.9


@pytest.mark.slow
def test_with_a_pruner_each_fold_is_a_step_and_a_bad_first_fold_stops_a_trial() -> None:
    X, y = load_iris(return_X_y=True)
    # Two good candidates first, then hopeless ones: a logistic regression this
    # regularised predicts one class, about a third right on every fold.
    good, bad = [1.0, 10.0], [1e-6, 1e-7, 1e-8]
    search = TuneSearchCV(
        LogisticRegression(max_iter=500),
        at.Space(C=at.Categorical(good + bad)),
        strategy=at.Grid(),
        max_trials=None,
        cv=5,
        concurrency=1,
        pruner=at.MedianPruner(min_trials=2),
    ).fit(X, y)

    by_c = {t.params["C"]: t for t in search.result_.trials}
    for c in good:
        assert by_c[c].status is at.TrialStatus.COMPLETE
        assert sorted(by_c[c].intermediate) == [1, 2, 3, 4, 5]  # one step per fold
    for c in bad:
        assert by_c[c].status is at.TrialStatus.PRUNED
        assert sorted(by_c[c].intermediate) == [1]  # stopped after its first fold
    results = search.cv_results_
    pruned = [i for i, s in enumerate(results["status"]) if s == "pruned"]
    assert len(pruned) == 3
    assert all(np.isnan(results["mean_test_score"][i]) for i in pruned)
    assert all(np.isnan(results["split1_test_score"][i]) for i in pruned)
    assert all(results["rank_test_score"][i] == 3 for i in pruned)  # last, after the two good
    assert search.best_params_["C"] in good


async def test_sync_fit_in_a_running_loop_points_at_fit_async() -> None:
    X, y = load_iris(return_X_y=True)
    search = TuneSearchCV(
        LogisticRegression(max_iter=500),
        at.Space(C=at.Float(0.1, 10.0, log=True)),
        strategy=at.Random(seed=1),
        max_trials=2,
        cv=2,
        executor="thread",
    )
    with pytest.raises(at.ConfigurationError, match=r"await search\.fit_async\(X, y\)"):
        search.fit(X, y)
    assert not hasattr(search, "cv_results_")

    assert await search.fit_async(X, y) is search
    assert search.n_trials_ == 2
    assert search.score(X, y) > 0.9


def test_sample_weight_reaches_each_fold_as_in_grid_search_cv() -> None:
    X, y = load_diabetes(return_X_y=True)
    weights = np.random.default_rng(0).uniform(0.1, 2.0, size=len(y))
    grid = {"alpha": [0.01, 1.0, 100.0]}
    expected = GridSearchCV(Ridge(), grid, cv=3).fit(X, y, sample_weight=weights)
    search = TuneSearchCV(
        Ridge(),
        at.Space(alpha=at.Categorical(grid["alpha"])),
        strategy=at.Grid(),
        max_trials=None,
        cv=3,
        executor="thread",
        concurrency=1,
    ).fit(X, y, sample_weight=weights)
    assert search.best_params_ == expected.best_params_
    assert search.cv_results_["mean_test_score"] == pytest.approx(
        expected.cv_results_["mean_test_score"]
    )
    unweighted = GridSearchCV(Ridge(), grid, cv=3).fit(X, y)
    assert search.best_score_ != pytest.approx(unweighted.best_score_)  # the weights mattered


class _Exploding(Ridge):  # a top-level class: it pickles
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _Exploding:
        if self.alpha > 0.5:
            raise ArithmeticError(f"alpha {self.alpha} is too big")
        return super().fit(X, y, sample_weight)


def test_error_score_raise_reraises_the_estimators_own_error() -> None:
    X, y = load_iris(return_X_y=True)
    search = TuneSearchCV(
        _Exploding(),
        at.Space(alpha=at.Categorical([0.1, 0.9])),
        strategy=at.Grid(),
        max_trials=None,
        cv=2,
        error_score="raise",
        executor="thread",
        concurrency=1,
    )
    with pytest.raises(ArithmeticError, match=r"alpha 0\.9 is too big"):
        search.fit(X, y)


def test_a_failed_candidate_scores_error_score_and_all_failing_is_an_error() -> None:
    X, y = load_iris(return_X_y=True)
    search = TuneSearchCV(
        _Exploding(),
        at.Space(alpha=at.Categorical([0.1, 0.9])),
        strategy=at.Grid(),
        max_trials=None,
        cv=2,
        error_score=-1.0,
        executor="thread",
        concurrency=1,
    ).fit(X, y)
    assert search.best_params_ == {"alpha": 0.1}
    assert list(search.cv_results_["status"]) == ["complete", "failed"]
    assert search.cv_results_["mean_test_score"][1] == -1.0
    assert list(search.cv_results_["rank_test_score"]) == [1, 2]

    search.set_params(space=at.Space(alpha=at.Categorical([0.7, 0.9])))
    with pytest.raises(SearchFailedError, match=r"alpha 0\.7 is too big") as caught:
        search.fit(X, y)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, at.TuningError)


def test_without_scikit_learn_the_import_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.base", None)  # makes `import sklearn.base` fail
    monkeypatch.delitem(sys.modules, "aiotune.integrations.sklearn")
    with pytest.raises(at.MissingExtraError, match=r"aiotune\[sklearn\]") as caught:
        importlib.import_module("aiotune.integrations.sklearn")
    assert caught.value.extra == "sklearn"


@pytest.mark.slow
def test_the_example_runs(tmp_path: Path) -> None:
    example = Path(__file__).parent.parent / "examples" / "sklearn_search.py"
    done = subprocess.run(
        [sys.executable, str(example), "--trials", "8"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "trials: 8 (" in done.stdout
    accuracy = re.search(r"held-out accuracy: ([0-9.]+)", done.stdout)
    assert accuracy is not None
    assert float(accuracy.group(1)) > 0.85
