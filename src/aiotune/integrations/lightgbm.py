"""Pruning for LightGBM training (``pip install 'aiotune[lightgbm]'``): :func:`report_callback`.

In an objective that takes the trial context, pass the callback to
``lightgbm.train`` (or ``LGBMModel.fit(callbacks=...)``); it reports the
chosen validation metric to aiotune after each boosting round, so a
``pruner`` (``at.ASHA()``, ``at.MedianPruner()``) stops a hopeless booster
early::

    def objective(params, trial):
        booster = lightgbm.train(
            {**params, "objective": "binary", "metric": "binary_logloss", "verbose": -1},
            train_set, num_boost_round=200, valid_sets=[valid_set],
            callbacks=[report_callback(trial, "binary_logloss")],
        )
        return booster.best_score["valid_0"]["binary_logloss"]

    at.run(objective, space, direction="minimize", pruner=at.ASHA(max_resource=200))

Report a metric in the study's ``direction``: a loss for ``"minimize"``, an
AUC or accuracy for ``"maximize"``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol

from aiotune._checks import check_int
from aiotune.errors import ConfigurationError, MissingExtraError


class _Reports(Protocol):
    def report(self, value: float, step: int | None = None) -> None: ...


def report_callback(
    trial: _Reports, metric: str, *, valid_name: str | None = None, every: int = 1
) -> Callable[[Any], None]:
    """A LightGBM callback that calls ``trial.report(value, round)`` every ``every`` rounds.

    ``metric`` is the evaluation metric's name as LightGBM reports it (e.g.
    ``"binary_logloss"``, ``"auc"``, ``"l2"``); ``valid_name`` picks the
    validation set (default: the first one that is not the training data).
    The step is the number of boosting rounds done (1, 2, ...). When the
    pruner says stop, ``trial.report`` raises :class:`aiotune.Pruned` out of
    ``lightgbm.train``: let it propagate. A metric or validation set that is
    not evaluated raises :class:`aiotune.ConfigurationError` at the first round.
    """
    try:
        importlib.import_module("lightgbm")
    except ImportError:
        raise MissingExtraError("aiotune.integrations.lightgbm", "lightgbm") from None
    check_int("every", every, 1)

    def _callback(env: Any) -> None:
        step = env.iteration - env.begin_iteration + 1
        if step % every:
            return
        trial.report(_value(env.evaluation_result_list, metric, valid_name), step)

    _callback.order = 30  # type: ignore[attr-defined]  # after LightGBM's own callbacks
    return _callback


def _value(results: list[tuple[Any, ...]], metric: str, valid_name: str | None) -> float:
    """The value of ``metric`` on the chosen validation set this round."""
    found = [r for r in results if r[1] == metric]
    if valid_name is not None:
        found = [r for r in found if r[0] == valid_name]
    else:  # LightGBM names the training data "training" when it is also a valid set
        found = [r for r in found if r[0] != "training"] or found
    if not found:
        evaluated = sorted({f"{r[0]}/{r[1]}" for r in results}) or ["nothing"]
        wanted = metric if valid_name is None else f"{valid_name}/{metric}"
        raise ConfigurationError(
            "metric",
            f"{wanted} is not evaluated by this training (evaluated: {', '.join(evaluated)}); "
            "pass valid_sets and set the metric in params",
        )
    return float(found[0][2])


__all__ = ["report_callback"]
