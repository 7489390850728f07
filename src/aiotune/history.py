"""The live record of a study: finished trials, params in flight, and change notification."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

import anyio

from aiotune.trial import Params, StudyDirection, Trial, is_better


class History:
    """Everything a strategy may look at while a study runs.

    ``trials`` holds the finished trials in the order they finished (a resumed
    study starts with the journal's trials); ``pending`` maps the numbers of
    trials in flight to their params. The orchestrator is the only writer.
    Strategies that wait for results ``await history.wait_for_change()``.
    """

    def __init__(
        self, direction: StudyDirection = "maximize", trials: Iterable[Trial] = ()
    ) -> None:
        self.direction: StudyDirection = direction
        self._trials: list[Trial] = []
        self._numbers: set[int] = set()
        self._pending: dict[int, Params] = {}
        self._best: Trial | None = None
        self._next = 0
        self._version = 0
        self._changed: anyio.Event | None = None
        for trial in trials:
            self.record(trial)

    @property
    def trials(self) -> Sequence[Trial]:
        """Finished trials, in the order they finished (a live, read-only view)."""
        return self._trials

    @property
    def pending(self) -> Mapping[int, Params]:
        """Params of the trials in flight, by trial number (a read-only view)."""
        return MappingProxyType(self._pending)

    @property
    def best(self) -> Trial | None:
        """The best feasible complete trial so far, or ``None``.

        Always ``None`` in a multi-objective study, which has no single best
        (``aiotune.trial.pareto_front(history.trials, history.direction)`` is its front).
        """
        return self._best

    @property
    def version(self) -> int:
        """A counter that grows with every change (a trial started or finished)."""
        return self._version

    @property
    def next_number(self) -> int:
        """The number the next params pulled from the strategy will get.

        The smallest number neither finished nor in flight, so a resumed study
        fills the gaps its crash left before counting on.
        """
        while self._next in self._numbers or self._next in self._pending:
            self._next += 1
        return self._next

    def __len__(self) -> int:
        return len(self._trials)

    def __contains__(self, number: object) -> bool:
        return number in self._numbers

    def add_pending(self, number: int, params: Params) -> None:
        """Mark ``params`` as in flight under ``number`` (orchestrator only)."""
        if number in self._numbers or number in self._pending:
            raise ValueError(f"trial number {number} is already taken")
        self._pending[number] = params
        self._changed_now()

    def record(self, trial: Trial) -> None:
        """Add a finished trial, ending its pending entry (orchestrator only)."""
        if trial.number in self._numbers:
            raise ValueError(f"trial number {trial.number} is already recorded")
        self._pending.pop(trial.number, None)
        self._trials.append(trial)
        self._numbers.add(trial.number)
        direction = self.direction  # several objectives (a tuple): no single best
        if trial.is_complete and trial.score is not None and trial.feasible:
            best = self._best
            if isinstance(direction, str) and (
                best is None
                or best.score is None
                or is_better(trial.score, best.score, direction)
                or (trial.score == best.score and trial.number < best.number)
            ):
                self._best = trial
        self._changed_now()

    async def wait_for_change(self) -> None:
        """Return after the next change to the history."""
        if self._changed is None:
            self._changed = anyio.Event()
        await self._changed.wait()

    def _changed_now(self) -> None:
        self._version += 1
        if self._changed is not None:
            self._changed.set()
            self._changed = None
