"""What a pruner is, and the small pieces the built-in pruners share.

A pruner is a factory of per-study state. ``pruner.bind(direction)`` returns
a fresh :class:`PrunerState` for one study, so the same pruner object can be
reused across studies (and pickled, and shown by its ``repr``) without
carrying anything from one study into the next.

A :class:`PrunerState` is sans-I/O and synchronous: no asyncio, no threads,
no locks of its own. The study serialises every call to it with one lock
(``report`` runs in whatever thread a report arrives on, through the
:class:`~aiotune.execution.inbox.ReportInbox` or ``Study.report``; ``finish``
when a trial is recorded), and each call must answer quickly, because it
runs while a worker waits for its answer. The built-in
states answer in ``O(log n)`` comparisons plus one list insertion (per rung
crossed, for ASHA), a few microseconds.

The calls a state receives over a study::

    finish(trial)                  for each trial loaded from a resumed journal
    report(number, step, value)    for each intermediate value, as it arrives
                                   (True: raise aiotune.Pruned in that trial)
    finish(trial)                  for each trial that ends, whatever its status

``finish`` makes ``trial.intermediate`` the trial's evidence (replacing what
was reported live: a retried trial keeps only its last attempt's curve, as its
record does) and drops the evidence of a ``cancelled`` trial, which a resumed
study never sees either. So a live study and a study resumed from its journal
hold the same evidence.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import ItemsView, Iterator
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from aiotune.trial import Direction, Trial

K = TypeVar("K")


@runtime_checkable
class PrunerState(Protocol):
    """One study's pruning state: told every intermediate value and every finished trial.

    Calls are serialised by the orchestrator and must return quickly; an
    exception is logged by the orchestrator and counts as "do not prune".
    """

    def report(self, number: int, step: int, value: float) -> bool:
        """Record ``value`` reported by trial ``number`` at ``step``; return True to prune it.

        ``value`` is finite. A step reported again by the same trial (a
        retry) replaces the earlier value.
        """
        ...

    def finish(self, trial: Trial) -> None:
        """Trial ``trial`` ended (any status), or was loaded from a resumed journal."""
        ...


@runtime_checkable
class Pruner(Protocol):
    """Decides which running trials to stop early, from the intermediate values they report.

    A pruner holds only its settings; :meth:`bind` makes the state of one study.
    """

    def bind(self, direction: Direction) -> PrunerState:
        """A fresh state for a study that goes in ``direction``."""
        ...


def check_value(number: int, step: int, value: float) -> None:
    """Refuse a non-finite value (the trial context already does; this keeps states sound)."""
    if not math.isfinite(value):
        raise ValueError(f"trial {number} reported {value} at step {step}: not a finite number")


class Ranked(Generic[K]):
    """Values kept by key and in sorted order at once, for rank queries in ``O(1)``.

    Values are stored *oriented*: the caller negates them when minimizing, so
    that here higher is always better. Setting a key replaces its value.
    """

    __slots__ = ("_by_key", "_sorted")

    def __init__(self) -> None:
        self._by_key: dict[K, float] = {}
        self._sorted: list[float] = []

    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __iter__(self) -> Iterator[K]:
        return iter(self._by_key)

    def get(self, key: K) -> float | None:
        """The value of ``key``, or ``None``."""
        return self._by_key.get(key)

    def items(self) -> ItemsView[K, float]:
        """``(key, value)`` pairs (in no useful order)."""
        return self._by_key.items()

    def set(self, key: K, value: float) -> None:
        """Give ``key`` the value ``value`` (replacing any earlier one)."""
        self.discard(key)
        self._by_key[key] = value
        bisect.insort(self._sorted, value)

    def discard(self, key: K) -> None:
        """Forget ``key`` if present."""
        old = self._by_key.pop(key, None)
        if old is not None:
            del self._sorted[bisect.bisect_left(self._sorted, old)]

    def kth_best(self, k: int) -> float:
        """The ``k``-th highest value (``k`` from 1 to ``len(self)``)."""
        return self._sorted[-k]

    def median_of_others(self, key: K) -> float:
        """The median of the values of every key but ``key`` (which must be present).

        With ``m`` other values, the middle one when ``m`` is odd, else the
        mean of the two middle ones. ``len(self)`` must be at least 2.
        """
        values = self._sorted
        own = bisect.bisect_left(values, self._by_key[key])

        def other(j: int) -> float:  # the j-th smallest value once ``own`` is left out
            return values[j] if j < own else values[j + 1]

        m = len(values) - 1
        if m % 2:
            return other(m // 2)
        return (other(m // 2 - 1) + other(m // 2)) / 2
