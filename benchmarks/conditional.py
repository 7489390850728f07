"""Conditional spaces: aiotune on a tree against Random, Optuna's TPE and a flattened space.

Two tasks, each minimised by every method for several seeds:

* ``jenatton`` — the tree-structured synthetic function of Jenatton et al.,
  *Bayesian Optimization with Tree-structured Dependencies* (ICML 2017): a
  binary root ``x1`` picks ``x2`` or ``x3``, each picks one of four leaves
  ``x4..x7`` in [-1, 1]; ``r8`` / ``r9`` in [0, 1] are shared by the two
  leaves under ``x1 = 0`` / ``x1 = 1``. ``f = leaf^2 + {0.1, 0.2, 0.3, 0.4} +
  r``: optimum 0.1 (``x1 = x2 = 0``, ``x4 = 0``, ``r8 = 0``).
* ``digits`` — model selection and tuning on scikit-learn's digits: SVM
  (kernel; C; gamma for rbf), random forest (10-50 trees, depth, features),
  k-NN (neighbours, weights) or logistic regression (C); 3-fold
  cross-validated error.

Methods: ``Bayesian`` (aiotune's GP on the tree), ``Flat`` (the same
strategy on the flattened space, every parameter always active, the
objective ignoring those that do not apply — the ablation), ``Random``
(aiotune, on the tree) and ``TPE`` (Optuna's default sampler, define-by-run:
the objective asks only for the parameters of the branch it is on).
aiotune studies run through ``at.tune``; each study runs the largest budget
once and smaller budgets are read off its first trials.

Reported: per task, budget and method, the median (and mean) over seeds of
the best value found — for ``jenatton`` that is the regret + 0.1 — and for
``jenatton`` how many seeds got within 1e-3 of the optimum.

    python benchmarks/conditional.py                      # 10 seeds (5 for digits)
    python benchmarks/conditional.py --tasks digits --ml-seeds 3
    python benchmarks/conditional.py --seeds 1 --budgets 12 --tasks jenatton
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from _machine import machine

import aiotune as at

Params = dict[str, Any]


# -- the Jenatton et al. (2017) tree -----------------------------------------------------


def jenatton_space(flat: bool) -> at.Space:
    """The tree; with ``flat``, every parameter always active."""

    def when(condition: dict[str, Any]) -> dict[str, Any] | None:
        return None if flat else condition

    return at.Space(
        x1=at.Categorical([0, 1]),
        x2=at.Categorical([0, 1], when=when({"x1": 0})),
        x3=at.Categorical([0, 1], when=when({"x1": 1})),
        x4=at.Float(-1.0, 1.0, when=when({"x2": 0})),
        x5=at.Float(-1.0, 1.0, when=when({"x2": 1})),
        x6=at.Float(-1.0, 1.0, when=when({"x3": 0})),
        x7=at.Float(-1.0, 1.0, when=when({"x3": 1})),
        r8=at.Float(0.0, 1.0, when=when({"x1": 0})),
        r9=at.Float(0.0, 1.0, when=when({"x1": 1})),
    )


def jenatton(p: Params) -> float:
    """Jenatton et al. (2017), section 6.1; minimum 0.1. Reads only the active parameters."""
    if p["x1"] == 0:
        if p["x2"] == 0:
            return float(p["x4"] ** 2 + 0.1 + p["r8"])
        return float(p["x5"] ** 2 + 0.2 + p["r8"])
    if p["x3"] == 0:
        return float(p["x6"] ** 2 + 0.3 + p["r9"])
    return float(p["x7"] ** 2 + 0.4 + p["r9"])


def jenatton_optuna(trial: Any) -> float:
    """Define-by-run: only the branch's parameters are asked for."""
    p: Params = {"x1": trial.suggest_categorical("x1", [0, 1])}
    if p["x1"] == 0:
        p["x2"] = trial.suggest_categorical("x2", [0, 1])
        p["r8"] = trial.suggest_float("r8", 0.0, 1.0)
        leaf = "x4" if p["x2"] == 0 else "x5"
    else:
        p["x3"] = trial.suggest_categorical("x3", [0, 1])
        p["r9"] = trial.suggest_float("r9", 0.0, 1.0)
        leaf = "x6" if p["x3"] == 0 else "x7"
    p[leaf] = trial.suggest_float(leaf, -1.0, 1.0)
    return jenatton(p)


