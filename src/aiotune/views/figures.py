"""The view of a study as plain data: summary, tables and Plotly figures, ready for JSON.

:func:`build_view` turns a :class:`~aiotune.views.source.Snapshot` into one
dict that the HTML report embeds and the dashboard streams; the page's
script (:mod:`aiotune.views.page`) draws it. Figures are plain Plotly.js
``{"data", "layout"}`` dicts (no Plotly Python objects: building them is
cheap enough to redo on every change of a live study).

Escaping: Plotly.js reads a few HTML tags in text (``<b>``, ``<br>``) and
decodes entities, so every string from a study (a categorical choice, a
parameter or worker name) goes into a figure through :func:`_esc`, which
turns ``<`` into ``&lt;``: Plotly shows it back as the literal text. Table
cells are plain strings that the page sets with ``textContent``.

Big studies: a browser cannot draw 20,000 points in ten plots quickly, so
scatter plots show at most :data:`MAX_POINTS` trials (:data:`MAX_SLICE_POINTS`
in each slice plot; evenly spread, the best
ones always kept), learning curves at most :data:`MAX_CURVES` trials, the
timeline the last :data:`MAX_BARS` trials; each figure says so in its note.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from aiotune.space import Categorical, Float, Int, Space
from aiotune.trial import Trial, TrialStatus
from aiotune.views import summary
from aiotune.views.source import Snapshot

MAX_POINTS = 2000
MAX_SLICE_POINTS = 1000
MAX_CURVES = 150
MAX_BARS = 1500
MAX_FAILURES = 200
CONTOUR_BINS = 16
TOP_K = 10

STATUS_COLORS = {
    "complete": "#2a9d8f",
    "failed": "#e63946",
    "pruned": "#f4a261",
    "timeout": "#9b5de5",
    "cancelled": "#8d99ae",
}

Figure = dict[str, Any]


def _esc(value: object) -> str:
    """A study's string, made safe (and literal) for Plotly text."""
    return html.escape(str(value), quote=False)


def _short(value: float | None) -> float | None:
    """A score with 7 significant digits: all a plot can show, half the JSON."""
    return None if value is None else float(f"{value:.7g}")


def text(value: object) -> str:
    """How a param value or score reads in a table cell."""
    if value is None:
        return "None"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _layout(x_title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "height": 340,
        "margin": {"l": 60, "r": 20, "t": 10, "b": 50},
        "xaxis": {"title": {"text": _esc(x_title)}},
        "yaxis": {"title": {"text": _esc(y_title)}},
        "showlegend": False,
        "hovermode": "closest",
    }
    layout.update(extra)
    return layout


def _figure(
    fig_id: str, title: str, data: list[dict[str, Any]], layout: dict[str, Any], note: str = ""
) -> Figure:
    return {"id": fig_id, "title": title, "note": note, "figure": {"data": data, "layout": layout}}


def _sampled(trials: Sequence[Trial], cap: int, keep: Sequence[Trial] = ()) -> list[Trial]:
    index = {t.number: i for i, t in enumerate(trials)} if len(trials) > cap else {}
    keep_at = [index[t.number] for t in keep if t.number in index]
    return [trials[i] for i in summary.sample(len(trials), cap, keep_at)]


def _sample_note(shown: int, total: int, what: str = "trials") -> str:
    if shown >= total:
        return ""
    return f"Showing {shown:,} of {total:,} {what} (evenly sampled; the best kept)."


# --- parameters as axes ----------------------------------------------------------------


class _Axis:
    """How one parameter is drawn: numbers (maybe on a log scale) or categories."""

    def __init__(self, name: str, values: Sequence[Any], space: Space | None) -> None:
        self.name = name
        domain = space.get(name) if space is not None else None
        if isinstance(domain, Float | Int):
            self.numeric, self.log = True, bool(domain.log)
        elif domain is not None:
            self.numeric, self.log = False, False
        else:
            self.numeric = summary.is_numeric(values)
            present = [float(v) for v in values if v is not None] if self.numeric else []
            self.log = bool(present) and min(present) > 0 and max(present) / min(present) > 1e3
        self.categories: list[str] = []
        if not self.numeric:
            if isinstance(domain, Categorical):
                labels = [text(c) for c in domain.choices]
            else:
                labels = sorted({text(v) for v in values})
            self.categories = list(dict.fromkeys(labels))

    @property
    def title(self) -> str:
        return f"log10({self.name})" if self.numeric and self.log else self.name

    def position(self, value: Any) -> float | None:
        """A number along this axis (category index for categories), or ``None``."""
        if value is None and self.numeric:
            return None
        if not self.numeric:
            label = text(value)
            if label not in self.categories:
                self.categories.append(label)
            return float(self.categories.index(label))
        number = float(value)
        if self.log:
            return math.log10(number) if number > 0 else None
        return number

    def ticks(self) -> dict[str, Any]:
        """Axis settings: category labels at their indices."""
        if self.numeric:
            return {}
        return {
            "tickvals": list(range(len(self.categories))),
            "ticktext": [_esc(c) for c in self.categories],
        }


