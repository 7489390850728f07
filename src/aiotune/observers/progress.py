"""Progress: one live line on a terminal, periodic log lines elsewhere.

``observers=[at.Progress()]`` shows trials done out of ``max_trials``, the
trials running, the best score so far, failures, pruned trials and timeouts,
the elapsed time and an estimate of the time left. On a terminal it redraws
one line on standard error (a carriage return, no newline until the end);
when standard error is not a terminal (CI, a service's log) it logs a plain
line through ``logging.getLogger("aiotune")`` every ``interval`` seconds and
once at the end. A study without it pays nothing.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import TextIO

from aiotune._checks import check_seconds
from aiotune.observers.base import StudyHandle
from aiotune.trial import Trial, TrialStatus, TuningResult, is_better

logger = logging.getLogger("aiotune")

_REDRAW = 0.1  # seconds between terminal redraws, at most


def format_seconds(seconds: float) -> str:
    """``75.0`` as ``"1m15s"``, ``3725`` as ``"1h02m"``, ``4.2`` as ``"4s"``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """An observer that shows how a study is going (``observers=[at.Progress()]``).

    ``stream`` is where the live line goes (default: ``sys.stderr``); when it
    is not a terminal, or ``live=False``, a plain line is logged at INFO level
    on the ``"aiotune"`` logger every ``interval`` seconds (default 30) and at
    the end instead. The total comes from the tuner's ``max_trials`` when it
    has one.
    """

    def __init__(
        self, *, stream: TextIO | None = None, live: bool | None = None, interval: float = 30.0
    ) -> None:
        self.interval = check_seconds("Progress(interval)", interval)
        self._stream = stream
        self._live = live
        self._tuner: StudyHandle | None = None
        self._max: int | None = None
        self._began = 0.0
        self._done = 0
        self._counts = dict.fromkeys(TrialStatus, 0)
        self._best: Trial | None = None
        self._last_draw = 0.0
        self._last_log = 0.0
        self._width = 0

    @property
    def _out(self) -> TextIO:
        return sys.stderr if self._stream is None else self._stream

    def _is_live(self) -> bool:
        if self._live is not None:
            return self._live
        isatty = getattr(self._out, "isatty", None)
        return bool(isatty is not None and isatty())

    async def on_start(self, tuner: StudyHandle) -> None:
        """Start the clock; learn the trial budget and any resumed trials."""
        self._tuner = tuner
        self._began = self._last_log = time.monotonic()
        max_trials = getattr(tuner, "max_trials", None)
        self._max = max_trials if isinstance(max_trials, int) else None
        self._live = self._is_live()
        for trial in tuner.history.trials:  # a resumed study starts with its journal's trials
            self._count(trial)
        self._show(force=True)

    async def on_trial(self, trial: Trial, tuner: StudyHandle) -> None:
        """Count ``trial`` and redraw (or log, when the interval has passed)."""
        self._tuner = tuner
        self._count(trial)
        self._show()

    async def on_finish(self, result: TuningResult) -> None:
        """Draw the final line (ending it with a newline on a terminal) or log it."""
        line = self.line(running=0)
        if result.stop_reason:
            line += f" | stopped: {result.stop_reason}"
        if self._live:
            self._draw(line, end="\n")
        else:
            logger.info("%s", line)

    def _count(self, trial: Trial) -> None:
        self._done += 1
        self._counts[trial.status] += 1
        if trial.is_complete and trial.score is not None:
            best = self._best
            direction = self._tuner.direction if self._tuner is not None else "maximize"
            if not isinstance(direction, str) or not trial.feasible:  # no single best
                return
            if best is None or best.score is None or is_better(trial.score, best.score, direction):
                self._best = trial

    def line(self, *, running: int | None = None) -> str:
        """The progress line as it stands now."""
        if running is None:
            running = len(self._tuner.history.pending) if self._tuner is not None else 0
        elapsed = time.monotonic() - self._began
        total = f"/{self._max}" if self._max is not None else ""
        parts = [f"aiotune {self._done}{total} trials", f"{running} running"]
        best = self._best
        if best is not None and best.score is not None:
            parts.append(f"best {best.score:.6g} (#{best.number})")
        else:
            parts.append("best -")
        bad = [
            f"{self._counts[status]} {status.value}"
            for status in (TrialStatus.FAILED, TrialStatus.PRUNED, TrialStatus.TIMEOUT)
            if self._counts[status]
        ]
        if bad:
            parts.append(" ".join(bad))
        timing = f"{format_seconds(elapsed)} elapsed"
        if self._max is not None and 0 < self._done < self._max:
            eta = elapsed / self._done * (self._max - self._done)
            timing += f", ETA {format_seconds(eta)}"
        parts.append(timing)
        return " | ".join(parts)

    def _show(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self._live:
            if force or now - self._last_draw >= _REDRAW:
                self._last_draw = now
                self._draw(self.line())
        elif (force and self._done) or now - self._last_log >= self.interval:
            self._last_log = now
            logger.info("%s", self.line())

    def _columns(self) -> int:
        """The width of the terminal written to (very wide when it cannot be known)."""
        try:
            return os.get_terminal_size(self._out.fileno()).columns
        except (AttributeError, ValueError, OSError):  # io.UnsupportedOperation is an OSError
            return 10_000

    def _draw(self, line: str, end: str = "") -> None:
        columns = self._columns() - 1
        if len(line) > columns > 20:  # a wrapped line could not be redrawn in place
            line = line[: columns - 1] + "…"
        padding = " " * max(0, self._width - len(line))
        self._width = len(line)
        out = self._out
        out.write(f"\r{line}{padding}{end}")
        out.flush()

    def __repr__(self) -> str:
        return "Progress()"
