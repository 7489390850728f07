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
from aiotune.views import summary
from views_study import MO_DIRECTIONS, make_mo_study, make_study


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


# -- several objectives and constraints ---------------------------------------------------


@pytest.fixture(scope="module")
def mo_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, at.TuningResult]:
    path = tmp_path_factory.mktemp("cli-mo") / "mo.jsonl"
    result = asyncio.run(make_mo_study(path, trials=40))
    return path, result


def test_the_study_has_a_front_and_infeasible_trials(
    mo_study: tuple[Path, at.TuningResult],
) -> None:
    _, result = mo_study
    front = result.pareto_front
    assert 2 <= len(front) < len(result.trials)
    assert any(t.is_complete and not t.feasible for t in result.trials)
    # and the views' fast two-objective front is the engine's
    assert summary.front(result.trials, result.direction) == list(front)


def test_show_of_a_multi_objective_study_prints_the_front_not_a_best(
    mo_study: tuple[Path, at.TuningResult], capsys: pytest.CaptureFixture[str]
) -> None:
    path, result = mo_study
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "(maximize, minimize)" in out
    assert "multi-objective" in out
    assert "best:" not in out
    broken = [t for t in result.trials if t.is_complete and not t.feasible]
    assert f"infeasible: {len(broken)} complete trial(s)" in out
    block = out.split("none beaten by another:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert block[0].split()[:4] == ["#", "score1", "score2", "duration"]
    assert [int(line.split()[0]) for line in block[1:]] == [t.number for t in result.pareto_front]
    first = result.pareto_front[0]
    assert block[1].split()[1:3] == [f"{first.scores[0]:.6g}", f"{first.scores[1]:.6g}"]


def test_best_of_a_multi_objective_study_lists_the_front_and_json_has_its_shape(
    mo_study: tuple[Path, at.TuningResult], capsys: pytest.CaptureFixture[str]
) -> None:
    path, result = mo_study
    assert main(["best", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"multi-objective (maximize, minimize): no single best; "
                          f"the Pareto front has {len(result.pareto_front)} trial(s):")  # fmt: skip
    listed = [
        int(line.split()[1].rstrip(":")) for line in out.splitlines() if line.startswith("trial ")
    ]
    assert listed == [t.number for t in result.pareto_front]

    assert main(["best", str(path), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record == {
        "directions": ["maximize", "minimize"],
        "pareto_front": [
            {"number": t.number, "params": t.params, "scores": list(t.scores), "status": "complete"}
            for t in result.pareto_front
        ],
    }


def test_trials_of_a_multi_objective_study_show_every_score_and_feasibility(
    mo_study: tuple[Path, at.TuningResult], capsys: pytest.CaptureFixture[str]
) -> None:
    path, result = mo_study
    assert main(["trials", str(path), "--sort", "score", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0])[:5] == ["number", "status", "scores.0", "scores.1", "feasible"]
    firsts = [float(r["scores.0"]) for r in rows if r["scores.0"]]
    assert firsts == sorted(firsts, reverse=True)  # the first objective is maximised
    by_number = {t.number: t for t in result.trials}
    for row in rows:
        trial = by_number[int(row["number"])]
        assert row["feasible"] == ("yes" if trial.feasible else "no")
        assert float(row["scores.1"]) == pytest.approx(trial.scores[1], rel=1e-5)

    assert main(["trials", str(path), "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["scores"] for r in records] == [list(t.scores) for t in result.trials]
    assert [r["feasible"] for r in records] == [t.feasible for t in result.trials]


def test_a_constrained_study_reports_its_best_feasible_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def constrained(params: dict[str, int]) -> at.Outcome:
        return at.Outcome(float(params["x"]), constraints=(params["x"] - 6.0,))  # x <= 6

    path = tmp_path / "constrained.jsonl"
    result = at.run(
        constrained, at.Space(x=at.Int(0, 9)), strategy=at.Grid(), observers=[at.JsonlWriter(path)]
    )
    assert result.best.number == 6  # x = 9 scores more but breaks the constraint
    assert main(["best", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["number"] == 6
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "infeasible: 3 complete trial(s)" in out
    assert "best: trial 6, score 6" in out
    top = out.split("by score (feasible):\n", 1)[1].splitlines()
    assert [line.split()[0] for line in top[1:8]] == ["6", "5", "4", "3", "2", "1", "0"]

    async def never(params: dict[str, int]) -> at.Outcome:
        return at.Outcome(1.0, constraints=(1.0,))

    broken = tmp_path / "broken.jsonl"
    at.run(never, at.Space(x=at.Int(0, 2)), strategy=at.Grid(), observers=[at.JsonlWriter(broken)])
    assert main(["best", str(broken)]) == 1
    assert "no complete trial is feasible" in capsys.readouterr().err


def test_a_multi_objective_study_with_no_feasible_trial_has_an_empty_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def never(params: dict[str, int]) -> at.Outcome:
        return at.Outcome((1.0, 2.0), constraints=(1.0,))

    path = tmp_path / "never.jsonl"
    at.run(
        never, at.Space(x=at.Int(0, 2)), strategy=at.Grid(), direction=MO_DIRECTIONS,
        observers=[at.JsonlWriter(path)],
    )  # fmt: skip
    assert main(["show", str(path)]) == 0
    assert "Pareto front: empty" in capsys.readouterr().out
    assert main(["best", str(path), "--json"]) == 1
    assert "the Pareto front is empty" in capsys.readouterr().err
