"""The private parts of ``distributed`` that aiotune relies on, all in this one module.

Dask offers no public way to do these two things:

* find the ``Client`` behind ``client.get_executor()`` (a
  ``distributed.cfexecutor.ClientExecutor`` keeps it in ``_client``);
* wait until a ``distributed.Queue`` built on the client's event loop exists
  on the scheduler: built there, it starts creating itself (``_started``),
  and ``await queue`` would create it a second time (two references, so
  ``close()`` would never free it).

``tests/test_dask.py::test_the_private_parts_of_distributed_aiotune_uses_are_there``
fails loudly when a Dask release changes either.
"""

from __future__ import annotations

import sys
from typing import Any


def client_of_client_executor(executor: object) -> Any | None:
    """The ``Client`` of a ``Client.get_executor()`` executor; None for any other object.

    Never imports Dask: an executor can only be Dask's if Dask is loaded.
    """
    cfexecutor = sys.modules.get("distributed.cfexecutor")
    if cfexecutor is not None and isinstance(executor, cfexecutor.ClientExecutor):
        return executor._client
    return None


async def queue_created(queue: Any) -> None:
    """Wait for a ``distributed.Queue`` built on the client's loop to exist on the scheduler."""
    started = getattr(queue, "_started", None)
    await (started if started is not None else queue)
