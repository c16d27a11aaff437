"""The `tos-monitor` program (and `python -m monitor`): the CLI (`cli.entry`), with Playwright's
driver spawned first when the command is `run`.

The driver is a Node process that takes ~0.3 s to start and needs nothing from the command line's
parsing, the watchlist or the CLI's own imports (~0.1 s), so for `run` it is spawned before them
(`driver.spawn_for_run`) and they overlap its start; the run takes it up (`driver.take_early`). Any
other command imports the CLI at once, as before.
"""

from __future__ import annotations

import sys

# The program's options that take a value (`cli.main`): what follows one is not the command.
VALUE_OPTIONS = ("--home", "--watchlist")


def is_run_command(args: list[str]) -> bool:
    """Whether the program's arguments ask for `run` (not its help): the program's own options
    come first, `--home` and `--watchlist` with a value, as `cli.main` declares them."""
    rest = iter(args)
    for arg in rest:
        if arg in VALUE_OPTIONS:
            next(rest, None)
        elif arg.startswith(tuple(f"{o}=" for o in VALUE_OPTIONS)):
            continue
        elif arg.startswith("-"):
            return False  # --help, --version, or an option click will refuse
        else:
            return arg == "run" and not any(a in ("--help", "-h") for a in rest)
    return False


def entry() -> None:
    from monitor.driver import spawn_for_run

    if is_run_command(sys.argv[1:]):
        spawn_for_run()
    from monitor.cli import entry as cli_entry

    cli_entry()
