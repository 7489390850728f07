"""Search quality: aiotune's Bayesian against Random, Optuna (TPE and GP) and scikit-optimize.

Six noiseless problems (five synthetic ones with a known optimum, and an SVC
on the digits data set that ships with scikit-learn) and five noisy ones (the
noisy paraboloid of the tests, Branin and Hartmann-6 with Gaussian noise of 1%
and 5% of their range), each minimised by every method for several seeds.
aiotune studies run through the real orchestrator (``at.tune``: an async
objective for the cheap synthetic functions, the thread executor for the
SVC), so what is measured is what users get; Optuna runs through
``study.optimize``, scikit-optimize through ``gp_minimize``. Every study runs
the largest budget once and the smaller budgets are read off its first trials
(no method knows its budget).

Reported per problem, budget and method: the median over seeds of the best
value found, of the simple regret (best - optimum) where the optimum is known,
and of the time to suggest one trial's params. On a noisy problem "best" is
the *true* (noiseless) value of the recommended point: the best observed
trial for every method, and for Bayesian the best by its posterior mean
(``TuningResult.recommend``; the "Bayesian (observed)" row is the same runs
recommended by the best observation). With ``--concurrency 1,4,8`` the
Bayesian strategy also runs with 4 and 8 trials in flight (each synthetic
trial then sleeps 50-150 ms so that trials overlap, as real ones do).

``--timing`` instead measures how long a Bayesian suggestion takes as the
history grows (200 and 1,000 finished trials), how long the event loop
went without running while it did, the process's CPU time (every thread's:
BLAS threads spinning show there), and counts the work that load cannot
change (Cholesky factorisations, hyper-parameter objective calls, steps of
the acquisition's climb).

With ``--core --cache FILE`` (and concurrency 1 among ``--concurrency``),
sequential Bayesian is also ranked against the other methods' runs (kept in
``FILE``, run where missing), with the one-sided Mann-Whitney p-value that it
is worse than the method with the lowest median: with 10-20 seeds, medians
closer than their scatter swap ranks from one set of seeds to the next.
``--first-seed`` starts the seeds elsewhere than 0 (seeds 10-19 check 0-9).
A method named ``"Optuna GP c=8"`` (or TPE, any N) keeps that many trials in
flight on the same simulated clock as ``--core`` (TPE with its
``constant_liar``); with ``--core --cache`` each such method gets a column of
medians beside the ranking, to set Bayesian's c=8 against another method's.

    python benchmarks/quality.py                       # the full table (slow)
    python benchmarks/quality.py --seeds 1 --budgets 20 --problems branin
    python benchmarks/quality.py --timing
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import heapq
import json
import math
import statistics
import time
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _machine import machine

import aiotune as at
from aiotune.strategies import Bayesian, StrategyLike, suggest_function
from aiotune.strategies.bayesian import BayesianCore

Params = dict[str, Any]


# -- problems ---------------------------------------------------------------------------


def branin(p: Params) -> float:
    """Branin-Hoo on [-5, 10] x [0, 15]; three global minima of 0.397887."""
    x1, x2 = p["x1"], p["x2"]
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return float((x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10)


_H_A = np.array([
    [10, 3, 17, 3.5, 1.7, 8],
    [0.05, 10, 17, 0.1, 8, 14],
    [3, 3.5, 1.7, 10, 17, 8],
    [17, 8, 0.05, 10, 0.1, 14],
])  # fmt: skip
_H_P = 1e-4 * np.array([
    [1312, 1696, 5569, 124, 8283, 5886],
    [2329, 4135, 8307, 3736, 1004, 9991],
    [2348, 1451, 3522, 2883, 3047, 6650],
    [4047, 8828, 8732, 5743, 1091, 381],
])  # fmt: skip
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def _vector(p: Params, d: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.array([p[f"x{i}"] for i in range(d)], dtype=np.float64)


def hartmann6(p: Params) -> float:
    """Hartmann-6 on [0, 1]^6; minimum -3.32237."""
    x = _vector(p, 6)
    return float(-(_H_ALPHA * np.exp(-(_H_A * (x - _H_P) ** 2).sum(1))).sum())


def rosenbrock4(p: Params) -> float:
    """Rosenbrock in 4-D on [-5, 10]^4; minimum 0 at (1, 1, 1, 1)."""
    x = _vector(p, 4)
    return float((100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum())


def ackley5(p: Params) -> float:
    """Ackley in 5-D on [-32.768, 32.768]^5; minimum 0 at the origin."""
    x = _vector(p, 5)
    rms = math.sqrt(float((x**2).mean()))
    return float(
        -20 * math.exp(-0.2 * rms) - math.exp(float(np.cos(2 * np.pi * x).mean())) + 20 + math.e
    )


# Per optimizer: log10 of the best lr, best layers, log2 of the best width, and the
# value at that best; the categorical moves the optimum and sets how good it is.
_MIXED = {"sgd": (-1.0, 6, 8.0, 0.4), "adam": (-3.0, 3, 6.0, 0.0), "rmsprop": (-2.0, 4, 7.0, 0.2)}


def mixed(p: Params) -> float:
    """A mixed space: log float, stepped float, int, log int, a categorical that moves
    the optimum, and a bool. Minimum 0 (adam, lr=1e-3, 3 layers, width 64, ...)."""
    lr_opt, layers_opt, width_opt, offset = _MIXED[p["optimizer"]]
    u = math.log10(p["lr"]) - lr_opt
    v = (p["layers"] - layers_opt) / 3
    w = (math.log2(p["width"]) - width_opt) / 2
    dropout_opt = 0.1 if p["batchnorm"] else 0.3
    return float(
        offset + u * u + v * v + w * w + 0.5 * u * v + 4 * (p["dropout"] - dropout_opt) ** 2
    )


_DIGITS: tuple[Any, Any] | None = None


def svc_digits(p: Params) -> float:
    """3-fold cross-validated error of an RBF SVC on scikit-learn's digits data set."""
    global _DIGITS
    from sklearn.datasets import load_digits  # type: ignore[import-untyped]
    from sklearn.model_selection import cross_val_score  # type: ignore[import-untyped]
    from sklearn.svm import SVC  # type: ignore[import-untyped]

    if _DIGITS is None:
        _DIGITS = load_digits(return_X_y=True)
    x, y = _DIGITS
    return 1.0 - float(cross_val_score(SVC(C=p["C"], gamma=p["gamma"]), x, y, cv=3).mean())


