"""The data layer behind every way of seeing a study: the CLI, the HTML report, the dashboard.

All three read the same :class:`~aiotune.views.source.Snapshot` — the trials
of a study at one moment, from a finished :class:`~aiotune.TuningResult`, a
live study (anything with ``.history``, ``.space`` and ``.direction``, such
as a running :class:`~aiotune.Tuner`) or journal files that another process
may still be appending to — and the same numbers computed from it
(:mod:`aiotune.views.summary`) and the same figures (:mod:`aiotune.views.figures`).
"""

from aiotune.views.source import Snapshot as Snapshot
from aiotune.views.source import Source as Source
from aiotune.views.source import open_source as open_source
from aiotune.views.source import read_snapshot as read_snapshot

__all__ = ["Snapshot", "Source", "open_source", "read_snapshot"]