def _axes(snap: Snapshot, trials: Sequence[Trial]) -> dict[str, _Axis]:
    return {
        name: _Axis(name, [t.params.get(name) for t in trials], snap.space)
        for name in snap.param_names
    }


# --- the figures -----------------------------------------------------------------------


def _history(snap: Snapshot, done: list[Trial], best: Trial | None) -> Figure:
    shown = _sampled(done, MAX_POINTS, [best] if best else [])
    best_x: list[int] = []
    best_y: list[float] = []
    running: float | None = None
    for trial, value in zip(
        snap.trials, summary.best_so_far(snap.trials, snap.direction), strict=True
    ):
        if value is not None and value != running:  # the best changed: a new step
            best_x.append(trial.number)
            best_y.append(value)
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
            "hovertemplate": "trial %{x}<br>score %{y:.6g}<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "best so far",
            "x": best_x,
            "y": best_y,
            "line": {"color": "#264653", "width": 2, "shape": "hv"},
            "hovertemplate": "best so far %{y:.6g}<extra></extra>",
        },
    ]
    return _figure(
        "history",
        "Optimisation history",
        data,
        _layout("trial number", "score"),
        _sample_note(len(shown), len(done), "scores"),
    )


def _importance(names: list[str], weights: dict[str, float], n_done: int) -> Figure:
    order = sorted(names, key=lambda n: weights[n])
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "x": [round(weights[n], 4) for n in order],
            "y": [_esc(n) for n in order],
            "marker": {"color": "#457b9d"},
            "hovertemplate": "%{y}: %{x:.3f}<extra></extra>",
        }
    ]
    layout = _layout("share of score variance (η²)", "", height=max(160, 40 + 28 * len(order)))
    layout["margin"]["l"] = 140
    note = "Each parameter alone: the share of the score's variance explained by grouping "
    note += "complete trials by its value (quantile bins for numbers)."
    if n_done < 3:
        note = "Needs at least 3 complete trials."
    return _figure("importance", "Parameter importance", data, layout, note)


def _slice(axis: _Axis, shown: list[Trial], fig_id: str) -> Figure:
    xs, ys, numbers, labels = [], [], [], []
    for trial in shown:
        x = axis.position(trial.params.get(axis.name)) if axis.name in trial.params else None
        if x is None:
            continue
        if not axis.numeric:  # spread a category's points a little, the same way every time
            x += ((trial.number * 0.618034) % 1 - 0.5) * 0.3
        xs.append(_short(x))
        ys.append(_short(trial.score))
        numbers.append(trial.number)
        if not axis.numeric or axis.log:  # else the hover shows x itself
            labels.append(_esc(text(trial.params[axis.name])))
    data = [
        {
            "type": "scatter",
            "mode": "markers",
            "x": xs,
            "y": ys,
            "text": labels or None,
            "marker": {
                "size": 6,
                "opacity": 0.7,
                "color": numbers,
                "colorscale": "Viridis",
                "showscale": False,
            },
            "hovertemplate": "trial %{marker.color}<br>"
            + ("%{text}" if labels else "%{x:.6g}")
            + "<br>score %{y:.6g}<extra></extra>",
        }
    ]
    layout = _layout(axis.title, "score", height=280)
    layout["xaxis"].update(axis.ticks())
    return _figure(fig_id, f"Slice: {axis.name}", data, layout)