def paraboloid(p: Params) -> float:
    """The paraboloid of the tests as a minimisation: minimum -1 at (0.42, 0.69)."""
    return float((p["x"] - 0.42) ** 2 + (p["y"] - 0.69) ** 2 - 1.0)


@dataclass(frozen=True)
class Problem:
    """A function to minimise over a space, with its optimum when known.

    ``noise`` draws the noise added to each observation of ``f`` (``None``:
    noiseless); :meth:`observe` seeds it by the study's seed and the params,
    so a run is repeatable whatever the order trials finish in.
    """

    space: at.Space
    f: Callable[[Params], float]
    optimum: float | None
    expensive: bool = False  # runs in the thread executor instead of on the loop
    noise: Callable[[np.random.Generator], float] | None = None

    def observe(self, params: Params, seed: int) -> float:
        """One (noisy) observation of ``f`` at ``params`` in the study of ``seed``."""
        value = self.f(params)
        if self.noise is None:
            return value
        key = zlib.crc32(repr(sorted(params.items())).encode())
        return value + self.noise(np.random.default_rng([seed, key]))


def _gauss(sd: float) -> Callable[[np.random.Generator], float]:
    return lambda rng: float(rng.normal(0.0, sd))


def _cube(d: int, low: float, high: float) -> at.Space:
    return at.Space({f"x{i}": at.Float(low, high) for i in range(d)})


