"""Benchmark: does ASHA keep the best score while spending far fewer epochs?

The task is a real learning curve that ships with scikit-learn: an
``SGDClassifier`` trained epoch by epoch (``partial_fit``) on the digits data
set, reporting its validation accuracy after every epoch, for up to
``EPOCHS`` (27) epochs. Random search runs ``--trials`` trials twice per seed,
with the same params for each trial number: once without a pruner, once with
``ASHA(min_resource=1, reduction_factor=3, max_resource=27)`` (rungs at
epochs 1, 3 and 9). A trial's
model is seeded by its number, so a pruned trial's curve is exactly the
unpruned one cut short: the comparison measures the pruner, not noise.

Target (issue #6): over the seeds, the median ASHA best validation accuracy
is within 1% of the unpruned best, and the median share of epochs spent is
at most 40%.

Two modes:

* ``tune`` — the real thing: ``at.run(objective, space, pruner=...)`` on
  aiotune's process pool (``--concurrency`` workers);
* ``simulation`` — a sequential loop that drives the pruner's state directly
  (``bind``/``report``/``finish``, exactly as the orchestrator would with
  ``concurrency=1``), for as long as ``Tuner(pruner=...)`` is not wired in.

``--mode auto`` (the default) picks ``tune`` when the Tuner accepts a pruner.

    .venv/bin/python benchmarks/pruning.py [--seeds 5] [--trials 81] [--mode auto]
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.datasets import load_digits  # type: ignore[import-untyped]
from sklearn.exceptions import ConvergenceWarning  # type: ignore[import-untyped]
from sklearn.linear_model import SGDClassifier  # type: ignore[import-untyped]
from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]
from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

import aiotune as at
from aiotune.pruning import ASHA, Pruner
from aiotune.strategies.random import RandomCore

SPACE = at.Space(
    loss=at.Categorical(["hinge", "log_loss", "modified_huber", "perceptron"]),
    penalty=at.Categorical(["l2", "l1", "elasticnet"]),
    alpha=at.Float(1e-7, 1e-1, log=True),
    learning_rate=at.Categorical(["constant", "optimal", "invscaling", "adaptive"]),
    eta0=at.Float(1e-5, 1.0, log=True),
    average=at.Bool(),
)
EPOCHS = 27  # the unpruned budget of a trial, and ASHA's max_resource


@functools.cache
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits, split 75/25 (stratified, fixed) and standardised on the training part."""
    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=0.25, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(x_train)
    return scaler.transform(x_train), scaler.transform(x_val), y_train, y_val


def objective(params: dict[str, Any], trial: Any) -> float:
    """Train up to ``EPOCHS`` epochs, one at a time; report validation accuracy after each.

    The model is seeded by the trial number, so trial *k* draws the same
    curve with or without a pruner.
    """
    x_train, x_val, y_train, y_val = data()
    model = SGDClassifier(random_state=trial.number, **params)
    classes = np.unique(y_train)
    accuracy = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for epoch in range(1, EPOCHS + 1):
            model.partial_fit(x_train, y_train, classes=classes)
            accuracy = float(model.score(x_val, y_val))
            trial.report(accuracy, epoch)
    return accuracy


@dataclass(frozen=True)
class Run:
    """One study: its best validation accuracy, the epochs it spent, and its wall time."""

    best: float
    epochs: int
    seconds: float
    pruned: int


def summarise(trials: tuple[at.Trial, ...], seconds: float) -> Run:
    """A :class:`Run` from a study's trials."""
    scores = [t.score for t in trials if t.status is at.TrialStatus.COMPLETE and t.score]
    return Run(
        best=max(scores),
        epochs=sum(len(t.intermediate) for t in trials),
        seconds=seconds,
        pruned=sum(t.status is at.TrialStatus.PRUNED for t in trials),
    )


# -- the simulation: the orchestrator's calls to the pruner, one trial at a time ----------


class SimulatedContext:
    """A stand-in for the trial context: ``report`` asks the pruner state directly."""

    def __init__(self, number: int, params: Mapping[str, Any], state: Any) -> None:
        self.number = number
        self.params = params
        self.intermediate: dict[int, float] = {}
        self._state = state

    def report(self, value: float, step: int) -> None:
        """Record the value; raise ``at.Pruned`` when the pruner says stop."""
        self.intermediate[step] = value
        if self._state is not None and self._state.report(self.number, step, value):
            raise at.Pruned(step)


