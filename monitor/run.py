"""The nightly pass: watchlist -> fetch -> extract -> store/changes, one document at a time per
worker (`monitor.check`), all documents in parallel up to the watchlist's concurrency, then the
report and the alerts.

Extraction is CPU work, so it runs in a worker thread and the event loop keeps feeding the browser.
A failure of one document is recorded and never stops the others.

This module imports little: the stages it drives are imported once Chromium's driver has started
(`_run`), so that their ~0.5 s of imports overlap the browser's start instead of preceding it.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.driver import let_spawn, run_coroutine
from monitor.fetch import FetchPool, now_utc
from monitor.watchlist import AGENCY_ID, Document, Watchlist

if TYPE_CHECKING:
    from monitor.audit import SiteAudit
    from monitor.changes import Recorded
    from monitor.fetch import FetchResult
    from monitor.store import Store

LOCK_NAME = ".tos-monitor.lock"
# Changed documents whose flags may wait for the browser to close (`BrowserPhase`).
HELD_CHANGES = 16


class RunLocked(Exception):
    """Another `tos-monitor run` holds the home folder."""


@contextmanager
def run_lock(home: Path) -> Iterator[None]:
    """An flock on a file in the home folder.

    The kernel drops the lock when its process dies, so a lock left by a killed run is taken over
    without anyone deleting files by hand.
    """
    path = home / LOCK_NAME
    handle = open(path, "a+")  # noqa: SIM115 - held for the whole run
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunLocked(
                f"another tos-monitor run is in progress in {home} (pid {holder}); "
                f"this run did nothing"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


@dataclass
class DocumentOutcome:
    document: Document
    fetch: FetchResult
    recorded: Recorded | None = None
    extract_ms: int = 0
    store_ms: int = 0

    @property
    def error_class(self) -> str | None:
        return self.fetch.error_class


def _site_audit() -> SiteAudit:
    """An empty site audit (no agency pages checked), imported only when one is made."""
    from monitor.audit import SiteAudit

    return SiteAudit()


@dataclass
class RunSummary:
    run_id: int
    outcomes: list[DocumentOutcome] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)
    site: SiteAudit = field(default_factory=_site_audit)  # the agency site's audit

    @property
    def failures(self) -> list[DocumentOutcome]:
        return [o for o in self.outcomes if o.error_class]

    @property
    def failed(self) -> bool:
        """A document or an agency page failed: the run exits with status 1."""
        return bool(self.failures or self.site.failures)

    @property
    def changes(self) -> list[DocumentOutcome]:
        return [o for o in self.outcomes if o.recorded and o.recorded.change_id]

    def counts(self) -> dict[str, int]:
        kinds = [o.recorded.outcome for o in self.outcomes if o.recorded]
        return {
            "documents": len(self.outcomes),
            "unchanged": sum(1 for k in kinds if k in ("unchanged", "baseline")),
            "changed": len(self.changes),
            "failed": len(self.failures),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "documents": len(self.outcomes),
            "unchanged": self.counts()["unchanged"],
            "changes": [
                {
                    "platform": o.document.platform,
                    "document": o.document.id,
                    "kind": o.recorded.outcome,
                    "change_id": o.recorded.change_id,
                    # What the reviewer saw: a quiet change is in the history, not alerted.
                    "quiet": o.recorded.quiet,
                }
                for o in self.changes
                if o.recorded
            ],
            "failures": [
                {
                    "platform": o.document.platform,
                    "document": o.document.id,
                    "error": o.error_class,
                    "message": o.fetch.message,
                }
                for o in self.failures
            ]
            + [
                {
                    "platform": AGENCY_ID,
                    "document": "site-audit",
                    "page": a.page,
                    "error": a.error_class,
                    "message": a.message,
                }
                for a in self.site.failures
            ],
            # [] when nothing changed, and on a page's first audit (its baseline).
            "site_changes": [c.as_json() for c in self.site.changes],
            "stats": self.stats,
        }


Progress = Callable[[DocumentOutcome], None]


def run_nightly(
    watchlist: Watchlist | Callable[[], Watchlist],
    home: Path,
    only: str | None = None,
    progress: Progress | None = None,
    workers: int = 1,
) -> RunSummary:
    """One nightly pass over the watchlist (or one platform of it); raises RunLocked.

    `watchlist` may be a function that loads it (`monitor.watchlist.load` of a path, say): the run
    then starts Chromium's driver first and calls it while the driver starts, in a thread, under
    the run's lock. What it raises, the run raises, having stopped the driver.

    `workers` > 1 lets the run use that many processes for CPU work: reducing the pages of a
    watchlist with many `render: http` documents (`monitor.fetch.HTTP_WORKERS_MIN`), and a full
    report build (the first run, or after an upgrade), which flags versions after the browser has
    closed. Workers are spawned, which re-imports the calling program's main module: pass it only
    from a program whose main module is guarded by `if __name__ == "__main__"` (the `tos-monitor`
    command is).
    """
    with run_lock(home):
        # The loop the program's early driver waits in, if any (`driver.spawn_for_run`).
        return run_coroutine(_run(watchlist, home, only, progress, workers))


def _stages() -> None:
    """The stages needed before the first page is recorded: the SQLite layer, extraction, change
    analysis, the site audit. Imported in a thread while Chromium's driver and browser start (other
    processes, ~0.9 s): measured, the start then overlaps these ~0.5 s of imports."""
    import monitor.audit  # noqa: F401
    import monitor.check  # noqa: F401
    import monitor.store  # noqa: F401


def _late_stages() -> tuple[
    Callable[[Store, int, int], Any], Callable[[Watchlist, Store, int], Any]
]:
    """The report and notify stages, imported while the first pages load (in a thread: the
    imports are ~0.3 s of a run's fixed start, and nothing needs them before the end)."""
    from monitor.notify import notify_after_run
    from monitor.report import update_after_run

    return update_after_run, notify_after_run


async def _loaded_beside_driver(load: Callable[[], Watchlist]) -> tuple[Watchlist, Any]:
    """The watchlist from `load`, called in a thread once Playwright's driver has been spawned.

    The driver is a Node process that takes ~0.3 s to start and needs nothing from the
    watchlist, while loading one (YAML, then every selector checked) is ~0.1 s of Python: side by
    side on two cores instead of one after the other. The driver is wasted only when no document
    needs a browser, and then stopped as soon as the watchlist says so (`FetchPool.warm_up`)."""
    from monitor.driver import start_driver, stop_driver, take_early

    # Spawned already by the `tos-monitor` program (`driver.spawn_for_run`), else here.
    driver = take_early() or asyncio.ensure_future(start_driver())
    await let_spawn()
    try:
        watchlist = await asyncio.get_running_loop().run_in_executor(None, load)
    except BaseException:
        await stop_driver(driver)
        raise
    return watchlist, driver


async def _run(
    source: Watchlist | Callable[[], Watchlist],
    home: Path,
    only: str | None,
    progress: Progress | None,
    workers: int = 1,
) -> RunSummary:
    started = time.perf_counter()
    driver = None
    if isinstance(source, Watchlist):
        watchlist = source
    else:
        watchlist, driver = await _loaded_beside_driver(source)
    documents = list(watchlist.documents(only))
    pool = FetchPool(watchlist.settings, workers=workers, driver=driver)
    # The fixed start overlaps: Chromium and its driver start (other processes) while the stages
    # import, the store opens and the documents are registered; the late stages import last.
    pool.warm_up(documents, audit=watchlist.agency_site is not None)
    await let_spawn()  # the warm-up spawns the driver before the imports below compete with it
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, _stages)  # in a thread: the loop keeps talking to the driver
    late = loop.run_in_executor(None, _late_stages)
    from monitor.store import Store

    store = Store(home)
    try:
        store.recover(now_utc())
        return await _run_with_store(watchlist, store, pool, documents, late, started, only,
                                     progress, workers)  # fmt: skip
    finally:
        store.close()