PROBLEMS = {
    "branin": Problem(
        at.Space(x1=at.Float(-5.0, 10.0), x2=at.Float(0.0, 15.0)), branin, 0.397887357729738
    ),
    "hartmann6": Problem(_cube(6, 0.0, 1.0), hartmann6, -3.32236801141551),
    "rosenbrock4": Problem(_cube(4, -5.0, 10.0), rosenbrock4, 0.0),
    "ackley5": Problem(_cube(5, -32.768, 32.768), ackley5, 0.0),
    "mixed": Problem(
        at.Space(
            lr=at.Float(1e-5, 1.0, log=True),
            dropout=at.Float(0.0, 0.5, step=0.05),
            layers=at.Int(1, 8),
            width=at.Int(8, 1024, log=True),
            optimizer=at.Categorical(["sgd", "adam", "rmsprop"]),
            batchnorm=at.Bool(),
        ),
        mixed,
        0.0,
    ),
    "svc_digits": Problem(
        at.Space(C=at.Float(1e-2, 1e4, log=True), gamma=at.Float(1e-7, 1.0, log=True)),
        svc_digits,
        None,
        expensive=True,
    ),
}
# Noisy variants. Ranges over the domain: Branin [0.398, 308.1], Hartmann-6 [-3.32, 0].
_BRANIN_RANGE, _HARTMANN_RANGE = 308.129096 - 0.397887, 3.32237
PROBLEMS.update(
    {
        "paraboloid_noisy": Problem(
            at.Space(x=at.Float(0.0, 1.0), y=at.Float(0.0, 1.0)),
            paraboloid,
            -1.0,
            noise=lambda rng: -float(rng.uniform(0.0, 0.01)),  # the tests' U(0, 0.01) bonus
        ),
        **{
            f"{name}_noise{pct}": dataclasses.replace(
                PROBLEMS[name], noise=_gauss(pct / 100 * spread)
            )
            for name, spread in (("branin", _BRANIN_RANGE), ("hartmann6", _HARTMANN_RANGE))
            for pct in (1, 5)
        },
    }
)
NOISY = [name for name, problem in PROBLEMS.items() if problem.noise is not None]


# -- runners ----------------------------------------------------------------------------


@dataclass
class Run:
    """One study: the params and observed score of each trial by number, and the time of
    each suggestion."""

    params: list[Params | None]
    scores: list[float]
    suggest_seconds: list[float]

    def best(self, budget: int) -> float:
        """The best observed score among the first ``budget`` trials."""
        return min((s for s in self.scores[:budget] if math.isfinite(s)), default=math.inf)

    def recommended(self, budget: int) -> Params | None:
        """The params of the best observation among the first ``budget`` trials."""
        found = [(s, k) for k, s in enumerate(self.scores[:budget]) if math.isfinite(s)]
        return self.params[min(found)[1]] if found else None

    def by_posterior_mean(self, budget: int, space: at.Space, seed: int) -> Params | None:
        """The params of the first ``budget`` trials that Bayesian's posterior mean ranks first."""
        trials = tuple(
            at.Trial(k, p, at.TrialStatus.COMPLETE, s)
            for k, (p, s) in enumerate(zip(self.params[:budget], self.scores[:budget], strict=True))
            if p is not None and math.isfinite(s)
        )
        if not trials:
            return None
        result = at.TuningResult(trials, direction="minimize")
        return result.recommend(by=Bayesian(seed=seed).posterior_mean(space)).params


class Timed:
    """Wraps a strategy and records how long each suggestion took."""

    def __init__(self, inner: StrategyLike) -> None:
        self.inner = inner
        self.seconds: list[float] = []

    async def suggest(self, space: at.Space, history: at.History) -> AsyncIterator[Params]:
        generator = suggest_function(self.inner)(space, history)
        try:
            while True:
                start = time.perf_counter()
                try:
                    params = await anext(generator)
                except StopAsyncIteration:
                    return
                self.seconds.append(time.perf_counter() - start)
                yield params
        finally:
            await generator.aclose()  # type: ignore[attr-defined]


def _delay(params: Params) -> float:
    """A pseudo-random trial duration of 50-150 ms, fixed by the params."""
    return 0.05 + 0.1 * (zlib.crc32(repr(sorted(params.items())).encode()) / 2**32)


async def run_aiotune(
    problem: Problem, strategy: StrategyLike, budget: int, concurrency: int, seed: int
) -> Run:
    """A study through the orchestrator, minimising ``problem``."""
    timed = Timed(strategy)
    objective: Callable[..., Any]
    options: dict[str, Any] = {}
    observe = problem.observe
    if problem.expensive:
        objective, options["executor"] = (lambda params: observe(params, seed)), "thread"
    else:
        overlap = concurrency > 1

        async def cheap(params: Params) -> float:
            if overlap:
                await asyncio.sleep(_delay(params))
            return observe(params, seed)

        objective = cheap
    result = await at.tune(
        objective,
        problem.space,
        strategy=timed,
        max_trials=budget,
        concurrency=concurrency,
        direction="minimize",
        **options,
    )
    scores = [t.score if t.score is not None else math.inf for t in result.trials]
    return Run([dict(t.params) for t in result.trials], scores, timed.seconds)