def simulate(seed: int, trials: int, pruner: Pruner | None) -> Run:
    """Random search with ``seed`` run sequentially, driving ``pruner`` as the Tuner would."""
    core = RandomCore(SPACE, seed)  # the params at.Random(seed) gives each trial number
    state = None if pruner is None else pruner.bind("maximize")
    records: list[at.Trial] = []
    started = time.perf_counter()
    for number in range(trials):
        params = core.ask(number, {})
        context = SimulatedContext(number, params, state)
        try:
            score: float | None = objective(params, context)
            status = at.TrialStatus.COMPLETE
        except at.Pruned:
            score = context.intermediate[max(context.intermediate)]
            status = at.TrialStatus.PRUNED
        record = at.Trial(number, params, status, score, dict(context.intermediate))
        if state is not None:
            state.finish(record)
        records.append(record)
    return summarise(tuple(records), time.perf_counter() - started)


# -- the real thing ------------------------------------------------------------------------


def tune(seed: int, trials: int, pruner: Pruner | None, concurrency: int) -> Run:
    """Random search with ``seed`` through ``at.run`` on the process pool."""
    options: dict[str, Any] = {"pruner": pruner} if pruner is not None else {}
    started = time.perf_counter()
    result = at.run(
        objective,
        SPACE,
        strategy=at.Random(seed=seed),
        max_trials=trials,
        concurrency=concurrency,
        **options,
    )
    return summarise(result.trials, time.perf_counter() - started)


def wired() -> bool:
    """Whether ``Tuner(pruner=...)`` is wired in."""
    try:
        at.Tuner(objective, SPACE, pruner=ASHA())
    except at.ConfigurationError:
        return False
    return True


def main() -> None:
    """Run both arms for each seed and print the table and the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=81)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--mode", choices=["auto", "tune", "simulation"], default="auto")
    args = parser.parse_args()
    mode = args.mode if args.mode != "auto" else ("tune" if wired() else "simulation")
    asha = ASHA(min_resource=1, reduction_factor=3, max_resource=EPOCHS)

    def study(seed: int, pruner: Pruner | None) -> Run:
        if mode == "simulation":
            return simulate(seed, args.trials, pruner)
        return tune(seed, args.trials, pruner, args.concurrency)

    print(
        f"mode: {mode}"
        + (" (sequential loop driving the pruner directly)" * (mode == "simulation"))
    )
    print(f"{args.trials} random-search trials x up to {EPOCHS} epochs; {asha!r}")
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs; "
        f"load average at start: {os.getloadavg()[0]:.1f} (wall times are only as clean as that)"
    )
    print()
    print(
        "seed  best(none)  best(ASHA)  gap      epochs(none)  epochs(ASHA)  share   pruned  "
        "seconds(none)  seconds(ASHA)"
    )
    gaps, shares, speedups = [], [], []
    for seed in range(args.seeds):
        plain, pruned = study(seed, None), study(seed, asha)
        gap = (plain.best - pruned.best) / plain.best
        share = pruned.epochs / plain.epochs
        gaps.append(gap)
        shares.append(share)
        speedups.append(plain.seconds / pruned.seconds)
        print(
            f"{seed:4d}  {plain.best:10.4f}  {pruned.best:10.4f}  {gap:+7.2%}  {plain.epochs:12d}  "
            f"{pruned.epochs:12d}  {share:6.1%}  {pruned.pruned:6d}  {plain.seconds:13.2f}  "
            f"{pruned.seconds:13.2f}"
        )
    gap, share = statistics.median(gaps), statistics.median(shares)
    print()
    print(f"median gap in best accuracy: {gap:+.2%} (target: within 1%)")
    print(f"median share of epochs spent: {share:.1%} (target: at most 40%)")
    print(f"median wall-time speed-up: {statistics.median(speedups):.2f}x")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    print("target met" if gap <= 0.01 and share <= 0.40 else "TARGET MISSED")


if __name__ == "__main__":
    main()