class BrowserPhase:
    """Holds the flagging of changed documents until the run's Chromium is closed (their diff,
    which needs little memory, is computed beside the browser).

    Measured on nights with changes (`benchmarks/bench_versus_ota.py`, 9 documents), the flagger
    (its model, tokenizer and working arrays) took the Python process from ~66 MB to ~175 MB while
    Chromium's ~450 MB was still up: the night's peak, ~100 MB above a quiet night's. Held, that
    work follows the browser instead of sitting on top of it. Each held document keeps its page and
    two texts, so at most `limit` wait: past that (a night on which hundreds of documents change)
    a document is flagged at once, beside the browser, as every document was before.
    """

    def __init__(self, documents: Iterable[str], hold: bool, limit: int | None = None):
        self._fetching = set(documents)  # keys of the documents that may still need the browser
        self._hold, self._held = hold, 0
        self._limit = HELD_CHANGES if limit is None else limit
        self.fetched = asyncio.Event()  # every document is past its fetches
        self.closed = asyncio.Event()  # the browser is closed: held flags go on
        if not self._fetching:
            self.fetched.set()

    def leave(self, key: str) -> None:
        """The document `key` needs the fetch pool no more (again: no effect)."""
        self._fetching.discard(key)
        if not self._fetching:
            self.fetched.set()

    async def before_flags(self, key: str) -> None:
        """The document `key` is done fetching and about to be flagged: wait for the browser to
        close, unless nothing is held or too many already wait."""
        self.leave(key)
        if not self._hold or self._held >= self._limit or self.closed.is_set():
            return
        self._held += 1
        await self.closed.wait()

    def release(self) -> None:
        """The browser is closed: the held documents go on to their flags."""
        self.closed.set()