def _optuna_params(problem: Problem, trial: Any) -> Params:
    params: Params = {}
    for name, d in problem.space.items():
        if isinstance(d, at.Float):
            params[name] = trial.suggest_float(name, d.low, d.high, log=d.log, step=d.step)
        elif isinstance(d, at.Int):
            params[name] = trial.suggest_int(name, d.low, d.high, step=d.step, log=d.log)
        elif isinstance(d, at.Categorical):
            params[name] = trial.suggest_categorical(name, list(d.choices))
        else:
            params[name] = trial.suggest_categorical(name, [False, True])
    return params


def run_optuna(
    problem: Problem, seed: int, budget: int, kind: str = "tpe", concurrency: int = 1
) -> Run:
    """A study of Optuna's default TPE sampler (or its ``GPSampler``) through ``study.optimize``;
    with ``concurrency`` > 1, through ask and tell on :func:`simulate`'s clock (TPE with its
    ``constant_liar`` for the trials in flight; ``GPSampler`` accounts for them itself)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seconds: dict[int, float] = {}
    sampler: Any
    if kind == "gp":
        import warnings

        import torch

        torch.set_num_threads(1)  # as aiotune's GP: one BLAS thread on a shared machine

        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.GPSampler(seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=concurrency > 1)

    def timed(method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(study: Any, trial: Any, *args: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(study, trial, *args)
            finally:
                seconds[trial.number] = seconds.get(trial.number, 0.0) + (
                    time.perf_counter() - start
                )

        return wrapper

    # Time the sampler's own work: the joint (multivariate) and per-parameter draws.
    for name in ("infer_relative_search_space", "sample_relative", "sample_independent"):
        setattr(sampler, name, timed(getattr(sampler, name)))

    def objective(trial: Any) -> float:
        return problem.observe(_optuna_params(problem, trial), seed)

    study = optuna.create_study(direction="minimize", sampler=sampler)
    if concurrency == 1:
        study.optimize(objective, n_trials=budget)
        scores = [t.value if t.value is not None else math.inf for t in study.trials]
        return Run([dict(t.params) for t in study.trials], scores, list(seconds.values()))
    asked: dict[int, Any] = {}

    def ask(number: int, pending: dict[int, Params]) -> Params:
        asked[number] = study.ask()
        return _optuna_params(problem, asked[number])

    run = simulate(problem, seed, budget, concurrency, ask, lambda k, p, v: study.tell(asked[k], v))
    run.suggest_seconds.extend(seconds.values())
    return run


def run_skopt(problem: Problem, seed: int, budget: int) -> Run:
    """scikit-optimize's ``gp_minimize`` (its defaults: GP, ``gp_hedge``, 10 initial points)."""
    import skopt  # type: ignore[import-not-found]

    dims: list[Any] = []
    for d in problem.space.values():
        if isinstance(d, at.Float):
            prior = "log-uniform" if d.log else "uniform"
            dims.append(skopt.space.Real(d.low, d.high, prior=prior))
        elif isinstance(d, at.Int):
            prior = "log-uniform" if d.log else "uniform"
            dims.append(skopt.space.Integer(d.low, d.high, prior=prior))
        elif isinstance(d, at.Categorical):
            dims.append(skopt.space.Categorical(list(range(len(d.choices)))))
        else:
            dims.append(skopt.space.Categorical([0, 1]))
    names = list(problem.space)
    params_seen: list[Params] = []
    stamps: list[float] = [time.perf_counter()]
    seconds: list[float] = []

    def to_params(x: list[Any]) -> Params:
        params: Params = {}
        for name, d, v in zip(names, problem.space.values(), x, strict=True):
            if isinstance(d, at.Float):
                v = float(v)
                if d.step is not None:
                    v = d.low + round((v - d.low) / d.step) * d.step
                params[name] = min(max(v, d.low), d.high)
            elif isinstance(d, at.Int):
                params[name] = int(v)
            elif isinstance(d, at.Categorical):
                params[name] = d.choices[int(v)]
            else:
                params[name] = bool(v)
        return params

    def objective(x: list[Any]) -> float:
        seconds.append(time.perf_counter() - stamps[-1])  # skopt's work since the last return
        params = to_params(x)
        params_seen.append(params)
        value = problem.observe(params, seed)
        stamps.append(time.perf_counter())
        return value

    result = skopt.gp_minimize(objective, dims, n_calls=budget, random_state=seed)
    return Run(list(params_seen), [float(v) for v in result.func_vals], seconds)