# -- model selection on digits -----------------------------------------------------------

_DIGITS: Any = None


def _data() -> Any:
    global _DIGITS
    if _DIGITS is None:
        from sklearn.datasets import load_digits

        _DIGITS = load_digits(return_X_y=True)
    return _DIGITS


def digits_space(flat: bool) -> at.Space:
    """Four model families and their own parameters; with ``flat``, all always active."""

    def when(condition: dict[str, Any]) -> dict[str, Any] | None:
        return None if flat else condition

    return at.Space(
        model=at.Categorical(["svm", "rf", "knn", "logreg"]),
        svm_kernel=at.Categorical(["rbf", "linear"], when=when({"model": "svm"})),
        svm_C=at.Float(1e-3, 1e3, log=True, when=when({"model": "svm"})),
        svm_gamma=at.Float(1e-5, 1e0, log=True, when=when({"svm_kernel": "rbf"})),
        rf_trees=at.Int(10, 50, log=True, when=when({"model": "rf"})),
        rf_depth=at.Int(2, 32, log=True, when=when({"model": "rf"})),
        rf_features=at.Float(0.02, 0.5, log=True, when=when({"model": "rf"})),
        knn_k=at.Int(1, 30, when=when({"model": "knn"})),
        knn_weights=at.Categorical(["uniform", "distance"], when=when({"model": "knn"})),
        lr_C=at.Float(1e-4, 1e2, log=True, when=when({"model": "logreg"})),
    )


