#!/usr/bin/env bash
# Run a real tuning study end to end: examples/quickstart.py (writes trials.jsonl, prints a summary).
source "$(dirname "$0")/_venv.sh"
exec .venv/bin/python examples/quickstart.py "$@"