# -- the table --------------------------------------------------------------------------


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "-"
    return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.3g}" if b != 0 and math.isfinite(a / b) else "n/a"


OTHERS = ["Random", "Optuna TPE", "Optuna GP", "skopt GP"]


def methods(concurrencies: Sequence[int]) -> list[str]:
    """The columns: Bayesian at each concurrency, then the others (sequential)."""
    names = [f"Bayesian c={c}" if c != 1 else "Bayesian" for c in concurrencies]
    return [*names, *OTHERS]


async def one_study(problem: Problem, method: str, seed: int, budget: int) -> Run:
    """Run ``method`` on ``problem`` with ``seed`` for ``budget`` trials; ``"... c=N"``
    keeps N trials in flight (Bayesian, and Optuna on :func:`simulate`'s clock)."""
    concurrency = int(method.rsplit("=", 1)[1]) if " c=" in method else 1
    name = method.split(" c=")[0]
    if name in ("Optuna TPE", "Optuna GP"):
        kind = "gp" if name == "Optuna GP" else "tpe"
        return await asyncio.to_thread(run_optuna, problem, seed, budget, kind, concurrency)
    if method == "skopt GP":
        return await asyncio.to_thread(run_skopt, problem, seed, budget)
    if method == "Random":
        return await run_aiotune(problem, at.Random(seed=seed), budget, 1, seed)
    return await run_aiotune(problem, Bayesian(seed=seed), budget, concurrency, seed)


async def cached(cache: dict[str, Any], name: str, method: str, seed: int, budget: int) -> Run:
    """:func:`one_study`, or its run from ``cache`` for the methods that are not aiotune's
    Bayesian (whose code is what changes between runs)."""
    key = f"{name}|{method}|{seed}|{budget}"
    if key in cache and not method.startswith("Bayesian"):
        return Run(**cache[key])
    run = await one_study(PROBLEMS[name], method, seed, budget)
    if not method.startswith("Bayesian"):
        cache[key] = dataclasses.asdict(run)
    return run


def true_best(problem: Problem, method: str, run: Run, budget: int, seed: int) -> float:
    """The true value of the point ``method`` recommends after ``budget`` trials: the best
    observed one, except that Bayesian recommends by its posterior mean on a noisy problem."""
    if problem.noise is None:
        return run.best(budget)
    by_mean = method.startswith("Bayesian") and "(observed)" not in method
    params = (
        run.by_posterior_mean(budget, problem.space, seed) if by_mean else run.recommended(budget)
    )
    return problem.f(params) if params is not None else math.inf


async def quality(args: argparse.Namespace) -> None:
    """Run every study and print the Markdown table."""
    budgets, top = sorted(args.budgets), max(args.budgets)
    columns = [m for m in methods(args.concurrency) if args.methods is None or m in args.methods]
    cache = _read_cache(args.cache)
    seeds = _seeds(args)
    print(f"Measured {machine()}; seeds {seeds[0]}-{seeds[-1]}; medians over seeds.\n")
    print("| problem | trials | method | best | simple regret | suggest (ms) |")
    print("|---|---:|---|---:|---:|---:|")
    summary: list[str] = []
    for name in args.problems:
        problem = PROBLEMS[name]
        runs = {m: [await cached(cache, name, m, s, top) for s in seeds] for m in columns}
        if args.cache:
            args.cache.write_text(json.dumps(cache))
        rows = list(columns)
        if problem.noise is not None and "Bayesian" in runs:  # the same runs, other choice
            runs["Bayesian (observed)"] = runs["Bayesian"]
            rows.insert(rows.index("Bayesian") + 1, "Bayesian (observed)")
        regrets: dict[tuple[str, int], float] = {}
        for budget in budgets:
            for m in rows:
                best = statistics.median(
                    true_best(problem, m, run, budget, s)
                    for s, run in zip(seeds, runs[m], strict=True)
                )
                regret = best - problem.optimum if problem.optimum is not None else best
                regrets[m, budget] = regret
                seconds = [t for run in runs[m] for t in run.suggest_seconds[:budget]]
                ms = 1000 * statistics.median(seconds) if seconds else math.nan
                shown = _fmt(regret) if problem.optimum is not None else "n/a"
                print(f"| {name} | {budget} | {m} | {_fmt(best)} | {shown} | {ms:.1f} |")
        for budget in budgets:
            b = regrets.get(("Bayesian", budget), math.nan)
            ratios = [
                f"Bayesian/{other} {_ratio(b, regrets[other, budget])}"
                for other in OTHERS
                if other in columns
            ]
            ratios += [
                f"c={c}/c=1 {_ratio(regrets[f'Bayesian c={c}', budget], b)}"
                for c in args.concurrency
                if f"Bayesian c={c}" in columns
            ]
            summary.append(f"{name} at {budget} trials: " + ", ".join(ratios))
    print("\nRatios of median regret (median best for svc_digits); below 1 favours Bayesian:\n")
    print("\n".join(f"- {line}" for line in summary))


