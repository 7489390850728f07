"""Asynchronous successive halving (ASHA) as a pruner."""

from __future__ import annotations

import bisect
import logging
from typing import TYPE_CHECKING

from aiotune._checks import check_direction, check_int
from aiotune.errors import ConfigurationError
from aiotune.pruning.base import Ranked, check_value
from aiotune.trial import TrialStatus

if TYPE_CHECKING:
    from aiotune.trial import Direction, Trial

logger = logging.getLogger("aiotune")


class ASHA:
    """Asynchronous successive halving: at each rung, only the top ``1/reduction_factor`` go on.

    ASHA is from Li et al. 2020, "A System for Massively Parallel
    Hyperparameter Tuning" (MLSys), built on successive halving (Jamieson and
    Talwalkar 2016, AISTATS) and Hyperband (Li et al. 2018, JMLR). Steps count
    as resource: report ``step`` as the resource spent so far (epochs done,
    starting at 1; samples seen; ...).

    Rung *k* sits at step ``r_k = min_resource * reduction_factor**k``, for
    every ``r_k < max_resource`` (``max_resource=None``: no cap). A trial
    reaches rung *k* with the first value it reports at a step ``>= r_k``; that
    value is recorded at the rung, and the trial goes on (is *promoted*) only
    if it is among the top ``n // reduction_factor`` of the ``n`` values
    recorded at that rung so far, itself included (ties go on). Otherwise it
    is pruned. A report that crosses several rungs at once is recorded at
    each, and prunes the trial if any of them would.

    As in the paper, nobody waits for a rung to fill: a decision is made with
    the trials that have reached the rung so far. The paper's ASHA pauses a
    configuration that is not promoted yet and may promote it later; a pruner
    cannot resume a stopped trial, so, as Optuna's ``SuccessiveHalvingPruner``
    does, while a rung holds fewer than ``reduction_factor`` values the top
    *one* goes on (a trial that is the best so far at its rung continues).
    The paper's minimum early-stopping rate *s* is ``min_resource``'s job:
    ``min_resource = r * reduction_factor**s``.

    Every trial's values count at the rungs it reached, whatever its status
    (completed, pruned, failed, timed out, running); only ``cancelled``
    trials are forgotten, since a resumed study never loads them.

    ``brackets > 1`` runs the asynchronous Hyperband of the same paper: trial
    number *n* goes to bracket ``s = n % brackets``, whose rungs start at
    ``min_resource * reduction_factor**s`` (bracket 0 is the plain ASHA
    above, the last one judges its trials latest); each bracket ranks only
    its own trials. Trials that look poor early but end well are then not all
    judged at the first rung. On the pruning benchmark (benchmarks/README.md,
    "Brackets, and letting the model decide which trials go on"), ``Bayesian``
    with ``brackets=3`` reached Random+ASHA's best in a median 81% of its
    epochs, against 127% with one bracket; with random search three brackets
    did worse than one (a model's proposals deserve the later look, random
    ones the early cut).

    Arguments: ``min_resource`` (an int >= 1), ``reduction_factor`` (an int
    >= 2), ``max_resource`` (``None`` or an int > ``min_resource``),
    ``brackets`` (an int >= 1, and with ``max_resource`` small enough that
    every bracket keeps a rung below it); anything else raises
    :class:`aiotune.ConfigurationError`.
    """

    __slots__ = ("brackets", "max_resource", "min_resource", "reduction_factor")

    def __init__(
        self,
        min_resource: int = 1,
        reduction_factor: int = 3,
        max_resource: int | None = None,
        *,
        brackets: int = 1,
    ) -> None:
        self.min_resource = check_int("min_resource", min_resource, 1)
        self.reduction_factor = check_int("reduction_factor", reduction_factor, 2)
        self.brackets = check_int("brackets", brackets, 1)
        if max_resource is None:
            self.max_resource: int | None = None
        else:
            self.max_resource = check_int("max_resource", max_resource, 1)
            if self.max_resource <= self.min_resource:
                raise ConfigurationError(
                    "max_resource",
                    f"must be greater than min_resource={self.min_resource} (no rung would be "
                    f"left to prune at), got {max_resource!r}",
                )
            if self.rung_resource(0, self.brackets - 1) is None:
                raise ConfigurationError(
                    "brackets",
                    f"bracket {self.brackets - 1} would start at step "
                    f"{self.min_resource * self.reduction_factor ** (self.brackets - 1)}, not "
                    f"below max_resource={self.max_resource} (no rung left to prune at), got "
                    f"{brackets!r}",
                )

    def rung_resource(self, k: int, bracket: int = 0) -> int | None:
        """The step of rung ``k`` (from 0) of ``bracket``, or ``None`` if ``max_resource``
        leaves no such rung."""
        resource: int = self.min_resource * self.reduction_factor ** (bracket + k)
        if self.max_resource is not None and resource >= self.max_resource:
            return None
        return resource

    def bind(self, direction: Direction) -> ASHAState:
        """A fresh state for one study that goes in ``direction``."""
        return ASHAState(self, check_direction(direction))

    def __repr__(self) -> str:
        extra = f", brackets={self.brackets}" if self.brackets != 1 else ""
        return (
            f"ASHA(min_resource={self.min_resource}, reduction_factor={self.reduction_factor}, "
            f"max_resource={self.max_resource}{extra})"
        )


