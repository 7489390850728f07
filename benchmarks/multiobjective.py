"""Several objectives and constraints: aiotune's Bayesian against Random and Optuna.

Multi-objective problems (every objective minimised, but ``rfsize``'s
accuracy), scored by the hypervolume of the feasible Pareto front found within the budget, against a
fixed reference point (larger is better):

* ``zdt1``, ``zdt2`` — Zitzler, Deb & Thiele (2000), 2 objectives, d = 6,
  reference (1.1, 11);
* ``dtlz2`` — Deb et al. (2002), 3 objectives, d = 6, reference (2.5, 2.5, 2.5);
* ``rfsize`` — a real trade-off: a random forest on scikit-learn's digits
  (1,797 images, 10 classes), four integer hyper-parameters (trees 1-16,
  depth 1-12, features per split 1-16, samples per leaf 1-16); maximise the
  3-fold cross-validated accuracy, minimise the model size as
  ``log10(tree nodes)`` (the nodes of all trees, mean over the three fold
  models); reference (accuracy 0, log10 nodes 4). Both objectives are
  deterministic (fixed folds, ``random_state=0``), so every sampler sees the
  same function.

Constrained single-objective problems, scored by the best *feasible* value
found (``inf`` or ``-inf``, printed ``-``, when no trial was feasible):

* ``cbranin`` — Branin on [-5, 10] x [0, 15] subject to
  ``(x1 - 2.5)^2 + (x2 - 7.5)^2 <= 50`` (a disk that holds only one of the
  three global minima, 0.397887 at (pi, 2.275)), the constraint returned by the
  objective in an ``Outcome`` (smaller is better);
* ``rfbudget`` — a constrained ML task on ``rfsize``'s space: the best 3-fold
  accuracy (higher is better) of a random forest with at most 500 tree nodes
  (the constraint ``nodes - 500 <= 0``, measured by the same fit and returned
  in an ``Outcome``).

The two forest problems evaluate the same function, cached by parameters
for the whole run (a repeated configuration is fitted once, whichever
method or seed asks for it), and with ``--cache FILE`` across runs too: the
fits are deterministic, so the cache changes the time, never a result.

Methods: aiotune's ``Bayesian`` and ``Random`` through ``at.tune`` (an async
objective, so what is measured is what users get); Optuna's ``TPESampler``
(its default for one and for several objectives in the Optuna 5.0 measured
here) and its ``NSGAIISampler`` (the multi-objective default of Optuna 3),
both told the constraint (``trial.set_constraint``, or ``constraints_func``
before Optuna 5) for ``cbranin`` and ``rfbudget``, through ``study.optimize``.
Every study runs the largest budget once and the smaller budgets are read off
its first trials. Reported: the median over seeds of the hypervolume or best feasible
value, per problem, budget and method.

    python benchmarks/multiobjective.py                       # the full table (slow)
    python benchmarks/multiobjective.py --seeds 1 --budgets 12 --problems zdt1,cbranin
    python benchmarks/multiobjective.py --problems rfsize,rfbudget --cache fits.json
    python benchmarks/multiobjective.py --timing     # suggest time at 200 trials

``--timing`` measures how long a ``Bayesian`` suggestion takes with 200
finished trials (ZDT1's space, d = 6): one objective, two objectives, and one
objective with one constraint, interleaved in the same run so that their
ratios hold on a loaded machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _machine import machine

import aiotune as at
from aiotune.trial import hypervolume

Params = dict[str, Any]
D = 6


# -- problems ---------------------------------------------------------------------------


def zdt1(p: Params) -> tuple[float, float]:
    """ZDT1: a convex front, f2 = 1 - sqrt(f1) at g = 1."""
    x = [p[f"x{i}"] for i in range(D)]
    g = 1 + 9 * sum(x[1:]) / (D - 1)
    return x[0], g * (1 - math.sqrt(x[0] / g))


def zdt2(p: Params) -> tuple[float, float]:
    """ZDT2: a concave front, f2 = 1 - f1^2 at g = 1."""
    x = [p[f"x{i}"] for i in range(D)]
    g = 1 + 9 * sum(x[1:]) / (D - 1)
    return x[0], g * (1 - (x[0] / g) ** 2)


def dtlz2(p: Params) -> tuple[float, float, float]:
    """DTLZ2 with 3 objectives: the front is the positive octant of the unit sphere."""
    x = [p[f"x{i}"] for i in range(D)]
    g = sum((xi - 0.5) ** 2 for xi in x[2:])
    a, b = x[0] * math.pi / 2, x[1] * math.pi / 2
    r = 1 + g
    return r * math.cos(a) * math.cos(b), r * math.cos(a) * math.sin(b), r * math.sin(a)


def branin(p: Params) -> float:
    """Branin-Hoo on [-5, 10] x [0, 15]."""
    x1, x2 = p["x1"], p["x2"]
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return float((x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10)


def disk(p: Params) -> float:
    """The constraint of ``cbranin``: feasible when <= 0."""
    return (p["x1"] - 2.5) ** 2 + (p["x2"] - 7.5) ** 2 - 50.0


# -- a random forest on digits ---------------------------------------------------------

FOREST = at.Space(
    trees=at.Int(1, 16, log=True),
    depth=at.Int(1, 12),
    features=at.Int(1, 16, log=True),
    leaf=at.Int(1, 16, log=True),
)
NODES = 500  # the model-size budget of ``rfbudget``


FITS: dict[tuple[int, ...], tuple[float, float]] = {}  # the cache: params -> (accuracy, nodes)


def _forest(trees: int, depth: int, features: int, leaf: int) -> tuple[float, float]:
    """3-fold CV accuracy and mean total tree nodes of one forest (fitted once: ``FITS``)."""
    key = (trees, depth, features, leaf)
    if key in FITS:
        return FITS[key]
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_validate

    x, y = load_digits(return_X_y=True)
    model = RandomForestClassifier(
        n_estimators=trees,
        max_depth=depth,
        max_features=features,
        min_samples_leaf=leaf,
        random_state=0,
        n_jobs=1,
    )
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        done = cross_validate(model, x, y, cv=folds, return_estimator=True, n_jobs=1)
    nodes = [sum(t.tree_.node_count for t in f.estimators_) for f in done["estimator"]]
    FITS[key] = float(done["test_score"].mean()), float(sum(nodes) / len(nodes))
    return FITS[key]


def load_fits(path: Path) -> None:
    """Fill ``FITS`` from a cache file written by :func:`save_fits` (if it exists)."""
    if path.exists():
        for row in json.loads(path.read_text()):
            FITS[tuple(row[:4])] = (row[4], row[5])


def save_fits(path: Path) -> None:
    """Write ``FITS`` to ``path`` (atomically), for the next run."""
    rows = [[*key, *value] for key, value in sorted(FITS.items())]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows))
    tmp.replace(path)


def forest(p: Params) -> tuple[float, float]:
    """``(accuracy, nodes)`` of the forest ``p`` describes."""
    return _forest(int(p["trees"]), int(p["depth"]), int(p["features"]), int(p["leaf"]))


def forest_size(p: Params) -> tuple[float, float]:
    """``rfsize``: accuracy (maximise) and log10 of the tree nodes (minimise)."""
    accuracy, nodes = forest(p)
    return accuracy, math.log10(nodes)


def forest_accuracy(p: Params) -> float:
    """``rfbudget``'s objective: the 3-fold CV accuracy (maximise)."""
    return forest(p)[0]