# -- the core alone, on a simulated clock ------------------------------------------------


def run_core(problem: Problem, seed: int, budget: int, concurrency: int) -> Run:
    """Bayesian's ask/tell core with ``concurrency`` trials in flight on :func:`simulate`'s
    clock."""
    core = BayesianCore(problem.space, seed, direction="minimize")

    def ask(number: int, pending: dict[int, Params]) -> Params:
        params = core.ask(number, pending)
        assert params is not None
        return params

    def tell(number: int, params: Params, score: float) -> None:
        core.tell(at.Trial(number, params, at.TrialStatus.COMPLETE, score))

    return simulate(problem, seed, budget, concurrency, ask, tell)


def simulate(
    problem: Problem,
    seed: int,
    budget: int,
    concurrency: int,
    ask: Callable[[int, dict[int, Params]], Params],
    tell: Callable[[int, Params, float], None],
) -> Run:
    """An ask/tell search with ``concurrency`` trials in flight on a simulated clock.

    Each trial "takes" its :func:`_delay` and the earliest to end is told first,
    as in the orchestrator, but nothing sleeps: the same decisions in a
    fraction of the time, for comparing settings over many seeds.
    ``ask(number, pending)`` gets the params in flight by trial number.
    """
    pending: dict[int, Params] = {}
    ends: list[tuple[float, int]] = []
    params: list[Params | None] = [None] * budget
    scores = [math.inf] * budget
    clock, asked, told = 0.0, 0, 0
    while told < budget:
        while len(pending) < concurrency and asked < budget:
            p = ask(asked, pending)
            pending[asked] = params[asked] = p
            heapq.heappush(ends, (clock + _delay(p), asked))
            asked += 1
        clock, number = heapq.heappop(ends)
        done = pending.pop(number)
        scores[number] = problem.observe(done, seed)
        tell(number, done, scores[number])
        told += 1
    return Run(params, scores, [])


def matched(curve: Sequence[float], regret: float) -> str:
    """The first trial count at which the sequential median ``curve`` is as low as ``regret``
    ("> n" if it never is): how many sequential trials a concurrent run's result is worth."""
    for t, value in enumerate(curve, start=1):
        if value <= regret:
            return str(t)
    return f"> {len(curve)}"


def _read_cache(path: Path | None) -> dict[str, Any]:
    """The other methods' cached runs in ``path`` (none without a file)."""
    return json.loads(path.read_text()) if path is not None and path.exists() else {}


def _seeds(args: argparse.Namespace) -> list[int]:
    return list(range(args.first_seed, args.first_seed + args.seeds))


def _ranked(mine: Sequence[float], rivals: dict[str, list[float]]) -> list[str]:
    """The rivals' median regrets, the rank of the median of ``mine`` among them, and the
    one-sided Mann-Whitney p-value that ``mine`` is worse than the rival with the lowest
    median ("-" where ``mine`` is first). With 10-20 seeds, medians closer than their
    scatter swap ranks from one set of seeds to the next: the p-value says which do not."""
    from scipy.stats import mannwhitneyu

    medians = {m: statistics.median(v) for m, v in rivals.items()}
    own = statistics.median(mine)
    rank = 1 + sum(v < own for v in medians.values())
    best = min(medians, key=medians.__getitem__)
    p = "-"
    if medians[best] < own:
        p = f"{mannwhitneyu(mine, rivals[best], alternative='greater').pvalue:.2f}"
    return [*(_fmt(v) for v in medians.values()), str(rank), p]


