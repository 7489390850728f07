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

A third mode, ``compare`` (issue #14, part 4), asks whether a model-based
search makes better use of the epochs: Random, Random+ASHA, Bayesian,
Bayesian+ASHA, Bayesian+HB (``ASHA(..., brackets=3)``, asynchronous
Hyperband; all through ``at.run``, ``--concurrency`` workers) and Optuna's TPE
with its ``SuccessiveHalvingPruner`` (rungs at 1, 3 and 9 epochs; the bench
extra) each run until they have spent ``--budget`` epochs (``--methods`` also
takes Random+HB, Random+ASHA3 and Bayesian+ASHA3, ``ASHA3`` being
``ASHA(min_resource=3, ...)``). The reference is
Random+ASHA's best over its first ``--trials`` trials; the table gives the
epochs each method spent before its best first reached it (as a share of the
epochs Random+ASHA's ``--trials`` trials spent; target for Bayesian+ASHA: at
most 50%), and the median best at equal epoch budgets.

Two tasks for ``compare`` (``--task``): ``holdout`` (the default, every table before the
seventh session's: one 75/25 split, one SGD seed per trial) and ``cv``
(3-fold cross-validated accuracy, three SGD seeds per trial, a less noisy
final value; see :func:`objective_cv`). ``--mode noise`` measures each
task's spread over model seeds.

    .venv/bin/python benchmarks/pruning.py [--seeds 5] [--trials 81] [--mode auto]
    .venv/bin/python benchmarks/pruning.py --mode compare --seeds 10 --budget 800 --concurrency 1
    .venv/bin/python benchmarks/pruning.py --mode compare --task cv --seeds 20 --budget 400 \\
        --budgets 100,150,200,300,400 --concurrency 1 --cache cv.json
    .venv/bin/python benchmarks/pruning.py --mode noise --trials 24 --seeds 4
"""

from __future__ import annotations

import argparse
import bisect
import functools
import json
import math
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
from sklearn.model_selection import (  # type: ignore[import-untyped]
    StratifiedKFold,
    train_test_split,
)
from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

import aiotune as at
from aiotune.pruning import ASHA, Pruner
from aiotune.strategies.random import RandomCore

LOSSES = ["hinge", "log_loss", "modified_huber", "perceptron"]
PENALTIES = ["l2", "l1", "elasticnet"]
SCHEDULES = ["constant", "optimal", "invscaling", "adaptive"]
SPACE = at.Space(
    loss=at.Categorical(LOSSES),
    penalty=at.Categorical(PENALTIES),
    alpha=at.Float(1e-7, 1e-1, log=True),
    learning_rate=at.Categorical(SCHEDULES),
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


FOLDS = 3  # the cv task's folds


@functools.cache
def folds() -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], ...]:
    """Digits in ``FOLDS`` stratified folds (fixed), each standardised on its training part."""
    x, y = load_digits(return_X_y=True)
    out = []
    for train, val in StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(x, y):
        scaler = StandardScaler().fit(x[train])
        out.append((scaler.transform(x[train]), scaler.transform(x[val]), y[train], y[val]))
    return tuple(out)


def objective_cv(params: dict[str, Any], trial: Any) -> float:
    """The ``cv`` task: ``FOLDS``-fold cross-validated accuracy after every epoch.

    One model per fold, seeded by ``FOLDS * trial.number + fold``, each
    trained one epoch at a time on its training folds; after every epoch the
    trial reports the accuracy over all 1,797 digits, each predicted by the
    model that did not train on it. So the final value averages over three
    SGD seeds and four times the validation digits of :func:`objective` (one
    digit is 1/1797 instead of 1/450). An "epoch" here is one epoch of each
    of the ``FOLDS`` models (about 2.7 times the compute of an epoch of
    :func:`objective`, the same for every method, so shares of epochs are
    unchanged by it).
    """
    splits = folds()
    models = [SGDClassifier(random_state=FOLDS * trial.number + i, **params) for i in range(FOLDS)]
    classes = np.unique(splits[0][2])
    total = sum(len(y_val) for _, _, _, y_val in splits)
    accuracy = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for epoch in range(1, EPOCHS + 1):
            correct = 0
            for model, (x_train, x_val, y_train, y_val) in zip(models, splits, strict=True):
                model.partial_fit(x_train, y_train, classes=classes)
                correct += int((model.predict(x_val) == y_val).sum())
            accuracy = correct / total
            trial.report(accuracy, epoch)
    return accuracy


TASKS = {"holdout": objective, "cv": objective_cv}  # --task


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


# -- the comparison at equal epochs: model-based pruning against random and Optuna -------

PRUNERS: dict[str, Pruner] = {  # a method's pruner, by the name after the "+"
    "ASHA": ASHA(min_resource=1, reduction_factor=3, max_resource=EPOCHS),
    # asynchronous Hyperband: trial n's rungs start at 3**(n % 3): 1, 3, 9; 3, 9; 9
    "HB": ASHA(min_resource=1, reduction_factor=3, max_resource=EPOCHS, brackets=3),
    "ASHA3": ASHA(min_resource=3, reduction_factor=3, max_resource=EPOCHS),  # rungs 3, 9
}
METHODS = ("Random", "Random+ASHA", "Bayesian", "Bayesian+ASHA", "Bayesian+HB", "TPE+SHA")
EXTRA_METHODS = ("Random+HB", "Random+ASHA3", "Bayesian+ASHA3")  # --methods only


@dataclass(frozen=True)
class Curve:
    """A study's progress in finishing order: epochs spent so far and the best score so far.

    ``best`` is ``-inf`` until the first complete trial.
    """

    epochs: tuple[int, ...]
    best: tuple[float, ...]
    seconds: float

    @classmethod
    def of(cls, outcomes: list[tuple[int, float | None]], seconds: float) -> Curve:
        """The curve of ``(epochs, score or None if not complete)`` per trial, in order."""
        spent, best = 0, -math.inf
        epochs, bests = [], []
        for n, score in outcomes:
            spent += n
            if score is not None:
                best = max(best, score)
            epochs.append(spent)
            bests.append(best)
        return cls(tuple(epochs), tuple(bests), seconds)

    def best_at(self, budget: int) -> float:
        """The best score once no more than ``budget`` epochs have been spent."""
        i = bisect.bisect_right(self.epochs, budget)
        return self.best[i - 1] if i else -math.inf

    def epochs_to(self, target: float) -> float:
        """The epochs spent when the best score first reached ``target`` (``inf``: never)."""
        for spent, best in zip(self.epochs, self.best, strict=True):
            if best >= target:
                return float(spent)
        return math.inf


class EpochBudget:
    """An observer that stops the study once its trials have spent ``budget`` epochs
    (and at least ``min_trials`` trials have finished)."""

    def __init__(self, budget: int, min_trials: int = 0) -> None:
        self.budget, self.min_trials = budget, min_trials
        self.spent = self.finished = 0

    async def on_trial(self, trial: at.Trial, tuner: Any) -> None:
        """Count the trial's epochs; stop the study at the budget."""
        self.spent += len(trial.intermediate)
        self.finished += 1
        if self.spent >= self.budget and self.finished >= self.min_trials:
            tuner.stop(f"{self.budget} epochs spent")


def aiotune_curve(
    method: str,
    seed: int,
    budget: int,
    concurrency: int,
    min_trials: int = 0,
    task: str = "holdout",
) -> Curve:
    """``method`` (an aiotune one) with ``seed`` through ``at.run`` on ``task`` until
    ``budget`` epochs (and at least ``min_trials`` trials)."""
    strategy: Any = at.Bayesian(seed=seed) if method.startswith("Bayesian") else at.Random(seed)
    options: dict[str, Any] = {}
    if "+" in method:
        options["pruner"] = PRUNERS[method.split("+")[1]]
    started = time.perf_counter()
    result = at.run(
        TASKS[task],
        SPACE,
        strategy=strategy,
        max_trials=100_000,
        concurrency=concurrency,
        observers=[EpochBudget(budget, min_trials)],
        **options,
    )
    seconds = time.perf_counter() - started
    trials = sorted(result.trials, key=lambda t: (t.finished_at or 0.0, t.number))
    return Curve.of(
        [(len(t.intermediate), t.score if t.is_complete else None) for t in trials], seconds
    )


def optuna_curve(seed: int, budget: int, task: str = "holdout") -> Curve:
    """Optuna's TPE with its ``SuccessiveHalvingPruner`` (rungs at 1, 3 and 9 epochs)."""
    import optuna  # the bench extra

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.SuccessiveHalvingPruner(
            min_resource=1, reduction_factor=3, min_early_stopping_rate=0
        ),
    )
    outcomes: list[tuple[int, float | None]] = []

    def suggest(trial: Any) -> dict[str, Any]:
        return {
            "loss": trial.suggest_categorical("loss", LOSSES),
            "penalty": trial.suggest_categorical("penalty", PENALTIES),
            "alpha": trial.suggest_float("alpha", 1e-7, 1e-1, log=True),
            "learning_rate": trial.suggest_categorical("learning_rate", SCHEDULES),
            "eta0": trial.suggest_float("eta0", 1e-5, 1.0, log=True),
            "average": trial.suggest_categorical("average", [False, True]),
        }

    class Context:  # objective() reports through this; the last epoch is never pruned
        def __init__(self, trial: Any) -> None:
            self.number, self._trial = trial.number, trial

        def report(self, value: float, step: int) -> None:
            self._trial.report(value, step)
            if step < EPOCHS and self._trial.should_prune():
                raise optuna.TrialPruned

    def optimise(trial: Any) -> float:
        return TASKS[task](suggest(trial), Context(trial))

    def count(study: Any, trial: Any) -> None:
        complete = trial.state is optuna.trial.TrialState.COMPLETE
        outcomes.append((len(trial.intermediate_values), trial.value if complete else None))
        if sum(n for n, _ in outcomes) >= budget:
            study.stop()

    started = time.perf_counter()
    study.optimize(optimise, callbacks=[count])
    return Curve.of(outcomes, time.perf_counter() - started)


def _epochs(value: float) -> str:
    return "never" if math.isinf(value) else f"{value:.0f}"


def compare(args: argparse.Namespace) -> None:
    """Every method to ``--budget`` epochs per seed; epochs to reach Random+ASHA's best."""
    methods = [m for m in args.methods.split(",") if m]
    known = METHODS + EXTRA_METHODS
    unknown = set(methods) - set(known)
    if unknown or "Random+ASHA" not in methods:
        raise SystemExit(f"--methods: from {', '.join(known)}, with Random+ASHA (the reference)")
    print(
        f"mode: compare, task {args.task}; every method runs until it has spent "
        f"{args.budget} epochs"
    )
    print(
        f"reference: Random+ASHA's best over its first {args.trials} trials "
        f"(ASHA(min_resource=1, reduction_factor=3, max_resource={EPOCHS}))"
    )
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs; concurrency {args.concurrency}; "
        f"load average at start: {os.getloadavg()[0]:.1f}"
    )
    print()
    print("seed  reference  epochs(ref)  first(ref)  " + "  ".join(f"{m:>13}" for m in methods))
    budgets = [int(b) for b in args.budgets.split(",")]
    to_reach: dict[str, list[float]] = {m: [] for m in methods}
    ratios: dict[str, list[float]] = {m: [] for m in methods}
    at_budget: dict[str, dict[int, list[float]]] = {m: {b: [] for b in budgets} for m in methods}
    seconds: dict[str, list[float]] = {m: [] for m in methods}
    cache: dict[str, Any] = {}
    if args.cache and os.path.exists(args.cache):
        with open(args.cache) as file:
            cache = json.load(file)

    def curve_of(m: str, seed: int) -> Curve:
        # Random's and Optuna's curves do not depend on aiotune's model: --cache keeps them
        key = f"{args.task}/{m}/{seed}/{args.budget}/{args.trials}/{args.concurrency}"
        if args.cache and key in cache:
            return Curve(tuple(cache[key][0]), tuple(cache[key][1]), cache[key][2])
        if m == "TPE+SHA":
            curve = optuna_curve(seed, args.budget, args.task)
        else:
            trials = args.trials if m == "Random+ASHA" else 0
            curve = aiotune_curve(m, seed, args.budget, args.concurrency, trials, args.task)
        if args.cache and not m.startswith("Bayesian"):
            cache[key] = [curve.epochs, curve.best, curve.seconds]
            with open(args.cache, "w") as file:
                json.dump(cache, file)
        return curve

    for seed in range(args.first_seed, args.first_seed + args.seeds):
        curves = {m: curve_of(m, seed) for m in methods}
        ref = curves["Random+ASHA"]
        k = min(args.trials, len(ref.epochs)) - 1
        target, spent = ref.best[k], ref.epochs[k]
        first = ref.epochs_to(target)
        cells = []
        for m, curve in curves.items():
            reach = curve.epochs_to(target)
            to_reach[m].append(reach)
            ratios[m].append(reach / spent)
            seconds[m].append(curve.seconds)
            for b in budgets:
                at_budget[m][b].append(curve.best_at(b))
            cells.append(f"{_epochs(reach):>6} {reach / spent:5.0%}"[-13:].rjust(13))
        print(f"{seed:4d}  {target:9.4f}  {spent:11d}  {first:10.0f}  " + "  ".join(cells))
        if args.verbose:  # each method's best at each budget, to merge runs of other seeds
            for m in methods:
                bests = " ".join(f"{at_budget[m][b][-1]:.4f}" for b in budgets)
                print(f"      best at {args.budgets}: {m} {bests}")
    print()
    print("epochs to reach Random+ASHA's best (median over seeds; share of Random+ASHA's epochs):")
    for m in methods:
        median = statistics.median(to_reach[m])
        share, wall = statistics.median(ratios[m]), statistics.median(seconds[m])
        # how many seeds got there at all, and within half: the median alone swings with
        # which seeds a small change in the first asks sends past the budget
        reached = sum(math.isfinite(r) for r in ratios[m])
        half = sum(r <= 0.5 for r in ratios[m])
        print(
            f"  {m:14} {_epochs(median):>6}  {share:6.0%}  (reached in {reached}/{len(ratios[m])}"
            f" seeds, within 50% in {half}; wall {wall:.0f} s)"
        )
    print()
    print("median best validation accuracy at equal epochs:")
    print("  " + " " * 14 + "".join(f"{b:>9}" for b in budgets))
    for m in methods:
        print(f"  {m:14}" + "".join(f"{statistics.median(at_budget[m][b]):9.4f}" for b in budgets))
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    for m in methods:
        if m.startswith("Bayesian+"):
            share = statistics.median(ratios[m])
            print(
                f"{m} reaches the reference with {share:.0%} of Random+ASHA's epochs "
                f"(target: at most 50%): " + ("target met" if share <= 0.5 else "TARGET MISSED")
            )


