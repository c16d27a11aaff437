"""The `tos-monitor` program (and `python -m monitor`): the CLI (`cli.entry`), with Playwright's
driver spawned first when the command is `run`.

The driver is a Node process that takes ~0.3 s to start and needs nothing from the command line's
parsing, the watchlist or the CLI's own imports (~0.1 s), so for `run` it is spawned before them
(`driver.spawn_for_run`) and they overlap its start; the run takes it up (`driver.take_early`). Any
other command imports the CLI at once, as before.
"""

from __future__ import annotations

import sys


def entry() -> None:
    from monitor.driver import is_run_command, spawn_for_run

    if is_run_command(sys.argv[1:]):
        spawn_for_run()
    from monitor.cli import entry as cli_entry

    cli_entry()