def digits_error(p: Params) -> float:
    """3-fold cross-validated error of the chosen model (reads the active parameters only)."""
    import warnings

    from sklearn.ensemble import RandomForestClassifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    x, y = _data()
    model: Any
    if p["model"] == "svm":
        gamma = p["svm_gamma"] if p["svm_kernel"] == "rbf" else "scale"
        model = SVC(kernel=p["svm_kernel"], C=p["svm_C"], gamma=gamma, max_iter=20_000)
    elif p["model"] == "rf":
        model = RandomForestClassifier(
            n_estimators=p["rf_trees"],
            max_depth=p["rf_depth"],
            max_features=p["rf_features"],
            random_state=0,
            n_jobs=1,
        )
    elif p["model"] == "knn":
        model = KNeighborsClassifier(n_neighbors=p["knn_k"], weights=p["knn_weights"])
    else:
        model = make_pipeline(
            StandardScaler(), LogisticRegression(C=p["lr_C"], max_iter=100, tol=1e-3)
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        accuracy = cross_val_score(model, x, y, cv=3, n_jobs=1).mean()
    return float(1.0 - accuracy)


def digits_optuna(trial: Any) -> float:
    """Define-by-run: only the chosen model's parameters are asked for."""
    p: Params = {"model": trial.suggest_categorical("model", ["svm", "rf", "knn", "logreg"])}
    if p["model"] == "svm":
        p["svm_kernel"] = trial.suggest_categorical("svm_kernel", ["rbf", "linear"])
        p["svm_C"] = trial.suggest_float("svm_C", 1e-3, 1e3, log=True)
        if p["svm_kernel"] == "rbf":
            p["svm_gamma"] = trial.suggest_float("svm_gamma", 1e-5, 1e0, log=True)
    elif p["model"] == "rf":
        p["rf_trees"] = trial.suggest_int("rf_trees", 10, 50, log=True)
        p["rf_depth"] = trial.suggest_int("rf_depth", 2, 32, log=True)
        p["rf_features"] = trial.suggest_float("rf_features", 0.02, 0.5, log=True)
    elif p["model"] == "knn":
        p["knn_k"] = trial.suggest_int("knn_k", 1, 30)
        p["knn_weights"] = trial.suggest_categorical("knn_weights", ["uniform", "distance"])
    else:
        p["lr_C"] = trial.suggest_float("lr_C", 1e-4, 1e2, log=True)
    return digits_error(p)


# -- running ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """A task: its tree and flattened spaces, its objective, Optuna's define-by-run form."""

    name: str
    space: Callable[[bool], at.Space]
    f: Callable[[Params], float]
    optuna_f: Callable[[Any], float]
    expensive: bool
    optimum: float | None = None


TASKS = {
    "jenatton": Task(
        "jenatton", jenatton_space, jenatton, jenatton_optuna, expensive=False, optimum=0.1
    ),
    "digits": Task("digits", digits_space, digits_error, digits_optuna, expensive=True),
}
METHODS = ("Bayesian", "Flat", "Random", "TPE")


async def run_aiotune(task: Task, method: str, seed: int, budget: int) -> list[float]:
    """The scores of one study, in trial order."""
    flat = method == "Flat"
    space = task.space(flat)
    strategy: Any = at.Random(seed=seed) if method == "Random" else at.Bayesian(seed=seed)
    objective: Callable[..., Any]
    options: dict[str, Any] = {}
    tree = task.space(False)
    f = task.f
    if flat:
        # The objective of the flattened space sees every parameter and uses those that apply.
        def applies(params: Params) -> Params:
            return {k: v for k, v in params.items() if k in tree.active(params)}

        inner = f

        def f(params: Params) -> float:
            return inner(applies(params))

    if task.expensive:
        objective, options["executor"] = f, "thread"
    else:

        async def cheap(params: Params) -> float:
            return f(params)

        objective = cheap
    result = await at.tune(
        objective,
        space,
        strategy=strategy,
        max_trials=budget,
        concurrency=1,
        direction="minimize",
        **options,
    )
    return [t.score if t.score is not None else math.inf for t in result.trials]


def run_optuna(task: Task, seed: int, budget: int) -> list[float]:
    """Optuna's default sampler (TPE), define-by-run."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(task.optuna_f, n_trials=budget)
    return [t.value if t.value is not None else math.inf for t in study.trials]


async def one_study(task: Task, method: str, seed: int, budget: int) -> list[float]:
    """Run ``method`` on ``task`` with ``seed`` for ``budget`` trials."""
    if method == "TPE":
        return await asyncio.to_thread(run_optuna, task, seed, budget)
    return await run_aiotune(task, method, seed, budget)


async def main(args: argparse.Namespace) -> None:
    """Run every task x method x seed and print the medians."""
    try:  # one BLAS thread: the models are small and the machine is shared
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    budgets = sorted(int(b) for b in args.budgets.split(","))
    methods = args.methods.split(",")
    print(f"# benchmarks/conditional.py — {machine()}")
    for name in args.tasks.split(","):
        task = TASKS[name]
        seeds = args.ml_seeds if task.expensive else args.seeds
        best: dict[str, dict[int, list[float]]] = {m: {b: [] for b in budgets} for m in methods}
        started = time.perf_counter()
        for method in methods:
            for seed in range(seeds):
                scores = await one_study(task, method, seed, budgets[-1])
                for budget in budgets:
                    best[method][budget].append(min(scores[:budget]))
                if args.progress:
                    bests = ", ".join(f"{b}: {best[method][b][-1]:.4g}" for b in budgets)
                    print(f"# {name} {method} seed {seed}: {bests}", flush=True)
        elapsed = time.perf_counter() - started
        print(f"\n## {name}: median (mean) best over {seeds} seeds ({elapsed:.0f} s)\n")
        print("| trials | " + " | ".join(methods) + " |")
        print("|---:|" + "---:|" * len(methods))
        for budget in budgets:
            cells = [
                f"{statistics.median(best[m][budget]):.4g} ({statistics.mean(best[m][budget]):.4g})"
                for m in methods
            ]
            print(f"| {budget} | " + " | ".join(cells) + " |")
        if task.optimum is not None:
            near = [sum(b <= task.optimum + 1e-3 for b in best[m][budgets[-1]]) for m in methods]
            print(
                f"\nseeds within 1e-3 of the optimum at {budgets[-1]} trials: "
                + ", ".join(f"{m} {n}/{seeds}" for m, n in zip(methods, near, strict=True))
            )
    print(f"\nload at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds of the synthetic task")
    parser.add_argument("--ml-seeds", type=int, default=5, help="seeds of the digits task")
    parser.add_argument("--budgets", default="25,50,100")
    parser.add_argument("--tasks", default="jenatton,digits")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--progress", action="store_true", help="print each study's bests")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
