"""What a strategy is, and the one adapter that turns an ask/tell core into one.

A strategy is anything with ``suggest(space, history) -> AsyncIterator[dict]``,
or an async generator function of that signature. The orchestrator pulls the
next params whenever a trial slot is free; the generator returning means the
search is exhausted.

Built-in strategies keep their algorithm in a synchronous, seeded
:class:`AskTell` core that knows nothing of asyncio. :func:`drive` tells the
core every trial that has finished (a resumed history first) and asks it for
the next params, so resuming is simply "tell the loaded trials, keep asking".
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Protocol, TypeAlias, runtime_checkable

import anyio

from aiotune.trial import Params, Trial

if TYPE_CHECKING:
    from aiotune.history import History
    from aiotune.space import Space


@runtime_checkable
class Strategy(Protocol):
    """An object that suggests params for a space, given the study's live history."""

    def suggest(self, space: Space, history: History) -> AsyncIterator[Params]:
        """Yield params to evaluate; return when the search is exhausted."""
        ...


StrategyFunction: TypeAlias = Callable[["Space", "History"], AsyncIterator[Params]]
StrategyLike: TypeAlias = Strategy | StrategyFunction


class AskTell(Protocol):
    """A sans-I/O strategy core: told finished trials, asked for the next params."""

    def tell(self, trial: Trial) -> None:
        """Learn from a finished trial (any status; cancelled ones are never told)."""

    def ask(self, number: int, pending: Mapping[int, Params]) -> Params | None:
        """Params for trial ``number`` given those in flight, or ``None`` when exhausted."""


async def drive(
    core: AskTell, history: History, *, in_thread: bool = False
) -> AsyncIterator[Params]:
    """Run an ask/tell core as a strategy generator over a live ``history``.

    With ``in_thread``, ``tell`` and ``ask`` run in a worker thread, for cores
    whose model fitting would otherwise block the event loop.
    """
    told = 0
    while True:
        trials = tuple(history.trials[told:])
        told += len(trials)
        number = history.next_number
        if in_thread:  # the loop goes on adding pending trials: the thread gets a copy
            pending = dict(history.pending)
            params = await anyio.to_thread.run_sync(_tell_and_ask, core, trials, number, pending)
        else:  # nothing changes during a synchronous call: the live view is enough
            params = _tell_and_ask(core, trials, number, history.pending)
        if params is None:
            return
        yield params


def _tell_and_ask(
    core: AskTell, trials: tuple[Trial, ...], number: int, pending: Mapping[int, Params]
) -> Params | None:
    for trial in trials:
        core.tell(trial)
    return core.ask(number, pending)


def suggest_function(strategy: StrategyLike) -> StrategyFunction:
    """The generator function behind ``strategy`` (an object with ``suggest`` or a function)."""
    if isinstance(strategy, Strategy):
        return strategy.suggest
    if callable(strategy):
        return strategy
    raise TypeError(
        f"strategy must have a suggest(space, history) method or be an async generator "
        f"function, got {strategy!r}"
    )
