"""The JSONL journal: its format, ``JsonlWriter`` and ``read_journal``/``load``."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import orjson
import pytest

from aiotune.errors import ConfigurationError, JournalError
from aiotune.journal import Journal, JsonlWriter, load, read_journal
from aiotune.journal.format import FORMAT_VERSION, decode_trial, encode_header, encode_trial
from aiotune.observers.base import StudyHandle
from aiotune.space import Bool, Categorical, Float, Int, Space
from aiotune.trial import Direction, ErrorInfo, Trial, TrialStatus, TuningResult

SPACE = Space(
    lr=Float(1e-5, 1e-1, log=True),
    dropout=Float(0.0, 0.5, step=0.05),
    layers=Int(1, 8),
    optimizer=Categorical(("adam", "sgd", None, 1, 1.0)),
    batchnorm=Bool(),
)


@dataclass
class FakeTuner:
    """The bits of a running study an observer looks at."""

    space: Space = SPACE
    direction: Direction = "maximize"
    strategy: object = "Random(seed=0)"
    history: None = None
    stops: list[str] = field(default_factory=list)

    def stop(self, reason: str) -> None:
        self.stops.append(reason)

    def stop_after(self, delay: float, reason: str) -> None:
        self.stops.append(reason)


def fake_tuner(**changes: Any) -> StudyHandle:
    return cast("StudyHandle", FakeTuner(**changes))


def params(i: int) -> dict[str, Any]:
    return SPACE.validate(
        {
            "lr": 1e-5 * (1 + i % 1000),
            "dropout": 0.05 * (i % 11),
            "layers": 1 + i % 8,
            "optimizer": SPACE["optimizer"].choices[i % 5],  # type: ignore[attr-defined]
            "batchnorm": i % 2 == 0,
        }
    )


def trial(number: int, **changes: Any) -> Trial:
    base = Trial(
        number=number,
        params=params(number),
        status=TrialStatus.COMPLETE,
        score=number / 7,
        intermediate={0: 0.25, 1: 0.5, 5: number / 7},
        attempts=1,
        started_at=1_700_000_000.0 + number,
        finished_at=1_700_000_001.5 + number,
        duration=1.5,
        worker=f"pid-{4000 + number % 4}",
    )
    return replace(base, **changes)


def every_status() -> list[Trial]:
    boom = ErrorInfo("ValueError", "boom", 'Traceback (most recent call last):\n  File "x.py"\n')
    return [
        trial(0),
        trial(1, status=TrialStatus.FAILED, score=None, error=boom, intermediate={}),
        trial(2, status=TrialStatus.PRUNED, score=0.125, intermediate={0: 0.1, 3: 0.125}),
        trial(3, status=TrialStatus.TIMEOUT, score=None, error=ErrorInfo("Timeout", "over 5s")),
        trial(
            4,
            attempts=3,
            previous_errors=(ErrorInfo("WorkerCrash", "exit -9", ""), boom),
            worker=None,
        ),
        trial(5, score=-0.0, intermediate={}, started_at=None, finished_at=None, duration=None),
    ]


async def write(path: Path, trials: list[Trial], tuner: StudyHandle | None = None) -> None:
    writer = JsonlWriter(path)
    tuner = tuner or fake_tuner()
    await writer.on_start(tuner)
    await writer.on_trials(trials, tuner)
    await writer.on_finish(TuningResult(tuple(trials)))


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


# --- round trip ----------------------------------------------------------------


async def test_round_trip_every_status(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    trials = every_status()
    await write(path, trials)

    journal = read_journal(path)
    assert isinstance(journal, Journal)
    assert journal.trials == tuple(trials)
    assert journal.space == SPACE
    assert journal.direction == "maximize"
    assert journal.skipped_lines == ()
    assert journal.torn_tail is False
    assert journal.path == os.fspath(path)
    header = journal.header
    assert header["kind"] == "header"
    assert header["format"] == FORMAT_VERSION
    assert header["fingerprint"] == SPACE.fingerprint
    assert header["strategy"] == repr("Random(seed=0)")
    assert isinstance(header["aiotune"], str)
    assert isinstance(header["created_at"], float)
    assert "number" not in header

    result = load(str(path))
    assert result == TuningResult(trials=tuple(trials), direction="maximize", stop_reason=None)
    assert result.best.number == 4  # the highest score among complete trials


async def test_lines_are_flat_json_with_step_value_pairs(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    await write(path, [trial(3)])
    header, line = (orjson.loads(raw) for raw in lines_of(path))
    assert set(header) == {
        "kind",
        "format",
        "aiotune",
        "space",
        "fingerprint",
        "direction",
        "strategy",
        "created_at",
    }
    assert line["kind"] == "trial"
    assert line["number"] == 3
    assert line["status"] == "complete"
    assert line["intermediate"] == [[0, 0.25], [1, 0.5], [5, 3 / 7]]
    assert line["error"] is None
    assert line["previous_errors"] == []


async def test_trials_come_back_sorted_by_number(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    await write(path, [trial(2), trial(0), trial(1)])
    assert [t.number for t in read_journal(path).trials] == [0, 1, 2]


async def test_cancelled_trials_are_not_written(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    tuner = fake_tuner()
    writer = JsonlWriter(path)
    await writer.on_start(tuner)
    await writer.on_trials([trial(0), trial(1, status=TrialStatus.CANCELLED, score=None)], tuner)
    size = path.stat().st_size
    await writer.on_trial(trial(2, status=TrialStatus.CANCELLED, score=None), tuner)
    await writer.on_finish(TuningResult(()))
    assert path.stat().st_size == size
    assert [t.number for t in read_journal(path).trials] == [0]


async def test_on_trial_without_on_start_opens_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    writer = JsonlWriter(path)
    await writer.on_trial(trial(0), fake_tuner())
    await writer.on_finish(TuningResult(()))
    assert read_journal(path).trials == (trial(0),)


async def test_writer_basics(tmp_path: Path) -> None:
    writer = JsonlWriter(tmp_path / "t.jsonl", durability="fsync")
    assert writer.critical is True
    assert writer.path == os.fspath(tmp_path / "t.jsonl")
    assert repr(writer) == f"JsonlWriter({writer.path!r}, durability='fsync')"
    with pytest.raises(ConfigurationError, match="durability"):
        JsonlWriter(tmp_path / "t.jsonl", durability="always")  # type: ignore[arg-type]


# --- appending and resuming -----------------------------------------------------------


async def test_appending_writes_no_second_header(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    await write(path, [trial(0), trial(1)])
    writer = JsonlWriter(path, durability="fsync")
    tuner = fake_tuner(strategy="Bayesian(seed=1)")  # another strategy: the same study
    await writer.on_start(tuner)
    await writer.on_trials([trial(2)], tuner)
    await writer.on_finish(TuningResult(()))

    raw = lines_of(path)
    assert len(raw) == 4
    assert sum(b'"kind":"header"' in line for line in raw) == 1
    assert [t.number for t in read_journal(path).trials] == [0, 1, 2]


async def test_a_different_space_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    await write(path, [trial(0)])
    before = path.read_bytes()
    other = Space({**SPACE, "layers": Int(1, 16)})
    with pytest.raises(JournalError, match="different space") as info:
        await JsonlWriter(path).on_start(fake_tuner(space=other))
    assert "'layers'" in info.value.problem
    assert "Int(1, 16)" in info.value.problem
    assert info.value.path == os.fspath(path)
    assert path.read_bytes() == before


async def test_a_different_direction_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    await write(path, [trial(0)])
    with pytest.raises(JournalError, match="minimize"):
        await JsonlWriter(path).on_start(fake_tuner(direction="minimize"))


async def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"my precious notes\n")
    with pytest.raises(JournalError, match="not a journal header") as info:
        await JsonlWriter(path).on_start(fake_tuner())
    assert info.value.line == 1
    assert path.read_bytes() == b"my precious notes\n"


async def test_an_empty_file_gets_a_header(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    path.touch()
    await write(path, [trial(0)])
    assert read_journal(path).trials == (trial(0),)


# --- torn writes ------------------------------------------------------------------


async def test_a_torn_last_line_is_tolerated_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "trials.jsonl"
    await write(path, [trial(0), trial(1)])
    torn = encode_trial(trial(2))[:40]
    with path.open("ab") as f:
        f.write(torn)

    with caplog.at_level(logging.WARNING, logger="aiotune"):
        journal = read_journal(path)
    assert journal.torn_tail is True
    assert [t.number for t in journal.trials] == [0, 1]
    assert journal.skipped_lines == ()
    assert [r.name for r in caplog.records] == ["aiotune"]
    assert "line 4" in caplog.records[0].getMessage()
    assert "torn" in caplog.records[0].getMessage()


async def test_the_writer_repairs_a_torn_line_so_the_journal_stays_readable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "trials.jsonl"
    await write(path, [trial(0)])
    with path.open("ab") as f:
        f.write(encode_trial(trial(1))[:40])
    await write(path, [trial(2), trial(3)])

    raw = lines_of(path)
    assert raw[2].endswith(b"\n")  # the fragment, ended
    assert orjson.loads(raw[3])["kind"] == "repair"  # marked as a torn write
    assert orjson.loads(raw[4])["number"] == 2  # the next line is intact
    journal = read_journal(path)  # no on_corrupt="skip" needed: the repair says it all
    assert journal.skipped_lines == ()
    assert [t.number for t in journal.trials] == [0, 2, 3]


async def test_a_bad_line_not_followed_by_a_repair_is_still_corruption(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    await write(path, [trial(0)])
    with path.open("ab") as f:
        f.write(b"{not json\n")
    await write(path, [trial(2)])
    with pytest.raises(JournalError) as caught:
        read_journal(path)
    assert caught.value.line == 3


async def test_a_last_line_without_newline_that_parses_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    await write(path, [trial(0), trial(1)])
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    journal = read_journal(path)
    assert journal.torn_tail is False
    assert [t.number for t in journal.trials] == [0, 1]


# --- corruption -------------------------------------------------------------------


def other_header() -> bytes:
    return encode_header(Space(x=Float(0.0, 1.0)), "maximize", None)


def good_line(number: int) -> dict[str, Any]:
    line: dict[str, Any] = orjson.loads(encode_trial(trial(number)))
    return line


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (b"this is not json\n", "not valid JSON"),
        (b"[1, 2, 3]\n", "expected a JSON object, got a list"),
        (b'{"kind": "comment"}\n', "unknown kind 'comment'"),
        (b'{"number": 9}\n', "unknown kind None"),
        (orjson.dumps({**good_line(9), "score": "high"}) + b"\n", "'score' must be a finite"),
        (orjson.dumps({**good_line(9), "status": "done"}) + b"\n", "unknown status 'done'"),
        (orjson.dumps({**good_line(9), "number": True}) + b"\n", "'number' must be an int"),
        (orjson.dumps({**good_line(9), "number": -1}) + b"\n", "'number' must be >= 0"),
        (orjson.dumps({**good_line(9), "attempts": 0}) + b"\n", "'attempts' must be an int >= 1"),
        (orjson.dumps({**good_line(9), "colour": "red"}) + b"\n", "unknown field 'colour'"),
        (orjson.dumps({**good_line(9), "intermediate": {"0": 1.0}}) + b"\n", "[step, value]"),
        (
            orjson.dumps({**good_line(9), "intermediate": [[0, 1.0], [0, 2.0]]}) + b"\n",
            "step 0 appears twice",
        ),
        (orjson.dumps({**good_line(9), "error": {"type": "E"}}) + b"\n", "missing field 'message'"),
        (orjson.dumps({k: v for k, v in good_line(9).items() if k != "params"}) + b"\n", "params"),
        (
            orjson.dumps({**good_line(9), "params": {**params(9), "layers": 99}}) + b"\n",
            "parameter 'layers'",
        ),
        (b'{"kind": "trial", "number": 9, "score": NaN}\n', "not valid JSON"),
        (other_header(), "different study"),
    ],
)
async def test_a_bad_line_in_the_middle_is_a_journal_error(
    tmp_path: Path, bad: bytes, message: str
) -> None:
    path = tmp_path / "trials.jsonl"
    await write(path, [trial(0), trial(1), trial(2)])
    raw = lines_of(path)
    path.write_bytes(b"".join([*raw[:3], bad, raw[3]]))

    with pytest.raises(JournalError) as info:
        read_journal(path)
    assert info.value.line == 4
    assert message in info.value.problem
    assert str(info.value).startswith(f"{path}, line 4: ")


async def test_skip_keeps_the_good_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "trials.jsonl"
    await write(path, [trial(0), trial(1), trial(2)])
    raw = lines_of(path)
    path.write_bytes(b"".join([raw[0], b"garbage\n", raw[1], b"[]\n", raw[2], raw[3]]))

    with caplog.at_level(logging.WARNING, logger="aiotune"):
        journal = read_journal(path, on_corrupt="skip")
    assert journal.skipped_lines == (2, 4)
    assert [t.number for t in journal.trials] == [0, 1, 2]
    assert len(caplog.records) == 2
    assert "line 2" in caplog.records[0].getMessage()
    assert load(path, on_corrupt="skip").trials == journal.trials


async def test_a_duplicate_number_is_corruption(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    await write(path, [trial(0), trial(1), trial(0, score=99.0)])
    with pytest.raises(JournalError, match="trial 0 was already recorded on line 2") as info:
        read_journal(path)
    assert info.value.line == 4
    journal = read_journal(path, on_corrupt="skip")
    assert journal.skipped_lines == (4,)
    assert journal.trials == (trial(0), trial(1))  # the first record wins


async def test_repeated_identical_header_and_blank_lines_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    await write(path, [trial(0), trial(1)])
    raw = lines_of(path)
    again = encode_header(SPACE, "maximize", "another strategy")  # same study, later run
    path.write_bytes(b"".join([raw[0], b"\n", raw[1], raw[0], again, b"  \n", raw[2]]))
    journal = read_journal(path)
    assert [t.number for t in journal.trials] == [0, 1]
    assert journal.skipped_lines == ()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"\n", "not a journal header"),
        (b"garbage\n", "not a journal header"),
        (b'{"kind": "header", "format": 1}\n', "missing field"),
        (encode_header(SPACE, "maximize", None).replace(b'"format":1', b'"format":2'), "format 2"),
        (encode_trial(trial(0)), "expected a header"),
    ],
)
def test_a_bad_header_is_a_journal_error_at_line_1(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "trials.jsonl"
    path.write_bytes(content)
    with pytest.raises(JournalError, match=message) as info:
        read_journal(path, on_corrupt="skip")
    assert info.value.line == 1


def test_a_header_whose_fingerprint_does_not_match_its_space(tmp_path: Path) -> None:
    header = orjson.loads(encode_header(SPACE, "maximize", None))
    header["fingerprint"] = "0" * 64
    path = tmp_path / "trials.jsonl"
    path.write_bytes(orjson.dumps(header) + b"\n")
    with pytest.raises(JournalError, match="fingerprint"):
        read_journal(path)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="no such file") as info:
        read_journal(tmp_path / "nope.jsonl")
    assert info.value.line is None
    with pytest.raises(JournalError):
        load(tmp_path / "nope.jsonl")


def test_on_corrupt_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="on_corrupt"):
        read_journal(tmp_path / "t.jsonl", on_corrupt="ignore")  # type: ignore[arg-type]


# --- encoding refuses what JSON cannot hold -----------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"score": math.nan}, "score is nan"),
        ({"score": math.inf}, "score is inf"),
        ({"intermediate": {0: 0.5, 1: -math.inf}}, "intermediate value at step 1 is -inf"),
        ({"intermediate": {"0": 0.5}}, "step '0' is not an int"),
        ({"duration": math.nan}, "duration is nan"),
        ({"params": {"x": math.nan}}, "param 'x' is nan"),
        ({"params": {"x": object()}}, "cannot encode as JSON"),
    ],
)
def test_encoding_refuses_non_finite_numbers(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_trial(trial(3, **changes))


async def test_the_writer_refuses_a_non_finite_score(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    await write(path, [trial(0)])
    before = path.read_bytes()
    writer = JsonlWriter(path)
    await writer.on_start(fake_tuner())
    with pytest.raises(JournalError, match="cannot record trial 1: score is nan"):
        await writer.on_trials([trial(1, score=math.nan)], fake_tuner())
    await writer.on_finish(TuningResult(()))
    assert path.read_bytes() == before


def test_decode_trial_fills_optional_fields_with_defaults() -> None:
    decoded = decode_trial({"kind": "trial", "number": 0, "params": {"a": 1}, "status": "failed"})
    assert decoded == Trial(number=0, params={"a": 1}, status=TrialStatus.FAILED)
    score = decode_trial({**good_line(1), "score": 2}).score
    assert score == 2.0
    assert isinstance(score, float)


# --- I/O errors ---------------------------------------------------------------


async def test_a_missing_directory_is_a_journal_error(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "dir" / "trials.jsonl"
    with pytest.raises(JournalError, match="does not exist") as info:
        await JsonlWriter(path).on_start(fake_tuner())
    assert info.value.line is None
    assert not path.parent.exists()


async def test_a_directory_path_is_a_journal_error(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="cannot write"):
        await JsonlWriter(tmp_path).on_start(fake_tuner())
    with pytest.raises(JournalError, match="cannot read"):
        read_journal(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
async def test_permission_denied_is_a_journal_error(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    await write(path, [trial(0)])
    path.chmod(0o444)
    with pytest.raises(JournalError, match=r"cannot write: .*Permission denied"):
        await JsonlWriter(path).on_start(fake_tuner())


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
async def test_a_full_disk_is_a_journal_error() -> None:
    writer = JsonlWriter("/dev/full")
    with pytest.raises(JournalError, match=r"cannot write: .*No space left") as info:
        await writer.on_start(fake_tuner())
    assert info.value.path == "/dev/full"
    assert info.value.line is None


# --- size -------------------------------------------------------------------------


async def test_a_large_journal_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    tuner = fake_tuner()
    writer = JsonlWriter(path)
    await writer.on_start(tuner)
    batch = [trial(i) for i in range(1000)]
    for start in range(0, 20_000, 1000):
        await writer.on_trials([replace(t, number=start + t.number) for t in batch], tuner)
    await writer.on_finish(TuningResult(()))

    trials = read_journal(path).trials
    assert len(trials) == 20_000
    assert [t.number for t in trials] == list(range(20_000))
    assert trials[12_345] == replace(trial(345), number=12_345)
