"""Every example in examples/ runs, so the README cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import aiotune as at

EXAMPLES = Path(__file__).parent.parent / "examples"


def run_example(name: str, *args: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_quickstart_tunes_a_real_model_and_writes_its_journal(tmp_path: Path) -> None:
    out = run_example("quickstart.py", "--trials", "6", cwd=tmp_path)
    assert "best: trial" in out
    result = at.load(tmp_path / "trials.jsonl")
    assert len(result.trials) == 6
    assert result.best.score is not None
    assert 0.85 < result.best.score <= 1.0


@pytest.mark.slow
def test_embedded_service_keeps_the_loop_responsive(tmp_path: Path) -> None:
    out = run_example("embedded_service.py", cwd=tmp_path)
    assert out.count("trial ") >= 30
    assert "worst heartbeat lag" in out


# Examples that are packages, each with the test that runs it.
PACKAGES = {
    "service": "tests/test_service.py starts it with its documented command under real uvicorn",
}


def test_every_example_is_covered() -> None:
    tested = {"quickstart.py", "embedded_service.py", "dask_cluster.py"}
    # run in tests/test_integration_*.py
    tested |= {"sklearn_search.py", "lightgbm_pruning.py", "xgboost_pruning.py"}
    tested |= {"mlflow_tracking.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} <= tested
    packages = {p.name for p in EXAMPLES.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert packages <= set(PACKAGES)