def over_budget(p: Params) -> float:
    """``rfbudget``'s constraint: feasible when the forest has at most ``NODES`` nodes."""
    return forest(p)[1] - NODES


@dataclass(frozen=True)
class Problem:
    """A problem: its space, objective(s), directions and how a run is scored."""

    name: str
    space: at.Space
    f: Callable[[Params], Any]
    objectives: int
    reference: tuple[float, ...] = ()
    constraint: Callable[[Params], float] | None = None
    maximize: tuple[bool, ...] = ()  # per objective; empty: every objective is minimised
    optimum: str = ""  # the known best value, for the table's title
    blocking: bool = False  # a real fit: aiotune's objective runs it in a thread

    @property
    def directions(self) -> tuple[str, ...]:
        """``"maximize"`` or ``"minimize"`` per objective."""
        flags = self.maximize or (False,) * self.objectives
        return tuple("maximize" if m else "minimize" for m in flags)


UNIT = at.Space(**{f"x{i}": at.Float(0.0, 1.0) for i in range(D)})
PROBLEMS = {
    p.name: p
    for p in [
        Problem("zdt1", UNIT, zdt1, 2, (1.1, 11.0)),
        Problem("zdt2", UNIT, zdt2, 2, (1.1, 11.0)),
        Problem("dtlz2", UNIT, dtlz2, 3, (2.5, 2.5, 2.5)),
        Problem(
            "cbranin",
            at.Space(x1=at.Float(-5.0, 10.0), x2=at.Float(0.0, 15.0)),
            branin,
            1,
            constraint=disk,
            optimum="optimum 0.397887",
        ),
        Problem(
            "rfsize",
            FOREST,
            forest_size,
            2,
            (0.0, 4.0),
            maximize=(True, False),
            blocking=True,
        ),
        Problem(
            "rfbudget",
            FOREST,
            forest_accuracy,
            1,
            constraint=over_budget,
            maximize=(True,),
            blocking=True,
        ),
    ]
}


