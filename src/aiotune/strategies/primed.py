"""Points to try first (``initial=``) and earlier studies' trials (``warm_start=``).

:class:`Primed` wraps any :data:`~aiotune.strategies.StrategyLike`:

* it first yields the ``initial`` params that the study has not evaluated
  yet (on resume, those already in the journal are skipped), then the
  wrapped strategy's own; the wrapped strategy sees the initial trials in
  the history like any other, so a model learns from them;
* the ``warm_start`` trials (complete trials of earlier studies) are put in
  front of the history the wrapped strategy sees, so its ask/tell core is
  told them before it is first asked — they inform the model and are never
  suggested again by a deduplicating strategy, but they are not this
  study's trials: not counted, not rerun, not in its result or journal.

The orchestrator only checks the two arguments (:func:`check_initial`,
:func:`check_warm_start`), reads warm-start journals, keeps the trials that
fit (:func:`fitting_trials`) and wraps its strategy (:func:`primed`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, overload

from aiotune.errors import ConfigurationError, SpaceError
from aiotune.history import History
from aiotune.strategies.base import StrategyLike, suggest_function
from aiotune.trial import Params, StudyDirection, Trial, TrialStatus, TuningResult, is_better

if TYPE_CHECKING:
    from aiotune.space import Space

logger = logging.getLogger("aiotune")

WarmSource: TypeAlias = "str | os.PathLike[str] | TuningResult"
"""One earlier study for ``warm_start=``: the path of its journal, or its result."""

_Key = tuple[tuple[str, type, Any], ...]


def _key(params: Mapping[str, Any]) -> _Key:
    # Type-aware, so that True and 1 (or 1 and 1.0) are different points.
    return tuple((name, type(value), value) for name, value in params.items())


def check_initial(space: Space, initial: object) -> tuple[Params, ...]:
    """``initial=`` validated against ``space``: normalised params, duplicates dropped.

    Raises ``SpaceError`` naming the parameter and the point's position.
    """
    if initial is None:
        return ()
    if isinstance(initial, Mapping | str | bytes) or not isinstance(initial, Iterable):
        raise ConfigurationError(
            "initial", f"must be a list of params dicts, got {type(initial).__name__}"
        )
    points: dict[_Key, Params] = {}
    for i, params in enumerate(initial):
        try:
            valid = space.validate(params)
        except SpaceError as err:
            raise SpaceError(err.param, f"initial[{i}]: {err.problem}") from None
        points.setdefault(_key(valid), valid)
    return tuple(points.values())


def check_warm_start(warm_start: object) -> tuple[WarmSource, ...]:
    """``warm_start=`` as a tuple of sources (journal paths or ``TuningResult``s)."""
    if warm_start is None:
        return ()
    one = isinstance(warm_start, str | os.PathLike | TuningResult)
    sources = (warm_start,) if one else warm_start
    if not isinstance(sources, Iterable):
        raise ConfigurationError(
            "warm_start",
            f"must be a journal path, a TuningResult, or a list of them; got {warm_start!r:.80}",
        )
    out: list[WarmSource] = []
    for source in sources:
        if not isinstance(source, str | os.PathLike | TuningResult):
            raise ConfigurationError(
                "warm_start",
                f"each source must be a journal path or a TuningResult, got {source!r:.80}",
            )
        out.append(source)
    return tuple(out)


def fitting_trials(
    space: Space,
    direction: StudyDirection,
    studies: Iterable[tuple[StudyDirection, Iterable[Trial]]],
) -> tuple[Trial, ...]:
    """The complete, scored trials of earlier ``studies`` whose params fit ``space``.

    Each study is ``(its direction, its trials)``; one of the other direction
    is a ``ConfigurationError``. The trials that do not fit are skipped, with
    one logged line saying how many.
    """
    kept: list[Trial] = []
    skipped = total = 0
    for their_direction, trials in studies:
        if their_direction != direction:
            raise ConfigurationError(
                "warm_start",
                f"an earlier study was to {their_direction} its score, this one is to "
                f"{direction} it",
            )
        for trial in trials:
            if trial.status is not TrialStatus.COMPLETE or not trial.scores:
                continue
            total += 1
            try:
                params = space.validate(trial.params)
            except SpaceError:
                skipped += 1
                continue
            kept.append(trial if params == trial.params else _with_params(trial, params))
    if skipped:
        logger.warning(
            "warm_start: skipped %d of %d complete trials whose params do not fit the space",
            skipped,
            total,
        )
    return tuple(kept)


def _with_params(trial: Trial, params: Params) -> Trial:
    return dataclasses.replace(trial, params=params)


def primed(
    strategy: StrategyLike, initial: Sequence[Params] = (), warm_start: Sequence[Trial] = ()
) -> StrategyLike:
    """``strategy`` wrapped in :class:`Primed`, or as it is when both are empty."""
    if not initial and not warm_start:
        return strategy
    return Primed(strategy, initial=initial, warm_start=warm_start)


class Primed:
    """Any strategy, with points to try first and earlier trials to learn from.

    ``initial``: valid params (see :func:`check_initial`), yielded first,
    except those the study has already evaluated or has in flight.
    ``warm_start``: trials that the wrapped strategy sees at the front of its
    history (see :func:`fitting_trials`); they keep their own numbers.
    """

    def __init__(
        self,
        strategy: StrategyLike,
        *,
        initial: Sequence[Params] = (),
        warm_start: Sequence[Trial] = (),
    ) -> None:
        self.strategy = strategy
        self.initial = tuple(initial)
        self.warm_start = tuple(warm_start)

    def suggest(self, space: Space, history: History) -> AsyncIterator[Params]:
        """The initial points not yet evaluated, then the wrapped strategy's params."""
        view = WarmHistory(history, self.warm_start) if self.warm_start else history
        inner = suggest_function(self.strategy)(space, view)  # a bad grid raises here
        return self._suggest(inner, history)

    async def _suggest(
        self, inner: AsyncIterator[Params], history: History
    ) -> AsyncIterator[Params]:
        try:
            done = {_key(t.params) for t in history.trials}
            done.update(_key(params) for params in history.pending.values())
            for params in self.initial:
                if _key(params) not in done:
                    yield dict(params)
            async for params in inner:
                yield params
        finally:
            aclose = getattr(inner, "aclose", None)
            if aclose is not None:
                await aclose()

    def __repr__(self) -> str:
        return (
            f"Primed({self.strategy!r}, initial=<{len(self.initial)} points>, "
            f"warm_start=<{len(self.warm_start)} trials>)"
        )


