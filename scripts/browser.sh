#!/usr/bin/env bash
# Make sure Debian's Chromium is installed for the browser tests (tests/test_report.py,
# tests/test_dashboard.py drive it with Playwright). A fresh CI machine has none; browser
# downloads do not work there, so it comes from apt. Quick when it is already installed.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "scripts/browser.sh: /usr/bin/chromium is missing and this is not root:" \
         "run 'apt-get install chromium' (the browser tests skip without it)" >&2
    exit 0
fi
echo "installing chromium from Debian's packages for the browser tests..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
