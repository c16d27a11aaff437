"""`tos-monitor`: a thin command-line layer over the library.

Exit status (README, "Exit status"): 0 success, 1 some documents failed (the rest were recorded),
2 bad configuration or usage, 3 another run holds the home folder.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any, NoReturn

import click

from monitor import __version__
from monitor.watchlist import Watchlist, WatchlistError, load

EXIT_OK, EXIT_FAILURES, EXIT_CONFIG, EXIT_LOCKED = 0, 1, 2, 3


def entry() -> NoReturn:
    """The `tos-monitor` program: `main`, then an exit without the interpreter's teardown.

    Once a command has returned, all that is left of a normal exit is: wait for other threads,
    run the exit handlers, flush the standard streams, then free every object and module one by
    one. The last part does nothing anyone can see (the records are committed and closed, every
    file we write is closed by its `with`), yet after a nightly run it took ~0.18 s of a 4 s
    night, measured here. So when no other thread is still working, this runs the exit handlers
    (logging, multiprocessing's and concurrent.futures' clean-ups) and flushes the streams
    itself, then ends the process with the command's status. Anything unusual (a message as the
    status, a thread still running, a stream that cannot be flushed) takes the normal way.
    """
    try:
        main()
    except SystemExit as exc:
        status = 0 if exc.code is None else exc.code
        if not isinstance(status, int) or _threads_running():
            raise
        atexit._run_exitfuncs()
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed pipe: let Python report it as it always does
            raise exc from None
        os._exit(status)
    raise SystemExit(0)  # click's main always exits; this keeps the promise of NoReturn


def _threads_running() -> bool:
    main_thread = threading.main_thread()
    others = (t for t in threading.enumerate() if t is not main_thread)
    return any(not t.daemon and t.is_alive() for t in others)


def invalid_watchlist(exc: WatchlistError) -> NoReturn:
    click.echo(f"error: the watchlist is not valid:\n{exc}", err=True)
    sys.exit(EXIT_CONFIG)


class Context:
    def __init__(self, home: Path, watchlist_path: Path):
        self.home = home
        self.watchlist_path = watchlist_path

    def watchlist(self) -> Watchlist:
        try:
            return load(self.watchlist_path)
        except WatchlistError as exc:
            invalid_watchlist(exc)

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

    if not obj.watchlist_path.is_file():
        obj.watchlist()  # no watchlist: say so before making a home folder or taking its lock
    display = RunDisplay(None, enabled=not as_json and sys.stderr.isatty())

    def checked() -> Watchlist:
        # Called by the run while Chromium's driver starts (`run_nightly`).
        watchlist = load(obj.watchlist_path)
        if only and only not in watchlist.scopes():
            raise NoSuchPlatform(only, watchlist.scopes())
        display.set_total(sum(1 for _ in watchlist.documents(only)))
        return watchlist

    obj.home.mkdir(parents=True, exist_ok=True)
    try:
        with display:
            # CPU work (many http pages, a first build's flags) may use one process per CPU:
            # this command's entry point is guarded, as spawned workers need.
            summary = run_nightly(checked, obj.home, only, progress=display.update,
                                  workers=os.cpu_count() or 1)  # fmt: skip
    except RunLocked as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_LOCKED)
    except WatchlistError as exc:
        invalid_watchlist(exc)
    except NoSuchPlatform as exc:
        click.echo(f"error: --only {exc.only}: no such platform (watchlist has: {exc.known})",
                   err=True)  # fmt: skip
        sys.exit(EXIT_CONFIG)
    if as_json:
        click.echo(json.dumps(summary.as_json(), indent=2))
    else:
        click.echo(display.summary_text(summary))
    sys.exit(EXIT_FAILURES if summary.failed else EXIT_OK)


class NoSuchPlatform(Exception):
    """`run --only` named a platform the watchlist does not have."""

    def __init__(self, only: str, scopes: list[str]):
        super().__init__(only)
        self.only, self.known = only, ", ".join(scopes)


@main.command()
@click.option(
    "--home",
    "demo_home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A new folder for the demo (default: the global --home if given, else tos-monitor-demo).",
)
@click.pass_context
def demo(ctx: click.Context, demo_home: Path | None) -> None:
    """The whole flow offline in about a minute: bundled real policy versions served on
    127.0.0.1, several nights, the report, and a reviewer's digest in HOME/outbox/."""
    from click.core import ParameterSource

    from monitor.demo import DEFAULT_HOME, DemoError, run_demo

    if demo_home is None:
        # The global --home only when it was asked for: its default, the current folder, may be
        # a clone or an agency's home, which the demo must not fill.
        given = ctx.parent is not None and ctx.parent.get_parameter_source("home") in (
            ParameterSource.COMMANDLINE,
            ParameterSource.ENVIRONMENT,
        )
        demo_home = ctx.obj.home if given else Path(DEFAULT_HOME)
    try:
        run_demo(demo_home, say=click.echo)
    except DemoError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)


