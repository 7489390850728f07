"""Numbers every view shows: status counts, the best, the top trials, durations, importance.

Plain functions over a :class:`~aiotune.views.source.Snapshot`'s trials; no
I/O. Parameter importance is the correlation ratio η² of each parameter
alone: the share of the score's variance explained by grouping trials by
that parameter (categories as they are, numbers in quantile bins). It is
cheap, needs no model, and reads as "how much does this knob matter by
itself" — interactions between parameters are not credited.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aiotune.trial import (
    Direction,
    StudyDirection,
    Trial,
    TrialStatus,
    best_of,
    directions_of,
    dominates,
    is_better,
    pareto_front,
)

IMPORTANCE_BINS = 10


def status_counts(trials: Sequence[Trial]) -> dict[str, int]:
    """How many trials ended with each status (every status listed, zeros included)."""
    counts = dict.fromkeys((status.value for status in TrialStatus), 0)
    for trial in trials:
        counts[trial.status.value] += 1
    return counts


def best(trials: Sequence[Trial], direction: StudyDirection) -> Trial | None:
    """The best feasible complete trial (lowest number among ties), or ``None``.

    ``None`` for a multi-objective study: its trials have no single score.
    """
    return best_of(tuple(trials), direction) if isinstance(direction, str) else None


def scored(trials: Sequence[Trial]) -> list[Trial]:
    """The complete trials (the ones with a score that counts)."""
    return [t for t in trials if t.is_complete and t.score is not None]


def infeasible(trials: Sequence[Trial]) -> list[Trial]:
    """The complete trials that break a constraint."""
    return [t for t in trials if t.is_complete and not t.feasible]


def is_multi(direction: StudyDirection) -> bool:
    """Whether the study has several objectives."""
    return not isinstance(direction, str)


def top(trials: Sequence[Trial], direction: StudyDirection, k: int = 10) -> list[Trial]:
    """The ``k`` best feasible complete trials, best first (ties: lower number first)."""
    sign = -1.0 if direction == "maximize" else 1.0
    ranked = [t for t in scored(trials) if t.feasible]
    return sorted(ranked, key=lambda t: (sign * (t.score or 0.0), t.number))[:k]


def front(trials: Sequence[Trial], direction: StudyDirection) -> list[Trial]:
    """The Pareto front: feasible complete trials no other one dominates, in number order.

    The same trials as :func:`aiotune.trial.pareto_front` (ties all kept), in
    ``O(n log n)`` for two objectives and ``O(n * front)`` for more, so a
    20,000-trial study stays quick.
    """
    directions = directions_of(direction)
    if len(directions) == 1:
        return list(pareto_front(trials, direction))
    signs = [1.0 if d == "minimize" else -1.0 for d in directions]
    if len(directions) > 2:
        return _front_by_sorting(trials, directions, signs)
    usable = [t for t in trials if t.is_complete and t.feasible and len(t.scores) == 2]
    points = sorted(usable, key=lambda t: (signs[0] * t.scores[0], signs[1] * t.scores[1]))
    kept: list[Trial] = []
    best_b = math.inf  # the best second objective among trials better in the first
    i = 0
    while i < len(points):  # a group of equal first objectives: its best second ones
        a = points[i].scores[0]
        j = i
        while j < len(points) and points[j].scores[0] == a:
            j += 1
        group_b = signs[1] * points[i].scores[1]
        if group_b < best_b:
            kept.extend(t for t in points[i:j] if signs[1] * t.scores[1] == group_b)
            best_b = group_b
        i = j
    return sorted(kept, key=lambda t: t.number)


def _front_by_sorting(
    trials: Sequence[Trial], directions: Sequence[Direction], signs: Sequence[float]
) -> list[Trial]:
    """The front in ``O(n * front * k)``: in lexicographic order a trial can only be
    dominated by one before it, and then by one already on the front."""
    usable = [t for t in trials if t.is_complete and t.feasible and len(t.scores) == len(signs)]
    usable.sort(key=lambda t: [s * v for s, v in zip(signs, t.scores, strict=True)])
    kept: list[Trial] = []
    for trial in usable:
        if not any(dominates(o.scores, trial.scores, directions) for o in kept):
            kept.append(trial)
    return sorted(kept, key=lambda t: t.number)


def objective_names(direction: StudyDirection) -> list[str]:
    """A label per objective: ``score`` for one, ``score 1 (maximize)``, ... for several."""
    directions: tuple[Direction, ...] = directions_of(direction)
    if len(directions) == 1:
        return ["score"]
    return [f"score {i + 1} ({d})" for i, d in enumerate(directions)]


def best_so_far(trials: Sequence[Trial], direction: StudyDirection) -> list[float | None]:
    """For each trial in order, the best feasible score among it and those before it."""
    out: list[float | None] = []
    current: float | None = None
    for trial in trials:
        if trial.is_complete and trial.score is not None and isinstance(direction, str):
            if not trial.feasible:
                out.append(current)
                continue
            if current is None or is_better(trial.score, current, direction):
                current = trial.score
        out.append(current)
    return out


@dataclass(frozen=True, slots=True)
class DurationStats:
    """Trial durations in seconds: how many had one, and their spread."""

    count: int
    total: float
    mean: float
    median: float
    p90: float
    min: float
    max: float


def duration_stats(trials: Sequence[Trial]) -> DurationStats | None:
    """Statistics of the trials' durations, or ``None`` when no trial has one."""
    durations = sorted(t.duration for t in trials if t.duration is not None)
    if not durations:
        return None
    p90 = durations[min(len(durations) - 1, math.ceil(0.9 * len(durations)) - 1)]
    return DurationStats(
        count=len(durations),
        total=math.fsum(durations),
        mean=statistics.fmean(durations),
        median=statistics.median(durations),
        p90=p90,
        min=durations[0],
        max=durations[-1],
    )


