"""The figures about parameters: a slice per parameter, a contour, parallel coordinates.

Each parameter becomes an :class:`_Axis`: numbers (log10 for log-scaled
domains) or categories at integer positions with their labels as ticks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from aiotune.space import Categorical, Float, Int, Space
from aiotune.trial import Trial
from aiotune.views import summary
from aiotune.views.plotting import (
    CONTOUR_BINS,
    MAX_POINTS,
    MAX_SLICE_POINTS,
    Figure,
    _figure,
    _layout,
    _sample_note,
    _sampled,
    _short,
    text,
)
from aiotune.views.source import Snapshot


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
            "ticktext": [str(c) for c in self.categories],
        }


def _axes(snap: Snapshot, trials: Sequence[Trial]) -> dict[str, _Axis]:
    return {
        name: _Axis(name, [t.params.get(name) for t in trials], snap.space)
        for name in snap.param_names
    }


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
            labels.append(text(trial.params[axis.name]))
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
            "hover": "trial %{color}\n"
            + ("%{text}" if labels else "%{x:.6g}")
            + "\nscore %{y:.6g}",
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
        means = _fill_gaps(sums / counts)
    z = [[round(float(v), 6) for v in row] for row in means]
    keep = _sampled([p[2] for p in points], MAX_POINTS, [best] if best else [])
    kept = {t.number for t in keep}
    data: list[dict[str, Any]] = [
        {
            "type": "contour",
            "x": xc,
            "y": yc,
            "z": z,
            "colorbar": {"title": {"text": "mean score"}},
            "hover": "mean score %{z:.4g}",
        },
        {
            "type": "scatter",
            "mode": "markers",
            "x": [float(x) for x, _, t in points if t.number in kept],
            "y": [float(y) for _, y, t in points if t.number in kept],
            "customdata": [t.number for _, _, t in points if t.number in kept],
            "marker": {"size": 4, "color": "white", "line": {"width": 0.5, "color": "#333"}},
            "hover": "trial %{customdata}",
        },
    ]
    layout = _layout(xa.title, ya.title, height=380)
    layout["xaxis"].update(xa.ticks())
    layout["yaxis"].update(ya.ticks())
    note = f"Mean score of complete trials over a {len(xc)} by {len(yc)} grid of the two most "
    note += "important parameters (empty cells interpolated); dots are trials."
    title = f"Contour: {xa.name} and {ya.name}"
    return _figure("contour", title, data, layout, note)


def _fill_gaps(grid: np.ndarray) -> np.ndarray:
    """``grid`` with its NaN cells filled from their neighbours (a discrete Laplace fill).

    Empty cells first take the mean of their known neighbours, ring by ring
    from the known ones; then the filled cells are relaxed towards the mean of
    all four neighbours (known cells never change), which interpolates
    smoothly between the trials, as a contour of scattered data needs.
    """
    grid = grid.copy()
    empty = np.isnan(grid)
    if not empty.any() or empty.all():
        return np.asarray(np.nan_to_num(grid))

    def neighbours(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        padded = np.pad(values, 1, constant_values=np.nan)
        stack = np.stack([padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]])
        known = ~np.isnan(stack)
        return np.where(known, stack, 0.0).sum(axis=0), known.sum(axis=0)

    while np.isnan(grid).any():
        total, count = neighbours(grid)
        fill = np.isnan(grid) & (count > 0)
        grid[fill] = total[fill] / count[fill]
    for _ in range(50):
        total, count = neighbours(grid)
        grid[empty] = total[empty] / count[empty]
    return grid


VIRIDIS = ["#440154", "#414487", "#2a788e", "#22a884", "#7ad151", "#fde725"]


def _parallel(
    axes: dict[str, _Axis], done: list[Trial], best: Trial | None, direction: object
) -> Figure | None:
    """Parallel coordinates drawn as lines, one polyline per trial.

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
                }
            )
    layout = _layout("", "", height=380)
    layout["xaxis"].update(
        {
            "tickvals": list(range(len(titles))),
            "ticktext": [str(t) for t in titles],
            "side": "top",
            "showgrid": True,
            "gridcolor": "#555",
            "zeroline": False,
        }
    )
    layout["xaxis"]["range"] = [-0.15, len(titles) - 1 + 0.45]  # room for the right labels
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
            {"x": x, "y": y, "text": text_, "showarrow": False, "xanchor": "left",
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