@main.command()
@click.pass_obj
def browser(obj: Context) -> None:
    """Print the Chromium a run will use; exit 1 if there is none (setup.sh asks this)."""

    from monitor.fetch import FetchFailure, find_chromium
    from monitor.watchlist import Settings

    # The watchlist's `chromium` setting wins when there is a watchlist; setup.sh runs before one
    # may be valid, so a missing or broken one means the defaults.
    try:
        settings = load(obj.watchlist_path).settings
    except (WatchlistError, OSError):
        settings = Settings()
    try:
        found = find_chromium(settings)
    except FetchFailure as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILURES)
    if found is None:
        click.echo("Playwright's own Chromium (installed with 'playwright install chromium')")
        return
    if not (os.path.isfile(found) and os.access(found, os.X_OK)):
        click.echo(f"error: the Chromium set, {found}, is not a program", err=True)
        sys.exit(EXIT_FAILURES)
    click.echo(found)


@main.command()
@click.pass_obj
def validate(obj: Context) -> None:
    """Check the watchlist without fetching anything."""
    from monitor.notify import check

    watchlist = obj.watchlist()
    for warning in check(watchlist):  # notification channels: see docs/notify.md
        click.echo(f"warning: {warning}", err=True)
    documents = sum(1 for _ in watchlist.documents())
    site = watchlist.agency_site
    pages = f", {len(site.pages)} agency pages to audit" if site else ""
    click.echo(
        f"{obj.watchlist_path}: ok — {len(watchlist.platforms)} platforms, {documents} documents, "
        f"{len(watchlist.reviewers)} reviewers{pages}"
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
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def cookies(obj: Context, as_json: bool) -> None:
    """The agency site's cookies and third parties, as its latest audit found them."""
    from monitor.audit import format_state, latest_json, site_state

    store = obj.store()
    click.echo(
        json.dumps(latest_json(store), indent=2) if as_json else format_state(site_state(store))
    )


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
@click.option("--json", "as_json", is_flag=True, help="Print what was built as JSON.")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Processes flagging versions not flagged before (default: one per CPU).",
)
@click.pass_obj
def report(obj: Context, as_json: bool, jobs: int | None) -> None:
    """Rebuild the whole HTML report in HOME/reports/ (a run updates it by itself)."""

    from monitor.report import REPORT_DIR, build_site

    stats = build_site(obj.store(), workers=jobs or os.cpu_count() or 1)
    if as_json:
        click.echo(json.dumps(stats.as_json(), indent=2))
        return
    pages = len(stats.written) + len(stats.unchanged)
    click.echo(
        f"{obj.home / REPORT_DIR / 'index.html'}: {pages} pages, {len(stats.written)} rewritten, "
        f"in {stats.seconds:.1f} s"
    )


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
@click.argument("path", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--labels",
    "labels_dir",
    type=click.Path(exists=True, file_okay=False),
    help="Directory with privacy.jsonl / terms.jsonl (e.g. ../shared/labels).",
)
@click.option(
    "--part",
    type=click.Choice(["test", "tuning", "all"]),
    default="test",
    show_default=True,
    help="Which documents of the fixed split to score (see docs/flagging.md).",
)
@click.option(
    "--family", type=click.Choice(["privacy", "terms"]), help="Family of PATH (default: its name)."
)
def eval_flags(path: str | None, labels_dir: str | None, part: str, family: str | None) -> None:
    """Score the flagger on labelled JSON lines with the rules of score_flags.py (clause
    macro-F1, per-category P/R/F1) and score_checklist.py (document accuracy per category).

    Give --labels DIR (both families) or one PATH. Exit status 0 when every scored family meets
    its bars, 1 when one is short, 2 on bad input.
    """
    from monitor import evaluate as ev

    try:
        if (path is None) == (labels_dir is None):
            raise ValueError("give either PATH or --labels DIR")
        if labels_dir is not None:
            by_family = ev.load_labels(labels_dir, part)
            click.echo(f"labels {labels_dir}, part {part}")
        else:
            assert path is not None
            by_family = {family or ev.family_of(path): ev.select_part(ev.read_jsonl(path), part)}
        ok = True
        for fam, rows in by_family.items():
            result = ev.evaluate_rows(fam, rows)
            click.echo(result.text)
            ok &= result.meets
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    sys.exit(0 if ok else 1)