# -- one study --------------------------------------------------------------------------

Record = tuple[tuple[float, ...], bool]  # (scores, feasible) of a complete trial, in order


def score(problem: Problem, records: Sequence[Record]) -> float:
    """Hypervolume of the feasible points, or the best feasible value (``inf``, ``-inf``: none)."""
    feasible = [scores for scores, ok in records if ok]
    if problem.objectives == 1:
        if problem.maximize == (True,):
            return max((s[0] for s in feasible), default=-math.inf)
        return min((s[0] for s in feasible), default=math.inf)
    return hypervolume(feasible, problem.reference, problem.directions)  # type: ignore[arg-type]


async def run_aiotune(problem: Problem, strategy: Any, budget: int) -> list[Record]:
    """A study through ``at.tune`` with an async objective (a real fit goes to a thread)."""

    def outcome(params: Params) -> Any:
        value = problem.f(params)
        if problem.constraint is not None:
            return at.Outcome(value, constraints=(problem.constraint(params),))
        return value

    async def objective(params: Params) -> Any:
        if problem.blocking:
            return await asyncio.to_thread(outcome, params)
        return outcome(params)

    direction: Any = problem.directions if problem.objectives > 1 else problem.directions[0]
    result = await at.tune(
        objective,
        problem.space,
        strategy=strategy,
        max_trials=budget,
        concurrency=1,
        direction=direction,
    )
    return [(t.scores, t.feasible) for t in result.trials if t.is_complete]


