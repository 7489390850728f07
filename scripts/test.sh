#!/usr/bin/env bash
# Run the whole test suite (slow, real-world tests included); extra arguments go to pytest.
source "$(dirname "$0")/_venv.sh"
bash scripts/browser.sh  # Chromium for the browser tests, from apt when missing
exec .venv/bin/python -m pytest "$@"