class _Seeded:
    """A trial context that only seeds the model (``number``) and ignores reports."""

    def __init__(self, number: int) -> None:
        self.number = number

    def report(self, value: float, step: int) -> None:
        """Nothing to prune here."""


def noise(args: argparse.Namespace) -> None:
    """How much of a final value is the draw: each task's spread over SGD seeds per config.

    ``--trials`` random configurations (``at.Random(0)``'s first), each trained to the
    end ``--seeds`` times with different model seeds; per task, the standard deviation
    of the final value over the seeds, median over the configurations in the better
    half (by mean final value), against the spread of those configurations' means.
    """
    core = RandomCore(SPACE, 0)
    configs = [core.ask(k, {}) for k in range(args.trials)]
    print(f"mode: noise; {args.trials} configurations x {args.seeds} model seeds, {EPOCHS} epochs")
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    for name, task in TASKS.items():
        finals = np.array(
            [
                [task(params, _Seeded(10_000 * (r + 1) + k)) for r in range(args.seeds)]
                for k, params in enumerate(configs)
            ]
        )
        means, sds = finals.mean(axis=1), finals.std(axis=1, ddof=1)
        good = means >= np.median(means)
        print(
            f"  {name:8} seed sd (median, better half) {np.median(sds[good]):.4f}; "
            f"all configs {np.median(sds):.4f}; sd of the better half's means "
            f"{means[good].std(ddof=1):.4f}; best mean {means.max():.4f}"
        )
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


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
    parser.add_argument("--first-seed", type=int, default=0, help="compare: seeds from this one")
    parser.add_argument("--verbose", action="store_true", help="compare: bests by seed")
    parser.add_argument("--trials", type=int, default=81)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument(
        "--mode", choices=["auto", "tune", "simulation", "compare", "noise"], default="auto"
    )
    parser.add_argument(
        "--task", choices=list(TASKS), default="holdout", help="compare: holdout (before) or cv"
    )
    parser.add_argument("--budget", type=int, default=1200, help="compare: epochs per study")
    parser.add_argument("--budgets", default="100,200,300,400,600,800,1200")
    parser.add_argument("--methods", default=",".join(METHODS), help="compare: which methods")
    parser.add_argument(
        "--cache", help="compare: keep Random's and TPE's curves in this JSON file, reuse them"
    )
    args = parser.parse_args()
    if args.mode == "compare":
        compare(args)
        return
    if args.mode == "noise":
        noise(args)
        return
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