def run_optuna(problem: Problem, method: str, seed: int, budget: int) -> list[Record]:
    """A study of Optuna's TPE or NSGA-II sampler through ``study.optimize``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    key = "constraint"

    def constraints(trial: Any) -> tuple[float]:
        return (trial.user_attrs[key],)

    modern = hasattr(optuna.trial.Trial, "set_constraint")  # constraints_func before Optuna 5
    func = constraints if problem.constraint and not modern else None
    sampler: Any
    if method == "Optuna NSGA-II":
        sampler = optuna.samplers.NSGAIISampler(seed=seed, constraints_func=func)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed, constraints_func=func)

    def objective(trial: Any) -> Any:
        params = {name: _suggest(trial, name, d) for name, d in problem.space.items()}
        if problem.constraint is not None:
            value = problem.constraint(params)
            trial.set_user_attr(key, value)
            if modern:
                trial.set_constraint(key, value)
        return problem.f(params)

    study = optuna.create_study(directions=list(problem.directions), sampler=sampler)
    study.optimize(objective, n_trials=budget)
    out: list[Record] = []
    for t in study.trials:
        if t.values is None:
            continue
        ok = problem.constraint is None or t.user_attrs[key] <= 0
        out.append((tuple(t.values), ok))
    return out


def _suggest(trial: Any, name: str, domain: Any) -> Any:
    """Optuna's ``suggest_*`` for one of aiotune's ``Float`` or ``Int`` domains."""
    if isinstance(domain, at.Int):
        return trial.suggest_int(name, domain.low, domain.high, log=domain.log)
    return trial.suggest_float(name, domain.low, domain.high, log=domain.log)


async def one_study(problem: Problem, method: str, seed: int, budget: int) -> list[Record]:
    """Run ``method`` on ``problem`` with ``seed`` for ``budget`` trials."""
    if method.startswith("Optuna"):
        return await asyncio.to_thread(run_optuna, problem, method, seed, budget)
    strategy = at.Random(seed=seed) if method == "Random" else at.Bayesian(seed=seed)
    return await run_aiotune(problem, strategy, budget)


# -- the table --------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{x:.4g}"


def timing(repeats: int) -> None:
    """Median seconds per ``BayesianCore.ask`` at 200 finished trials, per kind of study."""
    import time

    import numpy as np

    from aiotune.strategies.bayesian import BayesianCore

    kinds = {"one objective": "minimize", "two objectives": ("minimize", "minimize")}
    kinds["one objective, one constraint"] = "minimize"
    cores = {}
    for kind, direction in kinds.items():
        core = BayesianCore(UNIT, 0, direction=direction)
        rng = np.random.default_rng(0)
        for number in range(200):
            params = UNIT.sample(rng)
            scores = zdt1(params)
            core.tell(
                at.Trial(
                    number=number,
                    params=params,
                    status=at.TrialStatus.COMPLETE,
                    scores=scores if kind == "two objectives" else scores[1:],
                    constraints=(params["x0"] - 0.5,) if "constraint" in kind else None,
                )
            )
        core.ask(200, {})  # fit the hyper-parameters once, as a running study has
        cores[kind] = core
    seconds: dict[str, list[float]] = {kind: [] for kind in kinds}
    for r in range(repeats):
        for kind, core in cores.items():
            start = time.perf_counter()
            core.ask(201 + r, {})
            seconds[kind].append(time.perf_counter() - start)
    print(f"# Bayesian suggest time at 200 trials (d = 6) — {machine()}\n")
    print("| study | median ms | vs one objective |")
    print("|---|---|---|")
    base = statistics.median(seconds["one objective"])
    for kind, values in seconds.items():
        median = statistics.median(values)
        print(f"| {kind} | {1000 * median:.1f} | {median / base:.2f} |")


async def main_async(args: argparse.Namespace) -> None:
    budgets = sorted(int(b) for b in args.budgets.split(","))
    methods = args.methods.split(",")
    print(f"# aiotune multi-objective and constrained benchmark — {machine()}")
    print(f"seeds 0..{args.seeds - 1}; medians over seeds\n")
    if args.cache:
        load_fits(args.cache)
    for name in args.problems.split(","):
        problem = PROBLEMS[name]
        better = "higher" if problem.maximize == (True,) else "lower"
        what = (
            "hypervolume (higher is better)"
            if problem.objectives > 1
            else f"best feasible value ({better} is better{'; ' * bool(problem.optimum)}"
            f"{problem.optimum})"
        )
        print(f"## {name}: {what}\n")
        print("| budget | " + " | ".join(methods) + " |")
        print("|---" * (len(methods) + 1) + "|")
        table: dict[tuple[str, int], list[float]] = {}
        for method in methods:
            for seed in range(args.seeds):
                records = await one_study(problem, method, seed, budgets[-1])
                for budget in budgets:
                    table.setdefault((method, budget), []).append(score(problem, records[:budget]))
        for budget in budgets:
            cells = [_fmt(statistics.median(table[(m, budget)])) for m in methods]
            print(f"| {budget} | " + " | ".join(cells) + " |")
        print()
        if args.per_seed:
            for method in methods:
                values = ", ".join(_fmt(v) for v in table[(method, budgets[-1])])
                print(f"{method} at {budgets[-1]}, seed by seed: {values}")
            print()
        if args.cache and FITS:
            save_fits(args.cache)


def main() -> None:
    """Parse the arguments and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budgets", default="50,100")
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--methods", default="Bayesian,Random,Optuna TPE,Optuna NSGA-II")
    parser.add_argument("--per-seed", action="store_true", help="also print every seed's value")
    parser.add_argument(
        "--cache", type=Path, help="a JSON file of forest fits, read first and written after"
    )
    parser.add_argument("--timing", action="store_true", help="suggest time at 200 trials")
    parser.add_argument("--repeats", type=int, default=15, help="asks per kind with --timing")
    args = parser.parse_args()
    if args.timing:
        timing(args.repeats)
    else:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
