"""Log studies to MLflow (``pip install 'aiotune[mlflow]'``): :class:`MLflowTracker`.

An observer: one parent run per study, one nested run per finished trial::

    result = await at.tune(objective, space, max_trials=50,
                           observers=[MLflowTracker("sqlite:///mlflow.db", experiment="svm")])

Every MLflow call goes through ``mlflow.tracking.MlflowClient`` in a worker
thread, never through MLflow's global active run, so the event loop never
waits on the tracking store and several studies can log at once. The parent run
is opened when the first trial finishes, so a slow tracking server never
delays the first trial. A server that cannot be reached makes the tracker
raise: the study detaches it, lists it in ``result.observer_errors`` and goes on.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

import anyio
import orjson

from aiotune.errors import ConfigurationError, MissingExtraError
from aiotune.observers.base import StudyHandle
from aiotune.trial import Trial, TrialStatus, TuningResult, is_better

logger = logging.getLogger("aiotune")

_STATUS = {
    TrialStatus.COMPLETE: "FINISHED",
    TrialStatus.PRUNED: "FINISHED",
    TrialStatus.FAILED: "FAILED",
    TrialStatus.TIMEOUT: "FAILED",
    TrialStatus.CANCELLED: "KILLED",
}
_PARENT = "mlflow.parentRunId"
_RUN_NAME = "mlflow.runName"
_BATCH = 1000  # MLflow's limit of metrics per log_batch call
_TAG_LIMIT = 5000


def _installed() -> bool:
    try:
        return importlib.util.find_spec("mlflow") is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        return False


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)


class MLflowTracker:
    """An observer that logs a study to MLflow: a parent run, and a nested run per trial.

    ``tracking_uri``: where to log (``"sqlite:///mlflow.db"``, a directory,
    ``"http://host:5000"``; default: MLflow's own, from ``MLFLOW_TRACKING_URI``).
    ``experiment``: the experiment's name (created if missing; default:
    MLflow's default experiment).

    The parent run (tag ``aiotune.role=study``) holds the space (a param per
    parameter, and the whole space as JSON in the tag ``aiotune.space``), the
    strategy and the direction as params, and a ``best_score`` metric logged
    each time the best improves (its step is the trial number). Each finished
    trial gets a nested run named ``trial <number>`` with its params, the
    metrics ``score`` and ``duration``, each intermediate value as the metric
    ``intermediate`` at its step, the tag ``aiotune.status``, and for a trial
    that did not complete the error as the tag ``aiotune.error``.

    Resume: ``study=`` names the study (the tag ``aiotune.study``): a tracker
    with the same name finds that parent run and continues it. Without a
    name, a resumed study (one that starts with trials from its journal)
    continues the latest parent run of the experiment with the same space
    and direction; a fresh study starts a new parent run.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment: str | None = None,
        *,
        study: str | None = None,
    ) -> None:
        if not _installed():
            raise MissingExtraError("MLflowTracker", "mlflow")
        if study is not None and ("'" in study or not study):
            raise ConfigurationError("study", f"must be a non-empty name without quotes: {study!r}")
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.study = study
        self._client: Any = None
        self._experiment_id: str | None = None
        self._run_id: str | None = None
        self._direction: Any = "maximize"
        self._best: float | None = None
        self._pending: tuple[dict[str, Any], tuple[Trial, ...]] | None = None

    @property
    def run_id(self) -> str | None:
        """The parent run's id, once the study has started."""
        return self._run_id

    def __repr__(self) -> str:
        return f"MLflowTracker(tracking_uri={self.tracking_uri!r}, experiment={self.experiment!r})"

    # -- the observer hooks --------------------------------------------------------------

    async def on_start(self, tuner: StudyHandle) -> None:
        """Note what the parent run will hold (no I/O: trials wait for every ``on_start``)."""
        space = tuner.space
        self._direction = tuner.direction
        resumed = tuple(tuner.history.trials)
        best = tuner.history.best
        self._best = None if best is None else best.score
        study = {
            "space": {name: repr(domain) for name, domain in space.items()},
            "space_json": orjson.dumps(space.to_dict()).decode(),
            "fingerprint": space.fingerprint,
            "strategy": repr(tuner.strategy),
            "direction": tuner.direction,
        }
        self._pending = (study, resumed)

    async def on_trial(self, trial: Trial, tuner: StudyHandle) -> None:
        """Log ``trial`` as a nested run (opening the parent run first, the first time)."""
        await anyio.to_thread.run_sync(self._log_trial, trial)

    async def on_finish(self, result: TuningResult) -> None:
        """End the parent run."""
        await anyio.to_thread.run_sync(self._close, result)

    def _ensure_open(self) -> None:
        if self._pending is not None:
            study, resumed = self._pending
            self._pending = None
            self._open(study, resumed)

    # -- in a worker thread --------------------------------------------------------------

    def _connect(self) -> Any:
        try:
            tracking = importlib.import_module("mlflow.tracking")
        except ImportError:
            raise MissingExtraError("MLflowTracker", "mlflow") from None
        client = tracking.MlflowClient(tracking_uri=self.tracking_uri)
        if self.experiment is None:
            self._experiment_id = "0"  # MLflow's default experiment
        else:
            found = client.get_experiment_by_name(self.experiment)
            self._experiment_id = (
                found.experiment_id if found else client.create_experiment(self.experiment)
            )
        return client

    def _open(self, study: dict[str, Any], resumed: Sequence[Trial]) -> None:
        client = self._client = self._connect()
        previous = self._find_parent(client, study, resumed)
        if previous is not None:
            self._run_id = previous
            client.update_run(previous, status="RUNNING")
            logger.info("MLflowTracker: continuing parent run %s", previous)
            return
        tags = {
            "aiotune.role": "study",
            "aiotune.study": self.study or uuid.uuid4().hex,
            "aiotune.fingerprint": study["fingerprint"],
            "aiotune.direction": study["direction"],
            "aiotune.space": study["space_json"][:_TAG_LIMIT],
        }
        if self.study is not None:
            tags[_RUN_NAME] = self.study
        run = client.create_run(self._experiment_id, tags=tags)
        self._run_id = run.info.run_id
        entities = importlib.import_module("mlflow.entities")
        params = [entities.Param(f"space.{n}", d) for n, d in study["space"].items()]
        params += [
            entities.Param("strategy", study["strategy"][:_TAG_LIMIT]),
            entities.Param("direction", study["direction"]),
        ]
        client.log_batch(self._run_id, params=params)
        self._best = None
        for trial in resumed:  # a journal resumed without a parent run to continue
            self._log_trial(trial)

    def _find_parent(
        self, client: Any, study: dict[str, Any], resumed: Sequence[Trial]
    ) -> str | None:
        if self.study is not None:
            wanted = f"tags.`aiotune.study` = '{self.study}'"
        elif resumed:
            wanted = (
                f"tags.`aiotune.fingerprint` = '{study['fingerprint']}' "
                f"and tags.`aiotune.direction` = '{study['direction']}'"
            )
        else:
            return None
        runs = client.search_runs(
            [self._experiment_id],
            filter_string=f"tags.`aiotune.role` = 'study' and {wanted}",
            max_results=1,
            order_by=["attributes.start_time DESC"],
        )
        return str(runs[0].info.run_id) if runs else None

    def _log_trial(self, trial: Trial) -> None:
        self._ensure_open()
        client, parent = self._client, self._run_id
        if client is None or parent is None:
            return
        entities = importlib.import_module("mlflow.entities")
        tags = {
            _PARENT: parent,
            _RUN_NAME: f"trial {trial.number}",
            "aiotune.trial": str(trial.number),
            "aiotune.status": trial.status.value,
            "aiotune.attempts": str(trial.attempts),
        }
        if trial.error is not None:
            tags["aiotune.error"] = str(trial.error)[:_TAG_LIMIT]
        run = client.create_run(
            self._experiment_id, start_time=_ms(trial.started_at), tags=tags
        ).info.run_id
        stamp = _ms(trial.finished_at) or int(time.time() * 1000)
        metrics = [
            entities.Metric("intermediate", value, stamp, step)
            for step, value in sorted(trial.intermediate.items())
        ]
        if trial.score is not None:
            metrics.append(entities.Metric("score", trial.score, stamp, 0))
        if trial.duration is not None:
            metrics.append(entities.Metric("duration", trial.duration, stamp, 0))
        params = [entities.Param(name, str(value)) for name, value in trial.params.items()]
        client.log_batch(run, params=params, metrics=metrics[:_BATCH])
        for start in range(_BATCH, len(metrics), _BATCH):
            client.log_batch(run, metrics=metrics[start : start + _BATCH])
        client.set_terminated(run, status=_STATUS[trial.status], end_time=stamp)
        if trial.is_complete and trial.score is not None:
            if self._best is None or is_better(trial.score, self._best, self._direction):
                self._best = trial.score
                client.log_metric(parent, "best_score", trial.score, stamp, trial.number)

    def _close(self, result: TuningResult) -> None:
        self._ensure_open()
        if self._client is None or self._run_id is None:
            return
        if result.stop_reason is not None:
            self._client.set_tag(self._run_id, "aiotune.stop_reason", result.stop_reason)
        self._client.set_terminated(self._run_id, status="FINISHED")


__all__ = ["MLflowTracker"]
