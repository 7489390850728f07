"""The errors aiotune raises.

Every error aiotune raises to its caller is a :class:`TuningError`, so one
``except aiotune.TuningError`` catches them all. Each keeps the structured
facts its message was built from as attributes::

    TuningError
    ├── SpaceError            a bad domain or space definition, or params outside a space
    ├── JournalError          a journal that cannot be read, written or resumed
    ├── ObjectiveError        an objective that cannot run at all (e.g. does not pickle)
    ├── StrategyError         a strategy that yields something other than valid params
    ├── ConfigurationError    a bad argument to Tuner/tune/run
    ├── NoCompleteTrialError  asking for the best of a study in which no trial completed
    ├── TunerStateError       a Tuner or Study used out of turn (run twice, a tell of a
    │                         trial never asked or told twice, ask outside ``async with``)
    └── MissingExtraError     an optional feature whose extra is not installed

:class:`Pruned` is not an error of the library: a pruner raises it *inside* an
objective (from ``trial.report``) to stop a hopeless trial early.
"""

from __future__ import annotations

import os


class TuningError(Exception):
    """Base class of every error aiotune raises."""


class SpaceError(TuningError, ValueError):
    """A domain or space is badly defined, or params do not fit a space.

    ``param`` names the parameter (``None`` while a domain is built on its own,
    before it has a name) and ``problem`` says what is wrong with it.
    """

    def __init__(self, param: str | None, problem: str) -> None:
        self.param = param
        self.problem = problem
        where = f"parameter {param!r}: " if param is not None else ""
        super().__init__(f"{where}{problem}")

    def for_param(self, param: str) -> SpaceError:
        """The same error, naming ``param`` (used by ``Space`` for its domains)."""
        return SpaceError(param, self.problem)


class JournalError(TuningError):
    """A journal cannot be read, written or resumed.

    ``path`` is the journal file, ``line`` the 1-based line number at fault
    (``None`` when the problem is not one line), ``problem`` what is wrong.
    """

    def __init__(self, path: str | os.PathLike[str], line: int | None, problem: str) -> None:
        self.path = os.fspath(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class ObjectiveError(TuningError):
    """The objective cannot be run at all (as opposed to one trial failing)."""


class StrategyError(TuningError):
    """A strategy yielded something that is not a valid params dict for the space."""


class ConfigurationError(TuningError, ValueError):
    """An argument to ``Tuner``, ``tune`` or ``run`` is invalid.

    ``argument`` names it and ``problem`` says what is wrong.
    """

    def __init__(self, argument: str, problem: str) -> None:
        self.argument = argument
        self.problem = problem
        super().__init__(f"{argument}: {problem}")


class NoCompleteTrialError(TuningError, LookupError):
    """A study has no complete trial, so it has no best."""


class TunerStateError(TuningError, RuntimeError):
    """A :class:`~aiotune.Tuner` or :class:`~aiotune.Study` was used out of turn.

    For example: run twice, ``stream()`` or ``ask()`` outside ``async with``,
    a Tuner's ``result`` read before the study ended, or a ``tell`` of a trial
    that was never asked or was already told.
    """


class MissingExtraError(TuningError, ImportError):
    """An optional feature needs a package that is not installed.

    ``extra`` is the name to install: ``pip install 'aiotune[<extra>]'``.
    """

    def __init__(self, feature: str, extra: str) -> None:
        self.feature = feature
        self.extra = extra
        super().__init__(f"{feature} needs the {extra!r} extra: pip install 'aiotune[{extra}]'")


class Pruned(Exception):
    """Raised inside an objective by ``trial.report`` when the pruner stops the trial.

    Let it propagate out of the objective: the trial is then recorded as
    ``pruned`` with the intermediate values it reported.
    """

    def __init__(self, step: int | None = None) -> None:
        self.step = step
        super().__init__(f"trial pruned at step {step}" if step is not None else "trial pruned")


class PoolClosedError(TuningError, RuntimeError):
    """A :class:`~aiotune.WorkerPool` was closed while a study used it.

    A trial running or queued when the pool is closed (``terminate()``, or
    leaving ``async with pool`` while the study runs) fails with this error,
    and a study whose next trial the pool refuses ends with it.
    """