class _Rung:
    __slots__ = ("resource", "steps", "values")

    def __init__(self, resource: int) -> None:
        self.resource = resource
        self.values: Ranked[int] = Ranked()  # trial number -> oriented value
        self.steps: dict[int, int] = {}  # trial number -> the step its value was reported at

    def record(self, number: int, step: int, oriented: float) -> None:
        self.values.set(number, oriented)
        self.steps[number] = step

    def forget(self, number: int) -> None:
        self.values.discard(number)
        self.steps.pop(number, None)


class ASHAState:
    """One study's state of :class:`ASHA`: the values recorded at each rung of each bracket.

    Each rung keeps its values sorted, so a promotion decision costs a lookup
    and recording a value one list insertion.
    """

    __slots__ = ("_config", "_rungs", "_sign", "direction")

    def __init__(self, config: ASHA, direction: Direction) -> None:
        self.direction: Direction = direction
        self._config = config
        self._sign = 1.0 if direction == "maximize" else -1.0
        # by bracket, grown as trials reach them
        self._rungs: list[list[_Rung]] = [[] for _ in range(config.brackets)]

    def report(self, number: int, step: int, value: float) -> bool:
        """Record ``value`` for trial ``number`` at ``step``; return whether to prune it."""
        check_value(number, step, value)
        oriented = self._sign * value
        prune = False
        for k, rung in enumerate(self._rungs_up_to(self._bracket(number), step)):
            taken = rung.steps.get(number)
            if taken is not None and taken < step:
                continue  # the trial passed this rung at an earlier step
            rung.record(number, step, oriented)
            if not self._promotable(rung, oriented):
                logger.debug(
                    "ASHA: pruning trial %d at step %d: %g is not in the top 1/%d at rung %d",
                    number,
                    step,
                    value,
                    self._config.reduction_factor,
                    k,
                )
                prune = True
        return prune

    def finish(self, trial: Trial) -> None:
        """Make ``trial.intermediate`` the trial's evidence, or drop it if it was cancelled."""
        bracket = self._bracket(trial.number)
        for rung in self._rungs[bracket]:
            rung.forget(trial.number)
        if trial.status is TrialStatus.CANCELLED or not trial.intermediate:
            return
        steps = sorted(trial.intermediate)
        for rung in self._rungs_up_to(bracket, steps[-1]):
            step = steps[bisect.bisect_left(steps, rung.resource)]
            rung.record(trial.number, step, self._sign * trial.intermediate[step])

    def rung_values(self, k: int, bracket: int = 0) -> dict[int, float]:
        """The values recorded at rung ``k`` of ``bracket``, by trial number (for inspection
        and tests)."""
        rungs = self._rungs[bracket]
        if k >= len(rungs):
            return {}
        return {number: self._sign * value for number, value in rungs[k].values.items()}

    def _bracket(self, number: int) -> int:
        return number % self._config.brackets

    def _promotable(self, rung: _Rung, oriented: float) -> bool:
        top = max(1, len(rung.values) // self._config.reduction_factor)
        return oriented >= rung.values.kth_best(top)

    def _rungs_up_to(self, bracket: int, step: int) -> list[_Rung]:
        """The rungs of ``bracket`` at or below ``step``, created as needed (in increasing
        order)."""
        rungs = self._rungs[bracket]
        while (resource := self._config.rung_resource(len(rungs), bracket)) is not None:
            if resource > step:
                break
            rungs.append(_Rung(resource))
        return [rung for rung in rungs if rung.resource <= step]
