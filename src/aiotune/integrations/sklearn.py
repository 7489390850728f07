"""A scikit-learn search estimator (``pip install 'aiotune[sklearn]'``): :class:`TuneSearchCV`.

``TuneSearchCV(estimator, space)`` is a meta-estimator like ``GridSearchCV``
whose candidates come from an aiotune strategy and whose cross-validations run
as trials in aiotune's worker pool::

    search = TuneSearchCV(
        Pipeline([("scale", StandardScaler()), ("svc", SVC())]),
        at.Space(svc__C=at.Float(1e-2, 1e2, log=True), svc__gamma=at.Float(1e-4, 1, log=True)),
        max_trials=30, cv=5, pruner=at.MedianPruner(),
    )
    search.fit(X, y)     # in a script; inside a running loop: await search.fit_async(X, y)
    search.best_params_, search.best_score_, search.predict(X_new)

Importing this module imports scikit-learn; without it, the import raises
:class:`aiotune.MissingExtraError` naming the ``sklearn`` extra.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import math
import os
import pickle
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import anyio
import numpy as np
import orjson

from aiotune._blocking import run_blocking
from aiotune.errors import ConfigurationError, MissingExtraError, Pruned, TuningError
from aiotune.execution.context import RunningTrial
from aiotune.observers.base import StudyHandle
from aiotune.pruning import Pruner
from aiotune.space import Domain, Space
from aiotune.strategies import StrategyLike
from aiotune.trial import Trial, TrialStatus, TuningResult
from aiotune.tuner import tune

try:
    from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier  # type: ignore[import-untyped]
    from sklearn.metrics import check_scoring  # type: ignore[import-untyped]
    from sklearn.model_selection import check_cv  # type: ignore[import-untyped]
    from sklearn.utils import _safe_indexing, get_tags  # type: ignore[import-untyped]
    from sklearn.utils.metaestimators import _safe_split, available_if  # type: ignore[import-untyped]
    from sklearn.utils.validation import _num_samples, check_is_fitted, indexable  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - exercised in a subprocess by the tests
    raise MissingExtraError("aiotune.integrations.sklearn", "sklearn") from None


_F = TypeVar("_F", bound=Callable[..., Any])


class SearchFailedError(TuningError, ValueError):
    """No candidate of a :class:`TuneSearchCV` search could be cross-validated.

    ``errors`` holds the distinct errors of the failed trials (as
    ``"Type: message"`` strings); the message shows them too.
    """

    def __init__(self, trials: int, errors: Sequence[str]) -> None:
        self.trials = trials
        self.errors = tuple(errors)
        shown = "\n".join(f"  {error}" for error in self.errors[:5])
        super().__init__(f"all {trials} trials of the search failed; their errors:\n{shown}")


def _delegates(attr: str) -> Callable[[Any], bool]:
    """``available_if`` check: refit is on and the (best) estimator has ``attr``."""

    def check(search: Any) -> bool:
        if not search.refit:
            raise AttributeError(f"{attr} needs refit=True (refit the best params yourself)")
        getattr(getattr(search, "best_estimator_", search.estimator), attr)
        return True

    return check


def _if_delegates(attr: str) -> Callable[[_F], _F]:
    """Offer the decorated method only when the (best) estimator has ``attr``."""
    return cast("Callable[[_F], _F]", available_if(_delegates(attr)))


class TuneSearchCV(MetaEstimatorMixin, BaseEstimator):  # type: ignore[misc]
    """Cross-validated search over an aiotune :class:`~aiotune.Space`, as a scikit-learn estimator.

    Each candidate params dict is one aiotune trial: the cross-validation of
    ``clone(estimator).set_params(**params)``, run in aiotune's worker pool
    (``executor="process"``, the default; ``"thread"`` runs them in threads).
    Its score is the mean test score over the folds (higher is better, as
    with every scikit-learn scorer); each fold's test score is reported as
    step ``k`` (1-based), so a ``pruner`` such as ``at.MedianPruner()`` stops
    a candidate after a bad first fold. The trials carry the estimator and the
    data to the workers, so both must pickle.

    Parameters follow ``GridSearchCV`` where they mean the same:

    * ``estimator`` — any estimator; parameter names of ``space`` use the
      ``step__param`` convention for pipelines and nested estimators.
    * ``space`` — an :class:`aiotune.Space` (or a mapping of names to domains).
    * ``strategy`` — e.g. ``at.Grid()``, ``at.Random(seed=0)``; default
      aiotune's (``Bayesian``).
    * ``max_trials`` — candidates to evaluate (``None``: until the strategy ends).
    * ``cv``, ``scoring`` (one metric), ``refit`` (bool), ``error_score``,
      ``return_train_score`` — as in ``GridSearchCV``.
    * ``concurrency`` — trials at once (default ``os.cpu_count()``);
      ``pruner``, ``observers``, ``trial_timeout`` — as in :func:`aiotune.tune`.

    After ``fit``: ``best_params_``, ``best_score_``, ``best_index_``,
    ``best_estimator_`` and ``refit_time_`` (with ``refit=True``),
    ``cv_results_`` (``GridSearchCV``'s keys, one row per trial in number
    order, plus ``number`` and ``status``: a pruned, failed or timed-out
    trial has a NaN ``mean_test_score``, or ``error_score`` for a failed
    fit, and ranks last), ``n_trials_``, ``n_splits_``, ``scorer_`` and
    ``result_`` (the study's :class:`aiotune.TuningResult`).
    """

    def __init__(
        self,
        estimator: Any,
        space: Space | Mapping[str, Domain],
        *,
        strategy: StrategyLike | None = None,
        max_trials: int | None = 10,
        cv: Any = 5,
        scoring: str | Callable[..., float] | None = None,
        concurrency: int | None = None,
        pruner: Pruner | None = None,
        refit: bool = True,
        error_score: float | str = np.nan,
        return_train_score: bool = False,
        observers: Sequence[Any] = (),
        trial_timeout: float | None = None,
        executor: str = "process",
    ) -> None:
        self.estimator = estimator
        self.space = space
        self.strategy = strategy
        self.max_trials = max_trials
        self.cv = cv
        self.scoring = scoring
        self.concurrency = concurrency
        self.pruner = pruner
        self.refit = refit
        self.error_score = error_score
        self.return_train_score = return_train_score
        self.observers = observers
        self.trial_timeout = trial_timeout
        self.executor = executor

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        tags.target_tags = inner.target_tags
        tags.input_tags.pairwise = inner.input_tags.pairwise
        tags.input_tags.sparse = inner.input_tags.sparse
        return tags

    # -- fitting -------------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None, *, groups: Any = None, **fit_params: Any) -> TuneSearchCV:
        """Run the search (a blocking aiotune study), then refit the best params on all data.

        Inside a running event loop this raises :class:`aiotune.ConfigurationError`:
        use ``await search.fit_async(X, y)`` there.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return run_blocking(self.fit_async(X, y, groups=groups, **fit_params))
        raise ConfigurationError(
            "fit",
            "TuneSearchCV.fit() cannot run inside a running event loop; "
            "use 'await search.fit_async(X, y)'",
        )

    async def fit_async(
        self, X: Any, y: Any = None, *, groups: Any = None, **fit_params: Any
    ) -> TuneSearchCV:
        """The async form of :meth:`fit`: the study runs on the caller's loop, the
        data preparation and the refit in a thread."""
        executor: Literal["process", "thread"]
        if self.executor == "process":
            executor = "process"
        elif self.executor == "thread":
            executor = "thread"
        else:
            raise ConfigurationError(
                "executor", f"must be 'process' or 'thread', got {self.executor!r}"
            )
        if self.error_score != "raise" and not isinstance(self.error_score, (int, float)):
            raise ConfigurationError(
                "error_score", f"must be 'raise' or a number, got {self.error_score!r}"
            )
        if y is None and get_tags(self.estimator).target_tags.required:
            name = type(self.estimator).__name__
            raise ConfigurationError(
                "y", f"{name} requires y to be passed, but the target y is None"
            )
        space = self.space if isinstance(self.space, Space) else Space(self.space)
        X, y, groups = indexable(X, y, groups)
        objective = await anyio.to_thread.run_sync(
            partial(self._objective, X, y, groups, fit_params)
        )
        observers = list(self.observers)
        if self.error_score == "raise":
            observers.append(_StopOnFailure())
        records = await anyio.to_thread.run_sync(tempfile.mkdtemp, "", "aiotune-sklearn-")
        try:
            objective.records = records
            result = await tune(
                objective,
                space,
                strategy=self.strategy,
                max_trials=self.max_trials,
                concurrency=self.concurrency,
                direction="maximize",
                pruner=self.pruner,
                observers=observers,
                trial_timeout=self.trial_timeout,
                executor=executor,
            )
            folds = await anyio.to_thread.run_sync(_read_records, records, result.trials)
        finally:
            await anyio.to_thread.run_sync(partial(shutil.rmtree, records, ignore_errors=True))
        await anyio.to_thread.run_sync(
            partial(self._conclude, result, folds, objective, X, y, fit_params)
        )
        return self

    def _objective(
        self, X: Any, y: Any, groups: Any, fit_params: dict[str, Any]
    ) -> _CrossValidation:
        if not isinstance(self.refit, bool):
            raise ConfigurationError("refit", f"must be True or False, got {self.refit!r}")
        if isinstance(self.scoring, (list, tuple, set, dict)):
            raise ConfigurationError("scoring", "TuneSearchCV optimises one metric: give one")
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        splits = [(np.asarray(train), np.asarray(test)) for train, test in cv.split(X, y, groups)]
        scorer = check_scoring(self.estimator, scoring=self.scoring)
        return _CrossValidation(
            estimator=self.estimator,
            X=X,
            y=y,
            splits=splits,
            scorer=scorer,
            fit_params=fit_params,
            error_score=self.error_score,
            return_train_score=self.return_train_score,
            weigh_scores=fit_params.get("sample_weight") is not None and _accepts_weights(scorer),
        )

    def _conclude(
        self,
        result: TuningResult,
        folds: dict[int, dict[str, list[Any]]],
        objective: _CrossValidation,
        X: Any,
        y: Any,
        fit_params: dict[str, Any],
    ) -> None:
        trials = result.trials
        failed = [t for t in trials if t.status is TrialStatus.FAILED]
        if failed and self.error_score == "raise":
            first = failed[0]
            original = _unpickled(folds.get(first.number, {}).get("exception", [""])[0])
            if original is None:
                raise SearchFailedError(len(failed), [str(first.error)])
            original.add_note(f"raised by trial {first.number} of TuneSearchCV: {first.params}")
            raise original
        if not any(t.status is TrialStatus.COMPLETE for t in trials):
            errors = dict.fromkeys(str(t.error) for t in trials if t.error is not None)
            if not errors:
                errors = dict.fromkeys(f"trial {t.number}: {t.status}" for t in trials)
            raise SearchFailedError(len(trials), list(errors))
        n_splits = len(objective.splits)
        self.cv_results_ = _cv_results(
            trials, folds, n_splits, self.error_score, self.return_train_score
        )
        best = result.best
        self.best_index_ = next(i for i, t in enumerate(trials) if t.number == best.number)
        self.best_params_ = dict(best.params)
        self.best_score_ = best.score
        self.n_trials_ = len(trials)
        self.n_splits_ = n_splits
        self.scorer_ = objective.scorer
        self.multimetric_ = False
        self.result_ = result
        if self.refit:
            estimator = clone(self.estimator).set_params(**clone(self.best_params_, safe=False))
            started = time.perf_counter()
            if y is None:
                estimator.fit(X, **fit_params)
            else:
                estimator.fit(X, y, **fit_params)
            self.refit_time_ = time.perf_counter() - started
            self.best_estimator_ = estimator
            if hasattr(estimator, "feature_names_in_"):
                self.feature_names_in_ = estimator.feature_names_in_

    # -- delegation to the best estimator ------------------------------------------------

    def score(self, X: Any, y: Any = None) -> float:
        """The score of ``best_estimator_`` on ``X``, ``y``, with the search's ``scoring``."""
        if not self.refit:
            raise AttributeError("score needs refit=True (refit the best params yourself)")
        check_is_fitted(self)
        return float(self.scorer_(self.best_estimator_, X, y))

    @_if_delegates("predict")
    def predict(self, X: Any) -> Any:
        """``best_estimator_.predict(X)``."""
        check_is_fitted(self)
        return self.best_estimator_.predict(X)

    @_if_delegates("predict_proba")
    def predict_proba(self, X: Any) -> Any:
        """``best_estimator_.predict_proba(X)``."""
        check_is_fitted(self)
        return self.best_estimator_.predict_proba(X)

    @_if_delegates("predict_log_proba")
    def predict_log_proba(self, X: Any) -> Any:
        """``best_estimator_.predict_log_proba(X)``."""
        check_is_fitted(self)
        return self.best_estimator_.predict_log_proba(X)

    @_if_delegates("decision_function")
    def decision_function(self, X: Any) -> Any:
        """``best_estimator_.decision_function(X)``."""
        check_is_fitted(self)
        return self.best_estimator_.decision_function(X)

    @_if_delegates("score_samples")
    def score_samples(self, X: Any) -> Any:
        """``best_estimator_.score_samples(X)``."""
        check_is_fitted(self)
        return self.best_estimator_.score_samples(X)

    @_if_delegates("transform")
    def transform(self, X: Any) -> Any:
        """``best_estimator_.transform(X)``."""
        check_is_fitted(self)
        return self.best_estimator_.transform(X)

    @_if_delegates("inverse_transform")
    def inverse_transform(self, X: Any) -> Any:
        """``best_estimator_.inverse_transform(X)``."""
        check_is_fitted(self)
        return self.best_estimator_.inverse_transform(X)

    @property
    def classes_(self) -> Any:
        """The classes of ``best_estimator_`` (classifiers)."""
        _delegates("classes_")(self)
        return self.best_estimator_.classes_

    @property
    def n_features_in_(self) -> int:
        """The number of features ``best_estimator_`` was fitted on."""
        check_is_fitted(self)
        if not self.refit:
            raise AttributeError("n_features_in_ needs refit=True")
        return int(self.best_estimator_.n_features_in_)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "cv_results_")


