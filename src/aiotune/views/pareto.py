"""The figures of a study with several objectives: its Pareto front, with infeasible trials marked.

Two objectives: one scatter of every complete trial (score 1 across, score 2
up), the front highlighted and joined by the boundary of the region it
dominates. Three or more: the same scatter for each pair of objectives (the
first :data:`MAX_PAIRS` pairs); a projection, so a trial on the front may
look dominated in one of them, and the note says so.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import Any

from aiotune.trial import Direction, Trial, directions_of
from aiotune.views.plotting import MAX_POINTS, Figure, _figure, _layout, _sample_note, _sampled
from aiotune.views.source import Snapshot

MAX_PAIRS = 6
FRONT_COLOR = "#e76f51"
OTHER_COLOR = "#8ab6c9"
INFEASIBLE_COLOR = "#6c757d"


def first_objective(snap: Snapshot) -> Snapshot:
    """``snap`` as a single-objective study on its first objective (for the parameter plots)."""
    first = directions_of(snap.direction)[0]
    trials = tuple(
        dataclasses.replace(t, score=t.scores[0], scores=(t.scores[0],)) if t.scores else t
        for t in snap.trials
    )
    return dataclasses.replace(snap, trials=trials, direction=first)


def _worse(a: float, b: float, direction: Direction) -> float:
    return min(a, b) if direction == "maximize" else max(a, b)


def _boundary(
    front: Sequence[Trial], i: int, j: int, directions: Sequence[Direction]
) -> tuple[list[float], list[float]]:
    """The staircase bounding what ``front`` dominates, in objectives ``i`` and ``j``."""
    points = sorted((t.scores[i], t.scores[j]) for t in front)
    xs: list[float] = []
    ys: list[float] = []
    for k, (x, y) in enumerate(points):
        if k:  # the corner both neighbours dominate
            px, py = points[k - 1]
            xs.append(_worse(px, x, directions[i]))
            ys.append(_worse(py, y, directions[j]))
        xs.append(x)
        ys.append(y)
    return xs, ys


def _markers(
    name: str, trials: Sequence[Trial], i: int, j: int, marker: dict[str, Any], hover: str
) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "markers",
        "name": name,
        "x": [t.scores[i] for t in trials],
        "y": [t.scores[j] for t in trials],
        "customdata": [t.number for t in trials],
        "marker": marker,
        "hover": hover,
    }


def pareto_figures(snap: Snapshot, front: Sequence[Trial], names: Sequence[str]) -> list[Figure]:
    """The Pareto front of a study with several objectives; ``names`` label the objectives."""
    directions = directions_of(snap.direction)
    count = len(directions)
    complete = [t for t in snap.trials if t.is_complete and len(t.scores) == count]
    on_front = {t.number for t in front}
    others = [t for t in complete if t.feasible and t.number not in on_front]
    infeasible = [t for t in complete if not t.feasible]
    shown_others = _sampled(others, MAX_POINTS)
    shown_infeasible = _sampled(infeasible, MAX_POINTS // 2)
    shown_front = _sampled(list(front), MAX_POINTS)
    pairs = list(itertools.combinations(range(count), 2))[:MAX_PAIRS]
    figures = []
    for i, j in pairs:
        hover = f"trial %{{customdata}}\n{names[i]}: %{{x:.6g}}\n{names[j]}: %{{y:.6g}}"
        data: list[dict[str, Any]] = [
            _markers(
                "dominated", shown_others, i, j,
                {"size": 6, "color": OTHER_COLOR, "opacity": 0.75}, hover,
            ),
            _markers(
                "infeasible", shown_infeasible, i, j,
                {"size": 7, "color": INFEASIBLE_COLOR, "symbol": "x", "opacity": 0.8},
                hover + "\ninfeasible",
            ),
        ]  # fmt: skip
        if count == 2 and front:
            xs, ys = _boundary(front, i, j, directions)
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": "boundary of the dominated region",
                    "x": xs,
                    "y": ys,
                    "line": {"color": FRONT_COLOR, "width": 1.5},
                    "opacity": 0.8,
                }
            )
        data.append(
            _markers(
                "Pareto front", shown_front, i, j,
                {"size": 9, "color": FRONT_COLOR, "line": {"width": 1, "color": "#333"}},
                hover + "\non the Pareto front",
            )
        )  # fmt: skip
        layout = _layout(names[i], names[j], showlegend=True, height=380)
        note = (
            f"{len(front):,} trial(s) on the front (feasible, complete, none beaten by another) "
            f"of {len(complete):,} complete; infeasible trials (a constraint > 0) as grey x."
        )
        if count > 2:
            note += f" Objectives {i + 1} and {j + 1} of {count}: a projection, so a trial on "
            note += "the front may look dominated here."
        sampled = _sample_note(
            len(shown_others) + len(shown_infeasible) + len(shown_front),
            len(others) + len(infeasible) + len(front),
        )
        note = f"{note} {sampled}".strip()
        if count == 2:
            fig_id, title = "pareto", "Pareto front"
        else:
            fig_id, title = f"pareto-{i}-{j}", f"Pareto front: objectives {i + 1} and {j + 1}"
        figures.append(_figure(fig_id, title, data, layout, note))
    return figures
