"""at.Progress: a live line on a terminal, log lines elsewhere, the right counts."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest

import aiotune as at
from aiotune.observers.progress import format_seconds


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def mixed(params: dict[str, Any]) -> float:
    """Fails for x == 3, else scores x (an async objective: no worker processes)."""
    if params["x"] == 3:
        raise ValueError("three is unlucky")
    return float(params["x"])


SPACE = at.Space(x=at.Categorical([0, 1, 2, 3, 4, 5]))


async def test_on_a_terminal_one_line_is_redrawn_with_counts_best_and_a_final_newline() -> None:
    out = FakeTerminal()
    result = await at.tune(
        mixed,
        SPACE,
        strategy=at.Grid(),
        max_trials=6,
        concurrency=2,
        observers=[at.Progress(stream=out)],
    )
    assert len(result.trials) == 6
    text = out.getvalue()
    assert text.startswith("\r")
    assert text.endswith("\n")
    assert text.count("\n") == 1  # one live line, ended once
    final = text.rsplit("\r", 1)[1]
    assert "aiotune 6/6 trials" in final
    assert "0 running" in final
    assert "best 5 (#5)" in final
    assert "1 failed" in final
    assert "elapsed" in final
    assert "stopped: max_trials reached" in final


async def test_not_a_terminal_logs_plain_lines_and_never_writes_to_the_stream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    out = io.StringIO()  # not a TTY
    with caplog.at_level(logging.INFO, logger="aiotune"):
        await at.tune(
            mixed,
            SPACE,
            strategy=at.Grid(),
            max_trials=6,
            direction="minimize",
            observers=[at.Progress(stream=out, interval=1e-9)],
        )
    assert out.getvalue() == ""
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("aiotune ")]
    assert len(lines) >= 6  # every trial (the interval is tiny) and the end
    assert "\r" not in "".join(lines)
    assert "aiotune 6/6 trials" in lines[-1]
    assert "best 0 (#0)" in lines[-1]  # minimizing
    assert any("ETA" in line for line in lines[:-2])  # before the end, the time left


async def test_without_max_trials_there_is_no_total_and_no_eta() -> None:
    out = FakeTerminal()
    await at.tune(mixed, SPACE, strategy=at.Grid(), observers=[at.Progress(stream=out)])
    final = out.getvalue().rsplit("\r", 1)[1]
    assert "aiotune 6 trials" in final
    assert "ETA" not in final
    assert "stopped: strategy exhausted" in final


def test_bad_interval_is_a_configuration_error() -> None:
    with pytest.raises(at.ConfigurationError, match="interval"):
        at.Progress(interval=0)


def test_times_read_well() -> None:
    assert format_seconds(4.2) == "4s"
    assert format_seconds(75) == "1m15s"
    assert format_seconds(3725) == "1h02m"
