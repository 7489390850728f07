"""MLflowTracker: a study logged to a real MLflow store (sqlite), read back with MLflow."""

from __future__ import annotations

import importlib.util
import math
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow.tracking import MlflowClient

import aiotune as at
from aiotune.integrations.mlflow import MLflowTracker

SPACE = at.Space(x=at.Float(-2.0, 2.0), kind=at.Categorical(["a", "b"]))


async def curve(params: dict[str, Any], trial: at.RunningTrial) -> float:
    """Reports three intermediate values; fails for x > 1.5."""
    if params["x"] > 1.5:
        raise ValueError(f"x={params['x']} is out of range")
    for step in (1, 2, 3):
        trial.report(-(params["x"] ** 2) * step / 3, step)
    return -(params["x"] ** 2)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite store for the module (creating one runs MLflow's migrations: seconds)."""
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(store_path: Path) -> str:
    return f"sqlite:///{store_path}"


def runs(store: str, experiment: str) -> Any:
    mlflow.set_tracking_uri(store)
    try:
        return mlflow.search_runs(experiment_names=[experiment], order_by=["start_time ASC"])
    finally:
        mlflow.set_tracking_uri(None)


@pytest.mark.slow
async def test_logs_a_parent_run_and_a_nested_run_per_trial(store: str) -> None:
    tracker = MLflowTracker(store, experiment="quadratic")
    result = await at.tune(
        curve, SPACE, strategy=at.Random(seed=3), max_trials=8, observers=[tracker]
    )
    assert result.observer_errors == ()
    failed = [t for t in result.trials if t.status is at.TrialStatus.FAILED]
    assert failed, "the seed should give a failing trial (x > 1.5)"

    table = runs(store, "quadratic")
    parent = table[table["tags.aiotune.role"] == "study"]
    children = table[table["tags.mlflow.parentRunId"] == tracker.run_id]
    assert len(parent) == 1
    assert len(children) == len(result.trials) == 8
    row = parent.iloc[0]
    assert row["run_id"] == tracker.run_id
    assert row["status"] == "FINISHED"
    assert row["params.direction"] == "maximize"
    assert row["params.strategy"] == "Random(seed=3)"
    assert row["params.space.x"] == repr(SPACE["x"])
    assert row["tags.aiotune.fingerprint"] == SPACE.fingerprint
    assert row["metrics.best_score"] == pytest.approx(result.best.score)

    for trial in result.trials:
        rows = children[children["tags.aiotune.trial"] == str(trial.number)]
        assert len(rows) == 1
        child = rows.iloc[0]
        assert child["tags.mlflow.runName"] == f"trial {trial.number}"
        assert child["tags.aiotune.status"] == trial.status.value
        assert child["params.kind"] == trial.params["kind"]
        assert float(child["params.x"]) == trial.params["x"]
        assert child["metrics.duration"] == pytest.approx(trial.duration)
        if trial.is_complete:
            assert child["status"] == "FINISHED"
            assert child["metrics.score"] == pytest.approx(trial.score)
            assert not isinstance(child.get("tags.aiotune.error"), str)
        else:
            assert child["status"] == "FAILED"
            assert math.isnan(child["metrics.score"])
            assert "is out of range" in child["tags.aiotune.error"]
            assert child["tags.aiotune.error"].startswith("ValueError: ")

    client = MlflowClient(store)
    best = client.get_metric_history(tracker.run_id, "best_score")
    scores = [m.value for m in sorted(best, key=lambda m: m.step)]
    assert scores == sorted(scores)  # logged each time it improved, never worse
    assert scores[-1] == pytest.approx(result.best.score)
    trial = result.best
    [child_id] = children[children["tags.aiotune.trial"] == str(trial.number)]["run_id"]
    history = client.get_metric_history(child_id, "intermediate")
    assert {m.step: m.value for m in history} == pytest.approx(dict(trial.intermediate))


@pytest.mark.slow
async def test_a_resumed_study_continues_its_parent_run(store: str, tmp_path: Path) -> None:
    journal = tmp_path / "trials.jsonl"

    async def study(trials: int, **resume: Any) -> tuple[at.TuningResult, MLflowTracker]:
        tracker = MLflowTracker(store, experiment="resumed")
        result = await at.tune(
            curve,
            SPACE,
            strategy=at.Random(seed=5),
            max_trials=trials,
            concurrency=1,
            observers=[at.JsonlWriter(journal), tracker],
            **resume,
        )
        assert result.observer_errors == ()
        return result, tracker

    _, first = await study(3)
    result, second = await study(6, resume=journal)
    assert second.run_id == first.run_id

    table = runs(store, "resumed")
    assert (table["tags.aiotune.role"] == "study").sum() == 1
    children = table[table["tags.mlflow.parentRunId"] == first.run_id]
    logged = sorted(int(n) for n in children["tags.aiotune.trial"])
    assert logged == [t.number for t in result.trials] == [0, 1, 2, 3, 4, 5]

    # a named study finds its parent run by name, resumed or not
    named = MLflowTracker(store, experiment="resumed", study="named")
    await at.tune(curve, SPACE, max_trials=1, observers=[named])
    again = MLflowTracker(store, experiment="resumed", study="named")
    await at.tune(curve, SPACE, max_trials=1, observers=[again])
    assert again.run_id == named.run_id != first.run_id


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
async def test_an_unreachable_server_fails_the_tracker_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # MLflow retries HTTP requests with backoff for minutes by default: not here.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    tracker = MLflowTracker(f"http://127.0.0.1:{_closed_port()}", experiment="nowhere")
    result = await at.tune(
        curve, SPACE, strategy=at.Random(seed=0), max_trials=4, observers=[tracker]
    )

    assert len(result.trials) == 4
    assert all(t.status is not at.TrialStatus.CANCELLED for t in result.trials)
    [failure] = result.observer_errors
    assert failure.observer == repr(tracker)
    assert failure.hook == "on_trial"  # the parent run opens with the first trial
    assert "127.0.0.1" in failure.error.message


def test_without_mlflow_the_tracker_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['mlflow'] = None\n"
        "import aiotune as at\n"
        "from aiotune.integrations.mlflow import MLflowTracker\n"
        "try:\n"
        "    MLflowTracker()\n"
        "except at.MissingExtraError as exc:\n"
        "    print(exc.extra)\n"
    )
    assert importlib.util.find_spec("mlflow") is not None
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "mlflow", done.stderr


def test_a_study_name_with_quotes_is_refused() -> None:
    with pytest.raises(at.ConfigurationError, match="study"):
        MLflowTracker(study="it's")


@pytest.mark.slow
def test_the_example_runs(tmp_path: Path, store_path: Path) -> None:
    example = Path(__file__).parent.parent / "examples" / "mlflow_tracking.py"
    done = subprocess.run(
        [sys.executable, str(example), "--trials", "4", "--db", str(store_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert f": 4 nested trial runs in sqlite:///{store_path}" in done.stdout
