"""A one-seed smoke run of every benchmark script, so they cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"

SMOKE = {
    "overhead.py": [
        "--trials", "40", "--batched-trials", "200", "--busy-trials", "4", "--repeats", "1",
    ],
    "journal.py": ["--trials", "500", "--repeats", "1"],
    "pool_ceiling.py": ["--trials", "50", "--repeats", "1"],
    "failures.py": ["--repeats", "1"],
    "quality.py": [
        "--seeds", "1", "--budgets", "12", "--problems", "branin,paraboloid_noisy",
        "--concurrency", "1", "--methods", "Bayesian,Random",
    ],
    "quality.py core ranked": [
        "--core", "--seeds", "2", "--first-seed", "3", "--budgets", "8,12", "--problems", "branin",
        "--concurrency", "1", "--methods", "Random", "--cache", "runs.json",
    ],
    "pruning.py": ["--seeds", "1", "--trials", "6", "--mode", "tune"],
    "pruning.py compare": [
        "--mode", "compare", "--seeds", "1", "--budget", "60", "--budgets", "30,60",
        "--concurrency", "1", "--methods", "Random+ASHA,Bayesian+ASHA",
    ],
    "pruning.py compare cv": [
        "--mode", "compare", "--task", "cv", "--seeds", "1", "--trials", "6", "--budget", "30",
        "--budgets", "30", "--concurrency", "1", "--methods", "Random+ASHA,Bayesian+ASHA",
        "--cache", "cache.json",
    ],
    "pruning.py noise": ["--mode", "noise", "--trials", "2", "--seeds", "2"],
    "conditional.py": [
        "--seeds", "1", "--ml-seeds", "1", "--budgets", "1,2", "--methods", "Flat,Random",
    ],
    "service.py": ["--studies", "3", "--trials", "4", "--clients", "2"],
    "views.py": ["--trials", "30", "--big", "60", "--viewers", "2", "--seconds", "2",
                 "--repeats", "1", "--appends", "1"],
    "multiobjective.py": [
        "--seeds", "1", "--budgets", "12", "--problems", "zdt1,cbranin,rfsize,rfbudget",
        "--methods", "Bayesian,Random",
    ],
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(SMOKE))
def test_benchmark_smoke_run(script: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script.split()[0]), *SMOKE[script]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip()  # printed its results


def test_every_benchmark_has_a_smoke_run() -> None:
    scripts = {p.name for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_")}
    assert scripts == {run.split()[0] for run in SMOKE} | {"dask_overhead.py"}
