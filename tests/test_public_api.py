"""The public surface is exactly what is intended, and every name is documented."""

from __future__ import annotations

import inspect
import subprocess
import sys

import aiotune as at

PUBLIC = {
    # data model
    "Space", "Float", "Int", "Categorical", "Bool", "Trial", "TrialStatus", "ErrorInfo",
    "TuningResult", "ObserverFailure", "History", "Outcome",
    # running a study
    "Tuner", "tune", "run", "load", "RunningTrial", "DaskExecutor", "WorkerPool",
    # ask and tell
    "Study", "AskedTrial",
    # strategies and observers
    "Strategy", "Grid", "Random", "Bayesian", "Observer", "JsonlWriter", "Patience", "Target",
    "TimeBudget", "MaxFailures", "Progress",
    # seeing a study
    "report",
    # pruners
    "Pruner", "PrunerState", "MedianPruner", "ASHA",
    # errors
    "TuningError", "SpaceError", "JournalError", "ObjectiveError", "StrategyError",
    "ConfigurationError", "NoCompleteTrialError", "MissingExtraError", "TunerStateError",
    "Pruned", "PoolClosedError",
}  # fmt: skip


def test_all_is_exactly_the_public_surface_and_sorted() -> None:
    assert set(at.__all__) == PUBLIC
    assert list(at.__all__) == sorted(at.__all__)


def test_every_public_name_resolves_is_documented_and_reports_aiotune() -> None:
    for name in at.__all__:
        value = getattr(at, name)
        assert inspect.getdoc(value), f"aiotune.{name} has no docstring"
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__ == "aiotune", name
    assert "Space" in dir(at)


def test_star_import_gives_the_public_surface() -> None:
    namespace: dict[str, object] = {}
    exec("from aiotune import *", namespace)
    assert set(namespace) - {"__builtins__"} == PUBLIC


def test_every_error_is_a_tuning_error() -> None:
    for name in at.__all__:
        value = getattr(at, name)
        if inspect.isclass(value) and issubclass(value, Exception) and value is not at.Pruned:
            assert issubclass(value, at.TuningError), name


def test_importing_the_package_is_light() -> None:
    # Worker processes import aiotune to run a trial: that must not pull numpy in.
    code = "import aiotune, aiotune.execution.call, sys; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_worker_imports_neither_numpy_nor_anyio() -> None:
    # What a pool worker imports to run a batch of trials.
    code = (
        "import aiotune.execution.pool._worker, aiotune.execution.call, sys; "
        "print(sorted(m for m in ('numpy', 'anyio', 'asyncio') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_scipy_loads_only_when_a_model_is_fitted() -> None:
    # Building a study with the default Bayesian strategy must not import scipy (seconds,
    # on the event loop); its first model-based ask does, in the strategy's thread.
    code = (
        "import sys, aiotune as at, aiotune.tuner\n"
        "from aiotune.strategies.bayesian import BayesianCore\n"
        "core = BayesianCore(at.Space(x=at.Float(0, 1)), 0)\n"
        "print('scipy' in sys.modules)\n"
        "core.ask(0, {})\n"
        "print('scipy.stats' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