def core_table(args: argparse.Namespace) -> None:
    """Median regret of the core at each concurrency (``--core``).

    With concurrency 1 among the columns, each other concurrency also gets its ratio
    to sequential and, on a noiseless problem, the number of sequential trials that
    reach its median regret ("c=8 = c=1 at": 50 trials at c=8 worth 42 sequential
    ones means the batch lost the information of the 8 in flight and no more).
    """
    budgets, top = sorted(args.budgets), max(args.budgets)
    others = [c for c in args.concurrency if c != 1] if 1 in args.concurrency else []
    seeds = _seeds(args)
    # With --cache, sequential Bayesian is ranked against the other methods' sequential
    # runs; their runs with trials in flight ("Optuna GP c=8") get a column each.
    if args.methods:
        rivals = [m for m in args.methods if not m.startswith("Bayesian")]
    else:
        rivals = [m for m in OTHERS if m != "skopt GP"]
    rivals = rivals if args.cache and 1 in args.concurrency else []
    in_flight = [m for m in rivals if " c=" in m]
    sequential = [m for m in rivals if m not in in_flight]
    cache = _read_cache(args.cache if rivals else None)
    print(
        f"Measured {machine()}; seeds {seeds[0]}-{seeds[-1]}; medians over seeds; "
        "simulated clock.\n"
    )
    head = [f"c={c}" for c in args.concurrency]
    head += [f"c={c}/c=1" for c in others] + [f"c={c} = c=1 at" for c in others]
    if rivals:
        head += [*sequential, "c=1: rank", "p (c=1 worse than the best other)", *in_flight]
    print("| problem | trials | " + " | ".join(head) + " |")
    print("|---|---:|" + "---:|" * len(head))
    for name in args.problems:
        problem = PROBLEMS[name]
        assert problem.optimum is not None, "--core needs problems with a known optimum"
        per_seed: dict[tuple[int, int], list[float]] = {}  # (concurrency, budget)
        curve: list[float] = []
        for c in args.concurrency:
            runs = [run_core(problem, s, top, c) for s in seeds]
            for budget in budgets:
                per_seed[c, budget] = [
                    true_best(problem, "Bayesian", run, budget, s) - problem.optimum
                    for s, run in zip(seeds, runs, strict=True)
                ]
            if c == 1 and problem.noise is None:
                curve = [
                    statistics.median(run.best(t) for run in runs) - problem.optimum
                    for t in range(1, top + 1)
                ]
        rival_regrets: dict[int, dict[str, list[float]]] = {b: {} for b in budgets}
        for m in rivals:
            rival_runs = [asyncio.run(cached(cache, name, m, s, top)) for s in seeds]
            for budget in budgets:
                rival_regrets[budget][m] = [
                    true_best(problem, m, run, budget, s) - problem.optimum
                    for s, run in zip(seeds, rival_runs, strict=True)
                ]
        if rivals:
            args.cache.write_text(json.dumps(cache))
        regret = {key: statistics.median(values) for key, values in per_seed.items()}
        for budget in budgets:
            cells = [_fmt(regret[c, budget]) for c in args.concurrency]
            cells += [_ratio(regret[c, budget], regret[1, budget]) for c in others]
            cells += [matched(curve, regret[c, budget]) if curve else "-" for c in others]
            if rivals:
                ranked = {m: rival_regrets[budget][m] for m in sequential}
                cells += _ranked(per_seed[1, budget], ranked)
                cells += [_fmt(statistics.median(rival_regrets[budget][m])) for m in in_flight]
            print(f"| {name} | {budget} | " + " | ".join(cells) + " |")


# -- suggest time as the history grows --------------------------------------------------


async def _ticker(stop: asyncio.Event, stalls: list[float]) -> None:
    """Sleep 5 ms at a time until ``stop``; record how late each wake-up was."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(0.005)
        stalls.append(loop.time() - before - 0.005)


class _Counts:
    """Calls to the GP's costly steps, counted by wrapping them (work that load cannot
    change): Cholesky factorisations, hyper-parameter objective calls, and evaluations
    of the acquisition's gradient (one per step of its L-BFGS climb)."""

    def __init__(self) -> None:
        from aiotune.strategies import _gp

        self.counts = {"cholesky": 0, "objective": 0, "acquisition": 0}
        self._gp = _gp
        self._saved = (_gp._cholesky, _gp.neg_log_posterior, _gp.Posterior.predict_grad)

        def counted(key: str, function: Callable[..., Any]) -> Callable[..., Any]:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                self.counts[key] += 1
                return function(*args, **kwargs)

            return wrapper

        _gp._cholesky = counted("cholesky", _gp._cholesky)  # type: ignore[assignment]
        _gp.neg_log_posterior = counted("objective", _gp.neg_log_posterior)  # type: ignore[assignment]
        _gp.Posterior.predict_grad = counted("acquisition", _gp.Posterior.predict_grad)  # type: ignore[method-assign]

    def restore(self) -> None:
        """Unwrap the counted functions."""
        (
            self._gp._cholesky,
            self._gp.neg_log_posterior,
            self._gp.Posterior.predict_grad,
        ) = self._saved  # type: ignore[method-assign]