async def _run_with_store(
    watchlist: Watchlist,
    store: Store,
    pool: FetchPool,
    documents: list[Document],
    late: asyncio.Future[Any],
    started: float,
    only: str | None,
    progress: Progress | None,
    workers: int = 1,
) -> RunSummary:
    from monitor.audit import audit_site
    from monitor.check import check_document, register_document

    # The document phase's commits are synced to the disk together, by the first commit after
    # it (`Store.synced_once`): one by one, they were disk syncs on the event loop every tab
    # waits on. The report, the alerts and the run's end are synced as each commits.
    with store.synced_once():
        run_id = store.start_run(now_utc(), only)
        summary = RunSummary(run_id)
        stage_seconds: dict[str, float] = {}
        # Held only when a browser runs: a night of plain-HTTP documents has no peak to lower.
        phase = BrowserPhase((d.key for d in documents), hold=pool.uses_browser)

        async def one(document: Document) -> None:
            try:
                outcome = await check_document(
                    store, pool, run_id, document, stage_seconds,
                    lambda: phase.before_flags(document.key),
                )  # fmt: skip
            finally:
                phase.leave(document.key)  # unchanged, failed or flagged: done with the browser
            summary.outcomes.append(outcome)
            if progress:
                progress(outcome)

        tasks: list[asyncio.Future[None]] = []
        try:
            with store.transaction():  # one commit for the whole watchlist, not one per document
                for document in documents:
                    register_document(store, watchlist, document)
            tasks = [asyncio.ensure_future(one(d)) for d in documents]
            await phase.fetched.wait()
            # The agency's own pages, in the same browser, once the documents are done with it.
            summary.site = await audit_site(watchlist, store, run_id, pool, only)
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            # The run is stopped: documents still fetching or held stop too. (Any other error, of
            # the audit, say, lets the held documents record their changes before it is raised.)
            for task in tasks:
                task.cancel()
            raise
        finally:
            try:
                await pool.close()
            finally:
                phase.release()
                done = await asyncio.gather(*tasks, return_exceptions=True)
    for result in done:
        if isinstance(result, BaseException):
            raise result
    summary.outcomes.sort(key=lambda o: o.document.key)
    summary.stats = {
        "wall_seconds": round(time.perf_counter() - started, 3),
        "launch_seconds": round(pool.launch_seconds, 3),
        "fetch_seconds": round(sum(o.fetch.duration_ms for o in summary.outcomes) / 1000, 3),
        "extract_seconds": round(sum(o.extract_ms for o in summary.outcomes) / 1000, 3),
        "store_seconds": round(sum(o.store_ms for o in summary.outcomes) / 1000, 3),
        "diff_seconds": round(stage_seconds.get("diff", 0), 3),
        "flag_seconds": round(stage_seconds.get("flag", 0), 3),
        # Pages whose visible policy text matched last night's: recorded without extraction.
        "extraction_skipped": sum(
            1 for o in summary.outcomes if o.fetch.page and o.fetch.page.same_as_known
        ),
        "audit_seconds": summary.site.seconds,
        "site_pages": len(summary.site.audits),
    }
    update_after_run, notify_after_run = await late
    reported = time.perf_counter()
    # Before alerts, which link to the report's pages; the browser is closed by now, so report
    # workers never share the machine's memory with it.
    update_after_run(store, run_id, workers)
    notified = time.perf_counter()
    # After the records are final; never raises, and what it cannot deliver stays pending.
    notify_after_run(watchlist, store, run_id)
    summary.stats["report_seconds"] = round(notified - reported, 3)
    summary.stats["notify_seconds"] = round(time.perf_counter() - notified, 3)
    # Last: a run killed during its report or its alerts is `interrupted` too, and the next run
    # reports and notifies what it recorded (`Store.unreported_runs`).
    store.finish_run(run_id, now_utc(), summary.counts(), summary.stats)
    return summary