class _CrossValidation:
    """The objective of a :class:`TuneSearchCV` trial: cross-validate one candidate.

    A top-level class so that it pickles to the worker processes. It reports
    each fold's test score as step ``k`` (1-based) and writes the fold details
    (scores and times) to ``records/<trial number>.json`` for ``cv_results_``.
    """

    def __init__(
        self,
        *,
        estimator: Any,
        X: Any,
        y: Any,
        splits: list[tuple[Any, Any]],
        scorer: Any,
        fit_params: dict[str, Any],
        error_score: float | str,
        return_train_score: bool,
        weigh_scores: bool = False,
    ) -> None:
        self.estimator = estimator
        self.X = X
        self.y = y
        self.splits = splits
        self.scorer = scorer
        self.fit_params = fit_params
        self.error_score = error_score
        self.return_train_score = return_train_score
        self.weigh_scores = weigh_scores
        self.records = ""

    def __call__(self, params: dict[str, Any], trial: RunningTrial) -> float:
        estimator = clone(self.estimator).set_params(**params)
        folds: dict[str, list[Any]] = {"test": [], "train": [], "fit_time": [], "score_time": []}
        try:
            for k, (train, test) in enumerate(self.splits, start=1):
                X_train, y_train = _safe_split(estimator, self.X, self.y, train)
                X_test, y_test = _safe_split(estimator, self.X, self.y, test, train)
                started = time.perf_counter()
                try:
                    fold_params = _fold_params(self.fit_params, train, _num_samples(self.X))
                    if y_train is None:
                        estimator.fit(X_train, **fold_params)
                    else:
                        estimator.fit(X_train, y_train, **fold_params)
                except Exception:
                    folds["fit_time"].append(time.perf_counter() - started)
                    raise
                folds["fit_time"].append(time.perf_counter() - started)
                started = time.perf_counter()
                score = float(self.scorer(estimator, X_test, y_test, **self._weights(test)))
                folds["score_time"].append(time.perf_counter() - started)
                if self.return_train_score:
                    weights = self._weights(train)
                    folds["train"].append(
                        float(self.scorer(estimator, X_train, y_train, **weights))
                    )
                folds["test"].append(score)
                if not math.isfinite(score):
                    raise ValueError(f"the scorer returned {score} on fold {k}")
                trial.report(score, k)
        except Pruned:
            raise
        except Exception as exc:
            if self.error_score == "raise":  # fit() re-raises it, as GridSearchCV does
                folds["exception"] = [_pickled(exc)]
            raise
        finally:
            if self.records:
                path = Path(self.records, f"{trial.number}.json")
                path.write_bytes(orjson.dumps(folds, option=orjson.OPT_SERIALIZE_NUMPY))
        return float(np.mean(folds["test"]))

    def _weights(self, rows: Any) -> dict[str, Any]:
        """The scorer's ``sample_weight`` for ``rows`` (as GridSearchCV gives it), if any."""
        if not self.weigh_scores:
            return {}
        return {"sample_weight": _safe_indexing(self.fit_params["sample_weight"], rows)}