async def timing(sizes: Sequence[int], asks: int) -> None:
    """Median time of a Bayesian suggestion after ``n`` finished trials, loop stalls, and how
    many Cholesky factorisations, objective calls and acquisition steps the ``asks`` took."""
    print(f"Measured {machine()}.\n")
    print(
        "| problem | finished trials | median suggest (ms) | median CPU, all threads (ms) "
        "| mean, asks 2+ (ms) | p90 (ms) "
        "| max loop stall (ms) | Cholesky / objective / acquisition calls |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in ("hartmann6", "mixed"):
        problem = PROBLEMS[name]
        for n in sizes:
            rng = np.random.default_rng(n)
            trials = []
            for k in range(n):
                params = problem.space.sample(rng)
                trials.append(at.Trial(k, params, at.TrialStatus.COMPLETE, problem.f(params)))
            history = at.History("minimize", trials)
            generator = Bayesian(seed=0).suggest(problem.space, history)
            counts = _Counts()
            seconds: list[float] = []
            stalls: list[float] = []
            stop = asyncio.Event()
            tick = asyncio.create_task(_ticker(stop, stalls))
            cpu: list[float] = []
            for _ in range(asks):
                start, start_cpu = time.perf_counter(), time.process_time()
                params = await anext(generator)
                seconds.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
                number = history.next_number
                history.add_pending(number, params)
                history.record(at.Trial(number, params, at.TrialStatus.COMPLETE, problem.f(params)))
            stop.set()
            await tick
            stall = max(stalls, default=0.0)
            await generator.aclose()  # type: ignore[attr-defined]
            counts.restore()
            ms = sorted(1000 * s for s in seconds)
            later = seconds[1:] or seconds  # the first ask also imports scipy, once a process
            mean = 1000 * statistics.mean(later)
            median_cpu = 1000 * statistics.median(cpu)
            p90 = ms[int(0.9 * (len(ms) - 1))]
            calls = " / ".join(str(c) for c in counts.counts.values())
            print(
                f"| {name} | {n} | {statistics.median(ms):.1f} | {median_cpu:.1f} | {mean:.1f} "
                f"| {p90:.1f} | {1000 * stall:.1f} | {calls} |"
            )


def main() -> None:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="how many seeds")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds start here")
    parser.add_argument(
        "--budgets", type=lambda s: [int(b) for b in s.split(",")], default=[10, 25, 50, 100]
    )
    parser.add_argument(
        "--problems", type=lambda s: s.split(","), default=list(PROBLEMS), metavar="A,B"
    )
    parser.add_argument(
        "--concurrency", type=lambda s: [int(c) for c in s.split(",")], default=[1, 4, 8],
        help="Bayesian runs at each of these (default 1,4,8)",
    )  # fmt: skip
    parser.add_argument(
        "--methods", type=lambda s: s.split(","), default=None, metavar="A,B",
        help="a subset of the columns, e.g. 'Random,Optuna TPE' (default: all)",
    )  # fmt: skip
    parser.add_argument(
        "--cache", type=Path, default=None, metavar="FILE",
        help="keep the other methods' runs in this JSON file and reuse them",
    )  # fmt: skip
    parser.add_argument(
        "--core", action="store_true",
        help="Bayesian's core alone at each --concurrency, on a simulated clock",
    )  # fmt: skip
    parser.add_argument("--timing", action="store_true", help="measure suggest time vs history")
    parser.add_argument(
        "--sizes", type=lambda s: [int(n) for n in s.split(",")], default=[200, 1000]
    )
    parser.add_argument("--asks", type=int, default=21)
    args = parser.parse_args()
    if unknown := set(args.problems) - set(PROBLEMS):
        parser.error(f"unknown problems {sorted(unknown)}; choose from {list(PROBLEMS)}")
    if args.core:
        core_table(args)
    else:
        asyncio.run(timing(args.sizes, args.asks) if args.timing else quality(args))


if __name__ == "__main__":
    main()