def _binned(axis: _Axis, positions: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Bin index per position, and the bins' centres."""
    if not axis.numeric:
        return positions.astype(int), [float(i) for i in range(len(axis.categories))]
    low, high = float(positions.min()), float(positions.max())
    if high <= low:
        return np.zeros(len(positions), dtype=int), [low]
    edges = np.linspace(low, high, CONTOUR_BINS + 1)
    index = np.clip(np.searchsorted(edges, positions, side="right") - 1, 0, CONTOUR_BINS - 1)
    return index, [float(c) for c in (edges[:-1] + edges[1:]) / 2]


def _contour(xa: _Axis, ya: _Axis, done: list[Trial], best: Trial | None) -> Figure | None:
    points: list[tuple[float, float, Trial]] = []
    for t in done:
        if xa.name in t.params and ya.name in t.params:
            x, y = xa.position(t.params[xa.name]), ya.position(t.params[ya.name])
            if x is not None and y is not None:
                points.append((x, y, t))
    if len(points) < 3:
        return None
    xs = np.array([p[0] for p in points], dtype=float)
    ys = np.array([p[1] for p in points], dtype=float)
    scores = np.array([p[2].score for p in points], dtype=float)
    xi, xc = _binned(xa, xs)
    yi, yc = _binned(ya, ys)
    sums = np.zeros((len(yc), len(xc)))
    counts = np.zeros((len(yc), len(xc)))
    np.add.at(sums, (yi, xi), scores)
    np.add.at(counts, (yi, xi), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    z = [[None if math.isnan(v) else round(float(v), 6) for v in row] for row in means]
    keep = _sampled([p[2] for p in points], MAX_POINTS, [best] if best else [])
    kept = {t.number for t in keep}
    data: list[dict[str, Any]] = [
        {
            "type": "contour",
            "x": xc,
            "y": yc,
            "z": z,
            "connectgaps": True,
            "colorscale": "Viridis",
            "reversescale": False,
            "colorbar": {"title": {"text": "mean score"}, "thickness": 12},
            "hovertemplate": "mean score %{z:.4g}<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "markers",
            "x": [float(x) for x, _, t in points if t.number in kept],
            "y": [float(y) for _, y, t in points if t.number in kept],
            "customdata": [t.number for _, _, t in points if t.number in kept],
            "marker": {"size": 4, "color": "white", "line": {"width": 0.5, "color": "#333"}},
            "hovertemplate": "trial %{customdata}<extra></extra>",
        },
    ]
    layout = _layout(xa.title, ya.title, height=380)
    layout["xaxis"].update(xa.ticks())
    layout["yaxis"].update(ya.ticks())
    note = f"Mean score of complete trials over a {len(xc)} by {len(yc)} grid of the two most "
    note += "important parameters (empty cells interpolated); dots are trials."
    title = f"Contour: {xa.name} and {ya.name}"
    return _figure("contour", title, data, layout, note)


VIRIDIS = ["#440154", "#414487", "#2a788e", "#22a884", "#7ad151", "#fde725"]


def _parallel(
    axes: dict[str, _Axis], done: list[Trial], best: Trial | None, direction: object
) -> Figure | None:
    """Parallel coordinates drawn as SVG lines (Plotly's parcoords needs WebGL, slow to emulate).

    Each axis runs from its lowest value (bottom) to its highest (top); lines
    are coloured by score in six quantile bands, the best band brightest.
    """
    names = [n for n in axes if all(n in t.params for t in done)]
    if len(done) < 2 or not names:
        return None
    shown = _sampled(done, MAX_SLICE_POINTS, [best] if best else [])
    columns: list[list[float]] = []
    annotations: list[dict[str, Any]] = []
    titles = [*(axes[n].title for n in names), "score"]
    for i, name in enumerate(names):
        axis = axes[name]
        raw = [axis.position(t.params[name]) for t in shown]
        columns.append(_unit_column(raw, axis, i, annotations))
    scores = [float(t.score or 0.0) for t in shown]
    columns.append(_unit_column(scores, None, len(names), annotations))
    sign = 1.0 if direction == "maximize" else -1.0
    order = np.argsort(np.argsort([sign * v for v in scores]))  # rank, best last
    bands = (order * len(VIRIDIS) // len(shown)).tolist()
    data: list[dict[str, Any]] = []
    for band, color in enumerate(VIRIDIS):
        xs: list[int | None] = []
        ys: list[float | None] = []
        for row, b in enumerate(bands):
            if b == band:  # 3 decimals of an axis's height: finer than a pixel
                xs.extend([*range(len(columns)), None])
                ys.extend([*(round(col[row], 3) for col in columns), None])
        if xs:
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": xs,
                    "y": ys,
                    "line": {"width": 1, "color": color},
                    "opacity": 0.55,
                    "hoverinfo": "skip",
                }
            )
    layout = _layout("", "", height=380)
    layout["xaxis"].update(
        {
            "tickvals": list(range(len(titles))),
            "ticktext": [_esc(t) for t in titles],
            "side": "top",
            "showgrid": True,
            "gridcolor": "#555",
            "zeroline": False,
        }
    )
    layout["yaxis"].update({"visible": False, "range": [-0.05, 1.05]})
    layout["margin"] = {"l": 40, "r": 40, "t": 40, "b": 10}
    layout["annotations"] = annotations
    left_out = [n for n in axes if n not in names]
    note = "Each line is a trial; colour by score (yellow: the best sixth). "
    note += _sample_note(len(shown), len(done))
    if left_out:
        note += f" Parameters absent from some trials are left out: {', '.join(left_out)}."
    return _figure("parallel", "Parallel coordinates", data, layout, note.strip())


def _unit_column(
    values: Sequence[float | None], axis: _Axis | None, x: int, annotations: list[dict[str, Any]]
) -> list[float]:
    """``values`` scaled to [0, 1] along axis ``x``, and the axis's labels appended."""

    def label(y: float, text_: str) -> None:
        annotations.append(
            {"x": x, "y": y, "text": _esc(text_), "showarrow": False, "xanchor": "left",
             "xshift": 3, "font": {"size": 10, "color": "#333"}}
        )  # fmt: skip

    if axis is not None and not axis.numeric:
        top = max(1, len(axis.categories) - 1)
        step = max(1, len(axis.categories) // 12)  # at most about a dozen labels
        for i, category in enumerate(axis.categories[::step]):
            label(i * step / top, category)
        return [0.5 if v is None else v / top for v in values]
    present = [v for v in values if v is not None]
    low, high = (min(present), max(present)) if present else (0.0, 1.0)
    span = high - low or 1.0
    label(0.0, f"{low:.3g}")
    label(1.0, f"{high:.3g}")
    return [0.5 if v is None else (v - low) / span for v in values]


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
            "hoverinfo": "skip",
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
            "hovertemplate": "trial %{customdata} pruned at step %{x}<extra></extra>",
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
            "y": [_esc(t.worker or "?") for t in group],
            "customdata": [t.number for t in group],
            "marker": {"color": STATUS_COLORS[status], "line": {"width": 0.5, "color": "white"}},
            "hovertemplate": f"trial %{{customdata}} ({status})<br>%{{x:.3g}} s<extra></extra>",
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
            "hovertemplate": "%{x}: %{y}<extra></extra>",
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
        "duration": "" if trial.duration is None else f"{trial.duration:.3g}",
        "worker": trial.worker or "",
        "params": {n: text(trial.params[n]) if n in trial.params else "" for n in names},
    }
    if origin is not None:
        row["journal"] = origin
    return row


def build_view(snap: Snapshot) -> dict[str, Any]:
    """The summary, tables and figures of ``snap``, as JSON-ready data."""
    names = snap.param_names
    done = summary.scored(snap.trials)
    best = summary.best(snap.trials, snap.direction)
    counts = summary.status_counts(snap.trials)
    weights = summary.importance(snap.trials, names)
    axes = _axes(snap, snap.trials)
    origins = dict(zip((id(t) for t in snap.trials), snap.origins, strict=False))
    figures = [_history(snap, done, best), _importance(names, weights, len(done))]
    figures.append(_statuses(counts))
    ranked = sorted(names, key=lambda n: -weights[n])
    if len(ranked) >= 2:
        contour = _contour(axes[ranked[0]], axes[ranked[1]], done, best)
        if contour is not None:
            figures.append(contour)
    more = (_parallel(axes, done, best, snap.direction), _curves(snap, best), _timeline(snap))
    figures.extend(figure for figure in more if figure is not None)
    shown = _sampled(done, MAX_SLICE_POINTS, [best] if best else [])
    note = _sample_note(len(shown), len(done), "scores")
    for i, name in enumerate(names):
        figure = _slice(axes[name], shown, f"slice-{i}")
        figure["note"] = f"Complete trials; colour: trial number, later brighter. {note}".strip()
        figures.append(figure)
    failed = [t for t in snap.trials if t.error is not None]
    ranked_trials = summary.top(snap.trials, snap.direction, TOP_K)
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
            "best": None if best is None else trial_row(best, names, origins.get(id(best))),
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
        "top": [trial_row(t, names, origins.get(id(t))) for t in ranked_trials],
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