@main.command()
@click.option("--test", "send_test", is_flag=True, help="Send a test message on every channel.")
@click.option("--pending", "show_pending", is_flag=True, help="Show what waits; send nothing.")
@click.option("--reviewer", metavar="NAME", help="Only this reviewer (with --test or --pending).")
@click.pass_obj
def notify(obj: Context, send_test: bool, show_pending: bool, reviewer: str | None) -> None:
    """Send what is pending (deliveries that failed before), or check the channels."""
    from monitor import notify as notifications
    from monitor.run import RunLocked, run_lock
    from monitor.store import Store

    watchlist = obj.watchlist()
    if reviewer and reviewer not in watchlist.reviewers:
        known = ", ".join(watchlist.reviewers) or "none"
        click.echo(f"error: --reviewer {reviewer}: no such reviewer (known: {known})", err=True)
        sys.exit(EXIT_CONFIG)
    if show_pending:
        store = obj.store()
        try:
            found, problems = notifications.pending(store, watchlist)
        finally:
            store.close()
        found = [p for p in found if reviewer in (None, p.recipient)]
        click.echo(notifications.format_pending(found, problems))
        return
    obj.home.mkdir(parents=True, exist_ok=True)
    try:  # a run delivers too: one sender at a time, or an item could go out twice
        with run_lock(obj.home):
            store = Store(obj.home)
            try:
                report = (
                    notifications.send_test(store, watchlist, reviewer)
                    if send_test
                    else notifications.deliver_pending(store, watchlist)
                )
            finally:
                store.close()
    except RunLocked as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_LOCKED)
    click.echo(notifications.format_report(report))
    sys.exit(EXIT_FAILURES if report.failed or report.problems else EXIT_OK)


