"""The aiotune command on real journals: what it prints, and its exit codes."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import aiotune as at
from aiotune.cli import main
from views_study import make_study


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, at.TuningResult]:
    path = tmp_path_factory.mktemp("cli") / "trials.jsonl"
    result = asyncio.run(make_study(path, trials=24))
    return path, result


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aiotune", *args], capture_output=True, text=True, timeout=60
    )


def test_show_prints_counts_best_top_and_durations(
    study: tuple[Path, at.TuningResult], capsys: pytest.CaptureFixture[str]
) -> None:
    path, result = study
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    counts = result.status_counts()
    assert f"{len(result.trials)} trials: {counts[at.TrialStatus.COMPLETE]} complete" in out
    assert f"{counts[at.TrialStatus.FAILED]} failed" in out
    assert f"best: trial {result.best.number}, score {result.best.score:.6g}" in out
    assert f"  layers = {result.best.params['layers']}" in out
    top_block = out.split("by score:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert top_block[0].split()[:3] == ["#", "score", "duration"]
    assert top_block[1].split()[0] == str(result.best.number)
    assert len(top_block) == 1 + min(10, counts[at.TrialStatus.COMPLETE])
    assert "durations (s): mean" in out
    assert "errors: " in out
    assert "ValueError" in out


def test_best_json_is_the_best_trial(
    study: tuple[Path, at.TuningResult], capsys: pytest.CaptureFixture[str]
) -> None:
    path, result = study
    assert main(["best", str(path), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record == {
        "number": result.best.number,
        "params": result.best.params,
        "score": result.best.score,
        "status": "complete",
    }


def test_trials_filters_sorts_limits_and_formats(
    study: tuple[Path, at.TuningResult], capsys: pytest.CaptureFixture[str]
) -> None:
    path, result = study
    assert main(["trials", str(path), "--status", "failed", "--format", "json"]) == 0
    failed = json.loads(capsys.readouterr().out)
    assert [r["number"] for r in failed] == [
        t.number for t in result.trials if t.status is at.TrialStatus.FAILED
    ]
    assert failed
    assert all(r["error"].startswith("ValueError: <img") for r in failed)

    assert main(["trials", str(path), "--sort", "score", "--limit", "3", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 3
    assert int(rows[0]["number"]) == result.best.number
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert set(rows[0]) >= {"number", "status", "score", "duration", "lr", "opt", "error"}

    assert main(["trials", str(path), "--sort", "duration", "--limit", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["number", "status", "score", "duration"]
    longest = max(result.trials, key=lambda t: t.duration or 0.0)
    assert lines[1].split()[0] == str(longest.number)
    assert len(lines) == 3


def test_torn_journal_is_read_with_a_warning(
    study: tuple[Path, at.TuningResult], tmp_path: Path
) -> None:
    path, result = study
    torn = tmp_path / "torn.jsonl"
    torn.write_bytes(path.read_bytes() + b'{"kind": "trial", "number": 999, "par')
    done = run_cli("show", str(torn))
    assert done.returncode == 0, done.stderr
    assert f"{len(result.trials)} trials" in done.stdout
    assert "line" in done.stderr
    assert "torn" in done.stderr
    assert "Traceback" not in done.stderr


def test_corrupt_journal_names_its_line_and_exits_1_without_a_traceback(
    study: tuple[Path, at.TuningResult], tmp_path: Path
) -> None:
    path, _ = study
    lines = path.read_text().splitlines(keepends=True)
    lines[4] = '{"kind": "trial", oops\n'
    corrupt = tmp_path / "corrupt.jsonl"
    corrupt.write_text("".join(lines))
    for command in ("show", "best", "trials"):
        done = run_cli(command, str(corrupt))
        assert done.returncode == 1, command
        assert f"aiotune: error: {corrupt}, line 5: not valid JSON" in done.stderr
        assert "Traceback" not in done.stderr
        assert done.stdout == ""


def test_missing_file_exits_1_and_usage_errors_exit_2(tmp_path: Path) -> None:
    done = run_cli("show", str(tmp_path / "nope.jsonl"))
    assert done.returncode == 1
    assert "no such file" in done.stderr
    assert "Traceback" not in done.stderr
    assert run_cli().returncode == 2  # no command
    assert run_cli("frobnicate", "x.jsonl").returncode == 2
    assert run_cli("trials", "x.jsonl", "--sort", "colour").returncode == 2
    assert run_cli("trials", "x.jsonl", "--limit", "0").returncode == 2


def test_best_of_a_study_without_a_complete_trial_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def failing(params: dict[str, object]) -> float:
        raise RuntimeError("nope")

    path = tmp_path / "failed.jsonl"
    at.run(failing, at.Space(x=at.Int(0, 3)), max_trials=2, observers=[at.JsonlWriter(path)])
    assert main(["best", str(path)]) == 1
    assert "no trial completed" in capsys.readouterr().err


def test_every_command_has_help_and_the_console_script_runs(
    study: tuple[Path, at.TuningResult],
) -> None:
    for command in ("show", "best", "trials", "report", "serve"):
        done = run_cli(command, "--help")
        assert done.returncode == 0
        assert f"usage: aiotune {command}" in done.stdout
    script = shutil.which("aiotune", path=str(Path(sys.executable).parent))
    assert script is not None, "the aiotune console script is not installed"
    done = subprocess.run(
        [script, "best", str(study[0])], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert done.stdout.startswith(f"trial {study[1].best.number}: score")


def test_several_journals_of_one_study_are_merged_and_of_two_studies_refused(
    study: tuple[Path, at.TuningResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, result = study
    other = tmp_path / "other.jsonl"
    asyncio.run(make_study(other, trials=2, seed=5))
    assert main(["trials", str(path), str(other), "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == len(result.trials) + 2
    assert {r["journal"] for r in records} == {str(path), str(other)}

    different = tmp_path / "different.jsonl"
    at.run(_sum, at.Space(x=at.Int(0, 3)), max_trials=1, observers=[at.JsonlWriter(different)])
    assert main(["show", str(path), str(different)]) == 1
    assert "records a different study" in capsys.readouterr().err


async def _sum(params: dict[str, int]) -> float:
    return float(params["x"])
