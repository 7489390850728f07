"""Imported first by a fork server aiotune starts: it takes the starting process's ``sys.path``.

On Python 3.11 the fork server is handed the ``sys.path`` of the process
that starts it but never applies it, so a module found only through it (the
main script's directory, a path the script added) cannot be preloaded, and
every worker imports it again (tens of ms each). The starting process puts
its ``sys.path`` in :data:`VARIABLE` for the moment the fork server starts
(:func:`~aiotune.execution.pool._manager._preload_fork_server`); this
module, first in the preload list, applies it before the other modules are
imported, as spawn does for each of its workers, and takes the variable out
of the fork server's environment so its workers do not inherit it.
"""

from __future__ import annotations

import json
import os
import sys

VARIABLE = "AIOTUNE_FORK_SERVER_PATH"

_paths = os.environ.pop(VARIABLE, None)
if _paths is not None:
    sys.path[:] = [path for path in json.loads(_paths) if isinstance(path, str)]