@main.command()
@click.option("--pending", is_flag=True, help="Only changes still awaiting a decision.")
@click.option("--platform", metavar="PLATFORM", help="Only this platform.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def changes(obj: Context, pending: bool, platform: str | None, as_json: bool) -> None:
    """List recorded changes, newest first, with their review state."""
    from monitor.review import format_changes, list_changes

    rows = list_changes(obj.store(), pending=pending, platform=platform)
    click.echo(json.dumps(rows, indent=2) if as_json else format_changes(rows))


@main.command()
@click.argument("change_id", type=int)
@click.option("--decision", required=True, help="acceptable, needs-pio or deal-breaker.")
@click.option("--by", "reviewer", required=True, metavar="NAME", help="Who decides.")
@click.option("--note", default="", help="The reasoning, kept with the decision.")
@click.pass_obj
def review(obj: Context, change_id: int, decision: str, reviewer: str, note: str) -> None:
    """Record a review decision on a change (earlier decisions are kept)."""
    from monitor.review import ReviewError, record_decision

    store = obj.store()
    try:
        recorded = record_decision(store, change_id, decision, reviewer, note)
    except ReviewError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    if (obj.home / "reports").exists():  # decisions show on the report site: refresh it
        from monitor.report import update_for_review

        update_for_review(store, change_id)
    click.echo(f"change {change_id}: {recorded.decision} by {recorded.reviewer}")


@main.command()
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--since", metavar="DATE", help="From this date (YYYY-MM-DD).")
@click.option("--until", metavar="DATE", help="Up to this date.")
@click.option("--platform", metavar="PLATFORM", help="Only this platform.")
@click.pass_obj
def export(
    obj: Context, out: Path, since: str | None, until: str | None, platform: str | None
) -> None:
    """Bundle a period's records into a zip with a sha256 manifest, for a records request."""
    from monitor.records import RecordsError, parse_date
    from monitor.records import export as export_records

    try:
        counts = export_records(
            obj.store(),
            out,
            parse_date(since, "--since"),
            parse_date(until, "--until", end_of_day=True),
            platform,
        )
    except RecordsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    click.echo(
        f"{out}: {counts['files']} files ({counts['versions']} versions, "
        f"{counts['changes']} changes)"
    )


@main.command()
@click.pass_obj
def verify(obj: Context) -> None:
    """Re-hash every snapshot file against the database; exit 1 if any is missing or altered."""
    from monitor.records import verify as verify_records

    report = verify_records(obj.store())
    click.echo(report.text())
    sys.exit(EXIT_OK if report.ok else EXIT_FAILURES)


@main.command()
@click.argument("phrase")
@click.option("--platform", metavar="PLATFORM", help="Only this platform.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def search(obj: Context, phrase: str, platform: str | None, as_json: bool) -> None:
    """Find where and since when a phrase appears in any recorded version."""
    from monitor.records import RecordsError, format_search
    from monitor.records import search as search_records

    try:
        results = search_records(obj.store(), phrase, platform)
    except RecordsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    click.echo(json.dumps(results, indent=2) if as_json else format_search(results, phrase))


@main.command()
@click.option("--raw-older-than", "age", required=True, metavar="AGE", help="e.g. 365d")
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@click.pass_obj
def prune(obj: Context, age: str, dry_run: bool) -> None:
    """Delete raw pages older than AGE (never texts, diffs, decisions or current versions)."""
    from monitor.records import RecordsError, parse_age, prune_raw
    from monitor.run import RunLocked, run_lock

    try:
        older_than = parse_age(age)
        with run_lock(obj.home):
            pruned = prune_raw(obj.store(), older_than, dry_run=dry_run)
    except RecordsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    except RunLocked as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_LOCKED)
    verb = "would delete" if dry_run else "deleted"
    for entry in pruned:
        click.echo(f"{verb} {entry['raw_path']} ({entry['bytes']:,} bytes)")
    click.echo(f"{len(pruned)} raw pages {verb}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--allow-remote", is_flag=True, help="Allow a non-local --host (needs a token).")
@click.pass_obj
def serve(obj: Context, host: str, port: int, allow_remote: bool) -> None:
    """Serve the report site and let reviewers record decisions on change pages."""

    from monitor.serve import TOKEN_ENV, ServeError, check_bind, make_server

    token = os.environ.get(TOKEN_ENV) or None
    try:
        check_bind(host, allow_remote, token)
    except ServeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    if not (obj.home / "reports" / "index.html").exists():
        from monitor.report import build_site

        build_site(obj.store())
    server = make_server(obj.home, host, port, token)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{server.server_port}/"
    click.echo(f"serving {obj.home / 'reports'} at {url} (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