def is_numeric(values: Sequence[Any]) -> bool:
    """Whether every (present) value is a real number and not a bool."""
    present = [v for v in values if v is not None]
    return bool(present) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in present
    )


def importance(trials: Sequence[Trial], names: Sequence[str]) -> dict[str, float]:
    """Each parameter's η²: the share of score variance explained by it alone, in [0, 1].

    Computed over complete trials; a parameter absent from a trial (inactive)
    forms its own group. Fewer than three complete trials, or scores that do
    not vary, give 0 for every parameter.
    """
    done = scored(trials)
    result = dict.fromkeys(names, 0.0)
    if len(done) < 3:
        return result
    scores = np.array([t.score for t in done], dtype=float)
    total = float(((scores - scores.mean()) ** 2).sum())
    if total <= 0:
        return result
    mean = float(scores.mean())
    for name in names:
        keys: dict[object, int] = {}
        codes = np.array([keys.setdefault(g, len(keys)) for g in _groups(done, name)])
        sizes = np.bincount(codes)
        means = np.bincount(codes, weights=scores) / sizes
        between = float((sizes * (means - mean) ** 2).sum())
        result[name] = min(1.0, between / total)
    return result


def _groups(trials: Sequence[Trial], name: str) -> list[object]:
    """A group key per trial: quantile bins for numbers, the value itself otherwise."""
    values = [t.params.get(name) for t in trials]
    if not is_numeric(values) or len({v for v in values if v is not None}) <= IMPORTANCE_BINS:
        return [repr(v) for v in values]
    numbers = np.array([math.nan if v is None else float(v) for v in values])
    present = numbers[~np.isnan(numbers)]
    edges = np.unique(np.quantile(present, np.linspace(0, 1, IMPORTANCE_BINS + 1))[1:-1])
    bins = np.searchsorted(edges, numbers, side="right").tolist()
    return ["absent" if math.isnan(v) else b for v, b in zip(numbers.tolist(), bins, strict=True)]


def sample(n: int, cap: int, keep: Sequence[int] = ()) -> list[int]:
    """At most ``cap`` of the indices ``0..n-1``, evenly spread, always including ``keep``.

    Deterministic (the same study draws the same points), sorted.
    """
    if n <= cap:
        return list(range(n))
    chosen = {int(i) for i in np.linspace(0, n - 1, num=max(1, cap - len(keep)))}
    chosen.update(i for i in keep if 0 <= i < n)
    return sorted(chosen)
