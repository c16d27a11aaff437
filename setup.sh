#!/usr/bin/env bash
# Set up tos-monitor on this machine: a virtual environment in .venv with the package (and, with
# --test, the test tools), and a Chromium for the browser fetches.
#   ./setup.sh          install for nightly use
#   ./setup.sh --test   install for development and tests
# Chromium: the product itself says which one it will use (`tos-monitor browser`, the same
# `monitor.fetch.find_chromium` every run uses); when it finds none, Debian/Ubuntu's
# chromium-headless-shell is installed with apt-get, and failing that Playwright's own download.
set -euo pipefail
cd "$(dirname "$0")"
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

# Prints the browser a run will use; fails when there is none.
browser() { .venv/bin/tos-monitor --home . browser 2>/dev/null; }

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".${extras}"
# An editable install leaves our own modules uncompiled, and a run that may not write beside them
# (a cron user other than the installer, PYTHONDONTWRITEBYTECODE) compiled them at every start:
# ~0.2 s of each night, measured. Python still checks each file against its source.
.venv/bin/python -m compileall -q monitor >/dev/null

if ! found="$(browser)"; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    # The headless shell is Chromium without a window system: lighter and faster for a server.
    echo "setup: installing Chromium's headless shell with apt-get" >&2
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium-headless-shell \
      >/dev/null || DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: no system Chromium; trying Playwright's own download" >&2
    .venv/bin/playwright install chromium
  fi
  found="$(browser)" || {
    .venv/bin/tos-monitor --home . browser || true
    echo "setup: no Chromium could be installed; see README 'Chromium'" >&2
    exit 1
  }
fi
echo "setup: ready (.venv/bin/tos-monitor; Chromium: $found)" >&2
