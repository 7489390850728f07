"""Start the service: ``python -m examples.service --data DIR [--host H] [--port P] [--workers N]``.

Run it from the repository root (worker processes import the objectives
from ``examples.service.objectives``). Ctrl-C or SIGTERM stops it cleanly:
running studies are cancelled and resume on the next start on the same
``--data``, as they do after a crash.
"""

from __future__ import annotations

import argparse
import logging

import uvicorn

from .app import create_app


def main() -> None:
    """Parse the command line and serve until stopped."""
    parser = argparse.ArgumentParser(prog="python -m examples.service", description=__doc__)
    parser.add_argument("--data", required=True, help="directory of the studies' journals")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--workers", type=int, default=None, help="worker processes shared by every study"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = create_app(args.data, workers=args.workers)
    # Open event streams would hold a graceful shutdown forever: give them 5 s.
    uvicorn.run(app, host=args.host, port=args.port, timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
