"""What an observer is, and what it sees of the study it watches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from aiotune.trial import StudyDirection, Trial

if TYPE_CHECKING:
    from aiotune.history import History
    from aiotune.space import Space


class StudyHandle(Protocol):
    """The view of a running study that observers get as their ``tuner`` argument.

    Both kinds of study are one: an observer of ``tune``/:class:`aiotune.Tuner`
    gets the Tuner, an observer of an ask/tell :class:`aiotune.Study` gets the
    Study, and the same observer (the journal, ``Patience``, ...) works under
    either. This is the one place the handle is defined; ``mypy`` checks that
    both classes satisfy it where they hand themselves to their observers.
    """

    @property
    def space(self) -> Space:
        """The search space."""

    @property
    def direction(self) -> StudyDirection:
        """Whether higher (``"maximize"``) or lower scores are better; a tuple of them
        (one per objective) in a multi-objective study."""

    @property
    def strategy(self) -> object:
        """The strategy suggesting params (its ``repr`` describes it)."""

    @property
    def history(self) -> History:
        """The live record of the study."""

    def stop(self, reason: str) -> None:
        """Launch no new trials; in-flight trials finish. The first reason given is kept."""

    def stop_after(self, delay: float, reason: str) -> None:
        """Call ``stop(reason)`` ``delay`` seconds from now, unless the study ends first."""


@runtime_checkable
class Observer(Protocol):
    """Receives every finished trial of a study, in its own task.

    Only ``on_trial`` is required. Optional hooks, called when present:

    * ``async on_start(tuner)`` before the first trial is delivered;
    * ``async on_trials(trials, tuner)`` instead of ``on_trial``, with every
      trial that finished since the last call (for observers that batch, like
      the journal);
    * ``async on_report(number, step, value)`` for each intermediate value;
    * ``async on_finish(result)`` once, after the last trial.

    An observer that raises is logged, detached and listed in
    ``TuningResult.observer_errors``; an observer with ``critical = True``
    (the journal) fails the whole study instead, since its record would be lost.
    """

    async def on_trial(self, trial: Trial, tuner: StudyHandle) -> None:
        """Handle one finished trial."""


class BatchObserver(Protocol):
    """An observer that takes finished trials in batches."""

    async def on_trials(self, trials: Sequence[Trial], tuner: StudyHandle) -> None:
        """Handle the trials that finished since the last call, in finishing order."""


__all__ = ["BatchObserver", "Observer", "StudyHandle"]