class _Chain(Sequence[Trial]):
    """``first + second`` as a read-only sequence, ``second`` still growing."""

    def __init__(self, first: Sequence[Trial], second: Sequence[Trial]) -> None:
        self._first, self._second = first, second

    def __len__(self) -> int:
        return len(self._first) + len(self._second)

    @overload
    def __getitem__(self, index: int) -> Trial: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Trial]: ...

    def __getitem__(self, index: int | slice) -> Trial | Sequence[Trial]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        n, k = len(self._first), index if index >= 0 else index + len(self)
        if not 0 <= k < len(self):
            raise IndexError(index)
        return self._first[k] if k < n else self._second[k - n]

    def __iter__(self) -> Iterator[Trial]:
        yield from self._first
        yield from self._second


class WarmHistory(History):
    """The history a warm-started strategy sees: earlier studies' trials, then the live ones.

    Everything else — pending params, the next number, change notification —
    is the live study's. Read-only: the orchestrator writes the live history.
    """

    def __init__(self, live: History, warm: Sequence[Trial]) -> None:
        super().__init__(live.direction)
        self._live = live
        self._warm = tuple(warm)
        self._warm_best: Trial | None = None
        direction = self.direction  # several objectives (a tuple): no single best
        for trial in self._warm:
            if (
                isinstance(direction, str)
                and trial.score is not None
                and trial.feasible
                and (
                    self._warm_best is None
                    or self._warm_best.score is None
                    or is_better(trial.score, self._warm_best.score, direction)
                )
            ):
                self._warm_best = trial

    @property
    def trials(self) -> Sequence[Trial]:
        """The earlier studies' trials, then this study's finished trials."""
        return _Chain(self._warm, self._live.trials)

    @property
    def pending(self) -> Mapping[int, Params]:
        """This study's params in flight."""
        return self._live.pending

    @property
    def best(self) -> Trial | None:
        """The best complete trial of this study and the earlier ones."""
        live, warm = self._live.best, self._warm_best
        if live is None or live.score is None:
            return warm
        if warm is None or warm.score is None or not isinstance(self.direction, str):
            return live
        return warm if is_better(warm.score, live.score, self.direction) else live

    @property
    def version(self) -> int:
        """This study's change counter."""
        return self._live.version

    @property
    def next_number(self) -> int:
        """The number this study's next trial will get."""
        return self._live.next_number

    def __len__(self) -> int:
        return len(self._warm) + len(self._live)

    def __contains__(self, number: object) -> bool:
        return number in self._live

    def add_pending(self, number: int, params: Params) -> None:
        """Refused: the orchestrator writes the live history, not this view."""
        raise TypeError("a warm-start view of the history is read-only")

    def record(self, trial: Trial) -> None:
        """Refused: the orchestrator writes the live history, not this view."""
        raise TypeError("a warm-start view of the history is read-only")

    async def wait_for_change(self) -> None:
        """Return after the next change to this study's history."""
        await self._live.wait_for_change()