def _accepts_weights(scorer: Any) -> bool:
    """Whether ``scorer`` takes ``sample_weight`` (GridSearchCV then passes it the fold's)."""
    accepts = getattr(scorer, "_accept_sample_weight", None)
    if accepts is not None:
        return bool(accepts())
    try:
        return "sample_weight" in inspect.signature(scorer).parameters
    except (TypeError, ValueError):
        return False


def _pickled(exc: BaseException) -> str:
    try:
        return base64.b64encode(pickle.dumps(exc)).decode()
    except Exception:  # an exception that does not pickle: SearchFailedError says what it was
        return ""


def _unpickled(blob: object) -> BaseException | None:
    try:
        exc = pickle.loads(base64.b64decode(str(blob)))
    except Exception:
        return None
    return exc if isinstance(exc, BaseException) else None


class _StopOnFailure:
    """With ``error_score="raise"``: the first failed trial ends the search."""

    async def on_trial(self, trial: Trial, tuner: StudyHandle) -> None:
        if trial.status is TrialStatus.FAILED:
            tuner.stop(f"trial {trial.number} failed and error_score='raise'")


def _fold_params(fit_params: dict[str, Any], train: Any, n_samples: int) -> dict[str, Any]:
    """``fit_params`` with per-sample arrays (one value per row of X) cut to the training rows."""
    out = {}
    for name, value in fit_params.items():
        per_sample = hasattr(value, "__len__") and not isinstance(value, (str, bytes, dict))
        out[name] = (
            _safe_indexing(value, train) if per_sample and len(value) == n_samples else value
        )
    return out


