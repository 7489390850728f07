"""The running trial: what an objective may take as its second argument."""

from __future__ import annotations

import math
import numbers
from types import MappingProxyType
from typing import TYPE_CHECKING

from aiotune.errors import Pruned
from aiotune.trial import Params

if TYPE_CHECKING:
    from collections.abc import Mapping

    from aiotune.execution.channel import ReportChannel


class RunningTrial:
    """What a running objective knows of its trial, and its line back to the orchestrator.

    ``def objective(params, trial)`` gets one: ``trial.number``,
    ``trial.params``, and ``trial.report(value, step)``, which sends an
    intermediate value to the orchestrator (from a worker process too) and
    raises :class:`aiotune.Pruned` when the pruner says the trial should stop.
    """

    __slots__ = ("_channel", "_intermediate", "number", "params")

    def __init__(self, number: int, params: Params, channel: ReportChannel) -> None:
        self.number = number
        self.params = params
        self._channel = channel
        self._intermediate: dict[int, float] = {}

    @property
    def intermediate(self) -> Mapping[int, float]:
        """The values reported so far, by step."""
        return MappingProxyType(self._intermediate)

    def report(self, value: float, step: int | None = None) -> None:
        """Report ``value`` at ``step`` (default: the step after the last one reported).

        Raises :class:`aiotune.Pruned` when the pruner decides this trial should
        stop; let it propagate. Raises ``ValueError``/``TypeError`` for a value
        that is not a finite number or a step that is not a non-negative int.
        """
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"trial.report() value must be a number, got {value!r:.80}")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"trial.report() value must be finite, got {value}")
        if step is None:
            step = max(self._intermediate, default=-1) + 1
        elif isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise ValueError(f"trial.report() step must be a non-negative int, got {step!r}")
        step = int(step)
        self._intermediate[step] = value
        if self._channel.report(self.number, step, value):
            raise Pruned(step)

    def __repr__(self) -> str:
        return f"RunningTrial(number={self.number}, params={self.params!r})"
