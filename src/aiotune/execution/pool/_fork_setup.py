"""Imported first by a fork server aiotune starts: it prepares like a spawned worker, once.

A spawned worker applies its parent's ``sys.path`` and runs the main script
again (as ``__mp_main__``, so that functions defined there unpickle). On
Python 3.11 a fork server is handed the ``sys.path`` but never applies it,
and is not told the main script's path, so every worker it forks imports
the script's own modules and runs the script again itself (tens of ms
each). The starting process puts both in :data:`VARIABLE` for the moment the
fork server starts
(:func:`~aiotune.execution.pool._manager._preload_fork_server`); this
module, first in the preload list, applies the path and runs the script
once, so every worker forked from the fork server starts with the script
loaded (the worker then sees ``__main__`` is that script and skips its own
run). It takes the variable out of the fork server's environment so its
workers do not inherit it.
"""

from __future__ import annotations

import json
import os
import sys
from multiprocessing import process, spawn

VARIABLE = "AIOTUNE_FORK_SERVER_SETUP"


def _run_main(path: str) -> None:
    """Run the main script as ``__mp_main__``, as spawn does in each worker; if it fails,
    leave things as they were: each worker runs it again, and reports the failure."""
    current = sys.modules["__main__"]
    me = process.current_process()
    me._inheriting = True  # type: ignore[attr-defined]  # as the fork server does it
    try:
        spawn.import_main_path(path)
    except BaseException:  # anything the script does: the workers run it, and say what
        sys.modules["__main__"] = current
        sys.modules.pop("__mp_main__", None)
    finally:
        del me._inheriting  # type: ignore[attr-defined]


_setup = os.environ.pop(VARIABLE, None)
if _setup is not None:
    _given = json.loads(_setup)
    sys.path[:] = [path for path in _given["sys_path"] if isinstance(path, str)]
    if isinstance(_given["main_path"], str):
        _run_main(_given["main_path"])
