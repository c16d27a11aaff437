"""Named points where a run can be made to stop and wait, so that a test can kill it exactly there.

`TOS_MONITOR_PAUSE_AT=<point>` (or `<point>@<n>`: the n-th time the point is reached) makes the
run print `tos-monitor: paused at <point> (pid N)` on stderr and block at that point forever; the
crash test then sends SIGKILL to its process group. The variable is read once at import: with it
unset, `pause_at` is one comparison with None. The run never pauses in normal operation.

Points (each a place where a crash must leave consistent records):
  fetch             a page is loaded in Chromium and not yet handed back
  snapshot-written  a new version's snapshot files are written, its rows not yet
  transaction       inside the transaction that records a version (and its change)
  report            a report page's temporary file is written, not yet renamed into place
  notify            a message is recorded as being sent, and not yet sent
"""

from __future__ import annotations

import os
import sys
import time

ENV = "TOS_MONITOR_PAUSE_AT"
POINTS = ("fetch", "snapshot-written", "transaction", "report", "notify")


def _parse(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    point, _, nth = value.partition("@")
    if point not in POINTS:
        raise SystemExit(f"error: {ENV}={value}: no such point (known: {', '.join(POINTS)})")
    return point, int(nth) if nth.isdigit() and int(nth) > 0 else 1


_WANTED = _parse(os.environ.get(ENV))
_seen = 0


def pause_at(point: str) -> None:
    """Block here forever if the environment asked for this point (see the module's docstring)."""
    global _seen
    if _WANTED is None or _WANTED[0] != point:
        return
    _seen += 1
    if _seen != _WANTED[1]:
        return
    print(f"tos-monitor: paused at {point} (pid {os.getpid()})", file=sys.stderr, flush=True)
    # A sleep, not an await: the whole run (the event loop and its threads' results) stops here.
    while True:
        time.sleep(3600)
