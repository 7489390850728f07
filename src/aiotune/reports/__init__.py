"""The HTML report: :func:`report` writes one self-contained page about a study.

(The package is ``aiotune.reports``, not ``aiotune.report``: a submodule
named like the function ``aiotune.report`` would replace it on the package
as soon as it was imported.)
"""

from __future__ import annotations

import os
from pathlib import Path

from aiotune.views.figures import build_view
from aiotune.views.page import render_page
from aiotune.views.source import read_snapshot


def report(result_or_path: object, path: str | os.PathLike[str] = "report.html") -> Path:
    """Write an HTML report of a study to ``path``, and return that path.

    ``result_or_path`` is a :class:`~aiotune.TuningResult`, a journal path
    (or a list of journal paths of one study), or a running study (anything
    with ``.history``, ``.space`` and ``.direction``, such as a
    :class:`~aiotune.Tuner`), reported as it stands.

    The page is one file that opens offline — its small plotting script,
    styles and the data are inlined; no plotting library is needed — and
    shows the optimisation history (for several objectives: the Pareto
    front; infeasible trials marked), parameter importance, a slice per
    parameter, a contour of the two most important parameters, parallel
    coordinates, intermediate values, a timeline per worker, status counts,
    the top trials and a table of failures. Every value from the study is
    shown as text, never interpreted as HTML. Big studies are sampled, and
    each sampled plot says so. Blocking: in async code, call it through
    ``anyio.to_thread.run_sync`` (or ``asyncio.to_thread``).
    """
    snapshot = read_snapshot(result_or_path)
    view = build_view(snapshot)
    page = render_page(view, title=f"aiotune report: {_title(result_or_path)}")
    out = Path(path)
    out.write_text(page, encoding="utf-8")
    return out


def _title(source: object) -> str:
    if isinstance(source, str | os.PathLike):
        return Path(source).name
    if isinstance(source, list | tuple) and source:
        return ", ".join(Path(p).name for p in source)
    return "study"


__all__ = ["report"]
