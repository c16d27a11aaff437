"""`tos-monitor`: a thin command-line layer over the library.

Exit status (README, "Exit status"): 0 success, 1 some documents failed (the rest were recorded),
2 bad configuration or usage, 3 another run holds the home folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from monitor import __version__
from monitor.watchlist import Watchlist, WatchlistError, load

EXIT_OK, EXIT_FAILURES, EXIT_CONFIG, EXIT_LOCKED = 0, 1, 2, 3


class Context:
    def __init__(self, home: Path, watchlist_path: Path):
        self.home = home
        self.watchlist_path = watchlist_path

    def watchlist(self) -> Watchlist:
        try:
            return load(self.watchlist_path)
        except WatchlistError as exc:
            click.echo(f"error: the watchlist is not valid:\n{exc}", err=True)
            sys.exit(EXIT_CONFIG)

    def store(self) -> Any:
        from monitor.store import Store

        if not (self.home / "monitor.db").exists():
            click.echo(f"error: no records in {self.home} yet (run 'tos-monitor run')", err=True)
            sys.exit(EXIT_CONFIG)
        return Store(self.home)


@click.group()
@click.version_option(__version__, prog_name="tos-monitor")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="TOS_MONITOR_HOME",
    default=".",
    show_default="current directory, or TOS_MONITOR_HOME",
    help="Folder holding watchlist.yaml, monitor.db, snapshots/ and reports/.",
)
@click.option(
    "--watchlist",
    "watchlist_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Watchlist file (default: HOME/watchlist.yaml).",
)
@click.pass_context
def main(ctx: click.Context, home: Path, watchlist_path: Path | None) -> None:
    """Watch platforms' Terms of Service and privacy policies; record every change."""
    ctx.obj = Context(home, watchlist_path or home / "watchlist.yaml")


@main.command()
@click.option("--only", metavar="PLATFORM", help="Check one platform only.")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON on stdout.")
@click.pass_obj
def run(obj: Context, only: str | None, as_json: bool) -> None:
    """One nightly pass: fetch every document, record new versions and changes."""
    from monitor.progress import RunDisplay
    from monitor.run import RunLocked, run_nightly

    watchlist = obj.watchlist()
    if only and only not in watchlist.platforms:
        known = ", ".join(watchlist.platforms)
        click.echo(f"error: --only {only}: no such platform (watchlist has: {known})", err=True)
        sys.exit(EXIT_CONFIG)
    obj.home.mkdir(parents=True, exist_ok=True)
    total = sum(1 for _ in watchlist.documents(only))
    display = RunDisplay(total, enabled=not as_json and sys.stderr.isatty())
    try:
        with display:
            summary = run_nightly(watchlist, obj.home, only, progress=display.update)
    except RunLocked as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_LOCKED)
    if as_json:
        click.echo(json.dumps(summary.as_json(), indent=2))
    else:
        click.echo(display.summary_text(summary))
    sys.exit(EXIT_FAILURES if summary.failures else EXIT_OK)


@main.command()
@click.pass_obj
def validate(obj: Context) -> None:
    """Check the watchlist without fetching anything."""
    watchlist = obj.watchlist()
    documents = sum(1 for _ in watchlist.documents())
    click.echo(
        f"{obj.watchlist_path}: ok — {len(watchlist.platforms)} platforms, {documents} documents, "
        f"{len(watchlist.reviewers)} reviewers"
    )


@main.command()
@click.argument("platform")
@click.argument("document")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def history(obj: Context, platform: str, document: str, as_json: bool) -> None:
    """Versions and changes of one document, oldest first."""
    from monitor.history import document_history, format_history

    store = obj.store()
    entries = document_history(store, f"{platform}/{document}")
    if entries is None:
        click.echo(f"error: no document {platform}/{document} in {obj.home}", err=True)
        sys.exit(EXIT_CONFIG)
    click.echo(json.dumps(entries, indent=2) if as_json else format_history(entries))


@main.command()
@click.argument("version_id", type=int)
@click.pass_obj
def show(obj: Context, version_id: int) -> None:
    """Print the text of one version."""
    version = obj.store().version(version_id)
    if version is None:
        click.echo(f"error: no version {version_id}", err=True)
        sys.exit(EXIT_CONFIG)
    click.echo(version.text, nl=False)


@main.command()
@click.option("--input", "input_file", type=click.File("r"), default="-", help="JSON lines in.")
@click.option("--output", "output_file", type=click.File("w"), default="-", help="JSON lines out.")
def flag(input_file: Any, output_file: Any) -> None:
    """Add clause category labels to JSON lines that each have a "text"."""
    from monitor.flag import flag_file

    try:
        flag_file(input_file, output_file)
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)


@main.command("eval-flags")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def eval_flags(path: str) -> None:
    """Score the flagger against labeled JSON lines: precision, recall, F1, macro-F1."""
    from monitor.evaluate import evaluate_file

    try:
        click.echo(evaluate_file(path))
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
