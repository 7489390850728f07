"""Shared pieces of the figures: limits, colours, escaping, layout, sampling.

See :mod:`aiotune.views.figures` for why strings are escaped and how big
studies are sampled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiotune.trial import Trial
from aiotune.views import summary

MAX_POINTS = 2000
MAX_SLICE_POINTS = 1000
MAX_CURVES = 150
MAX_BARS = 1500
MAX_FAILURES = 200
MAX_FRONT = 100
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
        "xaxis": {"title": {"text": x_title}},
        "yaxis": {"title": {"text": y_title}},
        "showlegend": False,
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