def _read_records(records: str, trials: Sequence[Trial]) -> dict[int, dict[str, list[Any]]]:
    found: dict[int, dict[str, list[Any]]] = {}
    for trial in trials:
        path = os.path.join(records, f"{trial.number}.json")
        try:
            with open(path, "rb") as file:
                found[trial.number] = orjson.loads(file.read())
        except (OSError, orjson.JSONDecodeError):  # a killed (timed-out) trial wrote nothing
            continue
    return found


def _cv_results(
    trials: Sequence[Trial],
    folds: dict[int, dict[str, list[Any]]],
    n_splits: int,
    error_score: float | str,
    return_train_score: bool,
) -> dict[str, Any]:
    """``GridSearchCV``'s ``cv_results_`` for the trials, one row each, in number order."""
    n = len(trials)
    failed_value = np.nan if error_score == "raise" else float(error_score)

    def column(kind: str, trial: Trial) -> list[float]:
        values = list(folds.get(trial.number, {}).get(kind, []))
        filler = failed_value if trial.status is TrialStatus.FAILED else np.nan
        return values[:n_splits] + [filler] * (n_splits - len(values))

    results: dict[str, Any] = {}
    for kind in ("fit_time", "score_time"):
        table = np.array([column(kind, t) for t in trials], dtype=float).reshape(n, n_splits)
        results[f"mean_{kind}"] = np.nanmean(table, axis=1) if table.size else table[:, 0]
        results[f"std_{kind}"] = _nanstd(table)
    names = list(dict.fromkeys(name for t in trials for name in t.params))
    for name in names:
        values = [t.params.get(name) for t in trials]
        kinds = {type(v) for v in values}
        dtype = float if kinds <= {float, int} and kinds != {int} else object
        if kinds == {int}:
            dtype = int
        column_values = np.ma.MaskedArray(np.empty(n, dtype=dtype), mask=True)
        for i, t in enumerate(trials):
            if name in t.params:
                column_values[i] = t.params[name]
        results[f"param_{name}"] = column_values
    results["params"] = [dict(t.params) for t in trials]
    for kind in ("test", "train") if return_train_score else ("test",):
        table = np.array([column(kind, t) for t in trials], dtype=float).reshape(n, n_splits)
        for k in range(n_splits):
            results[f"split{k}_{kind}_score"] = table[:, k]
        complete = np.array([t.status is TrialStatus.COMPLETE for t in trials], dtype=bool)
        failed = np.array([t.status is TrialStatus.FAILED for t in trials], dtype=bool)
        means = np.where(complete, np.mean(table, axis=1), np.nan)
        means = np.where(failed, failed_value, means)
        results[f"mean_{kind}_score"] = means
        results[f"std_{kind}_score"] = np.where(complete, np.std(table, axis=1), np.nan)
        if kind == "test":
            results["rank_test_score"] = _rank(means)
    results["number"] = np.array([t.number for t in trials], dtype=int)
    results["status"] = np.array([t.status.value for t in trials], dtype=object)
    return results


def _nanstd(table: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    out = np.full(table.shape[0], np.nan)
    for i, row in enumerate(table):
        row = row[~np.isnan(row)]
        if row.size:
            out[i] = row.std()
    return out


def _rank(means: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """1 for the best mean; ties share the lowest rank; NaN ranks last (like ``GridSearchCV``)."""
    filled = np.where(np.isnan(means), -np.inf, means)
    order = np.sort(filled)[::-1]
    return np.array([int(np.searchsorted(-order, -m, side="left")) + 1 for m in filled], dtype=int)


__all__ = ["SearchFailedError", "TuneSearchCV"]
