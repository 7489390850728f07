"""The view of a study as plain data: summary, tables and figures, ready for JSON.

:func:`build_view` turns a :class:`~aiotune.views.source.Snapshot` into one
dict that the HTML report embeds and the dashboard streams; the page's
script (:mod:`aiotune.views.page`, :mod:`aiotune.views.chart`) draws it.
Figures are plain ``{"data", "layout"}`` dicts in the small schema
:mod:`aiotune.views.chart` documents (cheap enough to rebuild on every
change of a live study).

Escaping: strings from a study (a categorical choice, a parameter or worker
name, an error message) go into the view as they are; the page sets every
one with ``textContent`` (tables, ticks, labels, tooltips), so none is ever
read as markup.

Big studies: a browser cannot draw 20,000 points in ten plots quickly, so
scatter plots show at most :data:`MAX_POINTS` trials (:data:`MAX_SLICE_POINTS`
in each slice plot; evenly spread, the best
ones always kept), learning curves at most :data:`MAX_CURVES` trials, the
timeline the last :data:`MAX_BARS` trials; each figure says so in its note.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from aiotune.trial import Trial, TrialStatus
from aiotune.views import summary
from aiotune.views.params import _axes, _contour, _parallel, _slice
from aiotune.views.pareto import INFEASIBLE_COLOR, first_objective, pareto_figures
from aiotune.views.plotting import (
    MAX_BARS,
    MAX_CURVES,
    MAX_FAILURES,
    MAX_FRONT,
    MAX_POINTS,
    MAX_SLICE_POINTS,
    STATUS_COLORS,
    TOP_K,
    Figure,
    _figure,
    _layout,
    _sample_note,
    _sampled,
    _short,
    text,
)
from aiotune.views.source import Snapshot

__all__ = [
    "MAX_BARS",
    "MAX_CURVES",
    "MAX_FAILURES",
    "MAX_POINTS",
    "MAX_SLICE_POINTS",
    "build_view",
    "text",
    "trial_row",
]


# --- the figures -----------------------------------------------------------------------


def _history(snap: Snapshot, done: list[Trial], best: Trial | None) -> Figure:
    broken = [t for t in done if not t.feasible]
    done = [t for t in done if t.feasible] if broken else done
    shown = _sampled(done, MAX_POINTS, [best] if best else [])
    shown_broken = _sampled(broken, MAX_POINTS // 2)
    best_x: list[int] = []
    best_y: list[float] = []
    running: float | None = None
    for trial, value in zip(
        snap.trials, summary.best_so_far(snap.trials, snap.direction), strict=True
    ):
        if value is not None and value != running:  # the best changed: a new step
            best_x.append(trial.number)
            best_y.append(_short(value) or 0.0)
            running = value
    if best_x and snap.trials:
        best_x.append(snap.trials[-1].number)
        best_y.append(best_y[-1])
    data = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": "score",
            "x": [t.number for t in shown],
            "y": [_short(t.score) for t in shown],
            "marker": {"size": 6, "color": STATUS_COLORS["complete"], "opacity": 0.7},
            "hover": "trial %{x}\nscore %{y:.6g}",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "best so far",
            "x": best_x,
            "y": best_y,
            "line": {"color": "#264653", "width": 2, "shape": "hv"},
            "hover": "best so far %{y:.6g}",
        },
    ]
    note = _sample_note(len(shown), len(done), "scores")
    if broken:
        data.insert(
            1,
            {
                "type": "scatter",
                "mode": "markers",
                "name": "infeasible",
                "x": [t.number for t in shown_broken],
                "y": [_short(t.score) for t in shown_broken],
                "marker": {"size": 7, "color": INFEASIBLE_COLOR, "symbol": "x", "opacity": 0.8},
                "hover": "trial %{x}\nscore %{y:.6g}\ninfeasible",
            },
        )
        note = f"Infeasible trials (a constraint > 0) as grey x; the best is feasible. {note}"
    layout = _layout("trial number", "score", showlegend=bool(broken))
    return _figure("history", "Optimisation history", data, layout, note.strip())


def _importance(names: list[str], weights: dict[str, float], n_done: int) -> Figure:
    order = sorted(names, key=lambda n: weights[n])
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "x": [round(weights[n], 4) for n in order],
            "y": [str(n) for n in order],
            "marker": {"color": "#457b9d"},
            "hover": "%{y}: %{x:.3f}",
        }
    ]
    layout = _layout("share of score variance (η²)", "", height=max(160, 40 + 28 * len(order)))
    layout["margin"]["l"] = 140
    note = "Each parameter alone: the share of the score's variance explained by grouping "
    note += "complete trials by its value (quantile bins for numbers)."
    if n_done < 3:
        note = "Needs at least 3 complete trials."
    return _figure("importance", "Parameter importance", data, layout, note)


def _curves(snap: Snapshot, best: Trial | None) -> Figure | None:
    with_curves = [t for t in snap.trials if t.intermediate]
    if not with_curves:
        return None
    ranked = summary.top(with_curves, snap.direction, 10)
    shown = _sampled(with_curves, MAX_CURVES, ranked)
    groups: dict[str, tuple[list[float | None], list[float | None]]] = {}
    ends_x: list[float] = []
    ends_y: list[float] = []
    ends_n: list[int] = []
    for trial in shown:
        key = trial.status.value if trial.status.value in ("complete", "pruned") else "other"
        xs, ys = groups.setdefault(key, ([], []))
        steps = sorted(trial.intermediate)
        xs.extend([*map(float, steps), None])
        ys.extend([*(trial.intermediate[s] for s in steps), None])
        if trial.status is TrialStatus.PRUNED:
            ends_x.append(float(steps[-1]))
            ends_y.append(trial.intermediate[steps[-1]])
            ends_n.append(trial.number)
    colors = {"complete": STATUS_COLORS["complete"], "pruned": STATUS_COLORS["pruned"]}
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": key,
            "x": xs,
            "y": ys,
            "connectgaps": False,
            "line": {"width": 1, "color": colors.get(key, "#8d99ae")},
            "opacity": 0.6,
        }
        for key, (xs, ys) in groups.items()
    ]
    data.append(
        {
            "type": "scatter",
            "mode": "markers",
            "name": "pruned here",
            "x": ends_x,
            "y": ends_y,
            "customdata": ends_n,
            "marker": {"symbol": "x", "size": 7, "color": STATUS_COLORS["failed"]},
            "hover": "trial %{customdata} pruned at step %{x}",
        }
    )
    note = "Green: complete, orange: pruned (an x where it was stopped). "
    note += _sample_note(len(shown), len(with_curves), "trials with intermediate values")
    layout = _layout("step", "intermediate value", showlegend=True)
    return _figure("intermediate", "Intermediate values", data, layout, note.strip())


def _timeline(snap: Snapshot) -> Figure | None:
    timed = [t for t in snap.trials if t.started_at is not None and t.finished_at is not None]
    if not timed:
        return None
    timed.sort(key=lambda t: t.finished_at or 0.0)
    total = len(timed)
    timed = timed[-MAX_BARS:]
    t0 = min(t.started_at or 0.0 for t in timed)
    workers = sorted({t.worker or "?" for t in timed})
    by_status: dict[str, list[Trial]] = {}
    for trial in timed:
        by_status.setdefault(trial.status.value, []).append(trial)
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "name": status,
            "base": [round((t.started_at or 0.0) - t0, 4) for t in group],
            "x": [
                round(max((t.finished_at or 0.0) - (t.started_at or 0.0), 1e-3), 4) for t in group
            ],
            "y": [str(t.worker or "?") for t in group],
            "customdata": [t.number for t in group],
            "marker": {"color": STATUS_COLORS[status], "line": {"width": 0.5, "color": "white"}},
            "hover": f"trial %{{customdata}} ({status})\n%{{x:.3g}} s",
        }
        for status, group in by_status.items()
    ]
    layout = _layout(
        "seconds since the first start", "worker", barmode="overlay", showlegend=True,
        height=max(220, 60 + 22 * len(workers)),
    )  # fmt: skip
    layout["yaxis"].update({"type": "category", "categoryorder": "category ascending"})
    layout["margin"]["l"] = 110
    note = "Each bar is a trial on its worker: gaps are idle time."
    if total > len(timed):
        note += f" Showing the last {len(timed):,} of {total:,} trials."
    return _figure("timeline", "Timeline of trials per worker", data, layout, note)


def _statuses(counts: dict[str, int]) -> Figure:
    data = [
        {
            "type": "bar",
            "x": list(counts),
            "y": list(counts.values()),
            "marker": {"color": [STATUS_COLORS[s] for s in counts]},
            "hover": "%{x}: %{y}",
        }
    ]
    return _figure("statuses", "Status counts", data, _layout("status", "trials", height=260))


# --- the whole view --------------------------------------------------------------------


def trial_row(trial: Trial, names: Sequence[str], origin: str | None = None) -> dict[str, Any]:
    """A trial as table cells (strings), for the pages and the CLI."""
    row: dict[str, Any] = {
        "number": trial.number,
        "status": trial.status.value,
        "score": "" if trial.score is None else text(trial.score),
        "scores": [text(v) for v in trial.scores],
        "feasible": trial.feasible,
        "duration": "" if trial.duration is None else f"{trial.duration:.3g}",
        "worker": trial.worker or "",
        "params": {n: text(trial.params[n]) if n in trial.params else "" for n in names},
    }
    if origin is not None:
        row["journal"] = origin
    return row


def build_view(snap: Snapshot) -> dict[str, Any]:
    """The summary, tables and figures of ``snap``, as JSON-ready data.

    A study with several objectives shows its Pareto front instead of an
    optimisation history and has no best; its parameter plots (importance,
    contour, parallel coordinates, slices) use the first objective, and say so.
    """
    names = snap.param_names
    multi = summary.is_multi(snap.direction)
    front = summary.front(snap.trials, snap.direction) if multi else []
    best = summary.best(snap.trials, snap.direction)
    objectives = summary.objective_names(snap.direction)
    psnap = first_objective(snap) if multi else snap  # what the parameter plots read
    anchor = summary.best(psnap.trials, psnap.direction)  # kept when a plot samples
    done = summary.scored(psnap.trials)
    counts = summary.status_counts(snap.trials)
    weights = summary.importance(psnap.trials, names)
    axes = _axes(psnap, psnap.trials)
    origins = dict(zip((t.number for t in snap.trials), snap.origins, strict=False))
    if multi:
        figures = pareto_figures(snap, front, objectives)
    else:
        figures = [_history(snap, done, best)]
    figures.append(_importance(names, weights, len(done)))
    figures.append(_statuses(counts))
    ranked = sorted(names, key=lambda n: -weights[n])
    if len(ranked) >= 2:
        contour = _contour(axes[ranked[0]], axes[ranked[1]], done, anchor)
        if contour is not None:
            figures.append(contour)
    more = (
        _parallel(axes, done, anchor, psnap.direction),
        _curves(psnap, anchor),
        _timeline(snap),
    )
    figures.extend(figure for figure in more if figure is not None)
    shown = _sampled(done, MAX_SLICE_POINTS, [anchor] if anchor else [])
    note = _sample_note(len(shown), len(done), "scores")
    for i, name in enumerate(names):
        figure = _slice(axes[name], shown, f"slice-{i}")
        figure["note"] = f"Complete trials; colour: trial number, later brighter. {note}".strip()
        figures.append(figure)
    if multi:
        for figure in figures:
            if figure["id"] in ("importance", "contour", "parallel") or figure["id"].startswith(
                "slice-"
            ):
                figure["note"] = f"Score: {objectives[0]}. {figure['note']}".strip()
    failed = [t for t in snap.trials if t.error is not None]
    ranked_trials = [] if multi else summary.top(snap.trials, snap.direction, TOP_K)
    durations = summary.duration_stats(snap.trials)
    return {
        "label": snap.label,
        "direction": snap.direction,
        "live": snap.live,
        "version": snap.version,
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "summary": {
            "trials": len(snap.trials),
            "running": None if snap.pending is None else len(snap.pending),
            "counts": counts,
            "best": None if best is None else trial_row(best, names, origins.get(best.number)),
            "objectives": objectives,
            "front": [trial_row(t, names, origins.get(t.number)) for t in front[:MAX_FRONT]],
            "front_total": len(front),
            "infeasible": len(summary.infeasible(snap.trials)),
            "durations": None
            if durations is None
            else {
                "mean": f"{durations.mean:.3g}",
                "median": f"{durations.median:.3g}",
                "p90": f"{durations.p90:.3g}",
                "max": f"{durations.max:.3g}",
                "total": f"{durations.total:.4g}",
            },
        },
        "params": names,
        "top": [trial_row(t, names, origins.get(t.number)) for t in ranked_trials],
        "failures": [
            {
                "number": t.number,
                "status": t.status.value,
                "type": t.error.type if t.error else "",
                "message": t.error.message if t.error else "",
            }
            for t in failed[-MAX_FAILURES:]
        ],
        "failures_total": len(failed),
        "notes": list(snap.notes),
        "figures": figures,
    }
