"""Pruning for XGBoost training (``pip install 'aiotune[xgboost]'``): :class:`ReportCallback`.

In an objective that takes the trial context, pass the callback to
``xgboost.train`` (or an ``XGBModel``'s ``callbacks=``); it reports the chosen
evaluation metric to aiotune after each boosting round, so a ``pruner``
(``at.ASHA()``, ``at.MedianPruner()``) stops a hopeless booster early::

    def objective(params, trial):
        booster = xgboost.train(
            {**params, "objective": "binary:logistic", "eval_metric": "logloss"},
            dtrain, num_boost_round=200, evals=[(dvalid, "valid")],
            callbacks=[ReportCallback(trial, "logloss")],
        )
        return float(booster.eval(dvalid).split(":")[1])

    at.run(objective, space, direction="minimize", pruner=at.ASHA(max_resource=200))

Report a metric in the study's ``direction``: a loss for ``"minimize"``, an
AUC for ``"maximize"``. Importing this module imports XGBoost; without it,
the import raises :class:`aiotune.MissingExtraError` naming the ``xgboost`` extra.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiotune._checks import check_int
from aiotune.errors import ConfigurationError, MissingExtraError

try:
    from xgboost.callback import TrainingCallback
except ImportError:  # pragma: no cover - exercised with the import blocked by the tests
    raise MissingExtraError("aiotune.integrations.xgboost", "xgboost") from None


class _Reports(Protocol):
    def report(self, value: float, step: int | None = None) -> None: ...


class ReportCallback(TrainingCallback):
    """An XGBoost callback that calls ``trial.report(value, round)`` every ``every`` rounds.

    ``metric`` is the evaluation metric's name as XGBoost logs it (e.g.
    ``"logloss"``, ``"auc"``, ``"rmse"``); ``data_name`` picks the evaluation
    set (default: the last one in ``evals``, the one XGBoost's early stopping
    watches). The step is the number of boosting rounds done (1, 2, ...).
    When the pruner says stop, ``trial.report`` raises :class:`aiotune.Pruned`
    out of ``xgboost.train``: let it propagate. A metric or data set that is not
    evaluated raises :class:`aiotune.ConfigurationError` at the first round.
    """

    def __init__(
        self, trial: _Reports, metric: str, *, data_name: str | None = None, every: int = 1
    ) -> None:
        check_int("every", every, 1)
        super().__init__()
        self.trial = trial
        self.metric = metric
        self.data_name = data_name
        self.every = every

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        """Report this round's value (every ``every`` rounds); never asks XGBoost to stop."""
        step = epoch + 1
        if step % self.every == 0:
            self.trial.report(self._value(evals_log), step)
        return False

    def _value(self, evals_log: Any) -> float:
        names = list(evals_log)
        name = self.data_name if self.data_name is not None else (names[-1] if names else None)
        values = evals_log.get(name, {}).get(self.metric) if name is not None else None
        if not values:
            evaluated = sorted(f"{d}/{m}" for d in evals_log for m in evals_log[d]) or ["nothing"]
            wanted = self.metric if self.data_name is None else f"{self.data_name}/{self.metric}"
            raise ConfigurationError(
                "metric",
                f"{wanted} is not evaluated by this training (evaluated: {', '.join(evaluated)}); "
                "pass evals=[(dvalid, 'valid')] and set eval_metric in params",
            )
        last = values[-1]
        return float(last[0] if isinstance(last, tuple) else last)  # xgboost.cv: (mean, std)


__all__ = ["ReportCallback"]
