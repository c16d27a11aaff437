#!/usr/bin/env bash
# Set up tos-monitor on this machine: a virtual environment in .venv with the package (and, with
# --test, the test tools), and a Chromium for the browser fetches.
#   ./setup.sh          install for nightly use
#   ./setup.sh --test   install for development and tests
# Chromium: an existing one is used (TOS_MONITOR_CHROMIUM, Playwright's, or the system's); otherwise
# Debian/Ubuntu's package is installed with apt-get, and failing that Playwright's own download.
set -euo pipefail
cd "$(dirname "$0")"
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

have_chromium() {
  [ -n "${TOS_MONITOR_CHROMIUM:-}" ] && [ -x "${TOS_MONITOR_CHROMIUM}" ] && return 0
  [ -x /usr/lib/chromium/chromium-headless-shell ] && return 0
  [ -x /usr/lib/chromium/chromium ] && return 0
  command -v chromium >/dev/null 2>&1 && return 0
  compgen -G "${PLAYWRIGHT_BROWSERS_PATH:-$HOME/.cache/ms-playwright}/chromium-*/chrome-linux*/chrome" \
    >/dev/null && return 0
  return 1
}

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".${extras}"

if ! have_chromium; then
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
fi
have_chromium || { echo "setup: no Chromium could be installed; see README 'Chromium'" >&2; exit 1; }
echo "setup: ready (.venv/bin/tos-monitor)" >&2
