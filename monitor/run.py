"""The nightly pass: watchlist -> fetch -> extract -> store/changes, one document at a time per
worker, all documents in parallel up to the watchlist's concurrency.

Extraction is CPU work, so it runs in a worker thread and the event loop keeps feeding the browser.
A failure of one document is recorded and never stops the others.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.audit import SiteAudit, audit_site
from monitor.changes import (
    Analysis,
    Recorded,
    analyse_change,
    comparison_sha,
    record_text,
    record_unchanged,
    same_wording,
)
from monitor.extract import ExtractError, extract_document, extract_reduced, page_text
from monitor.fetch import FetchPool, FetchResult, Page, now_utc
from monitor.guard import GuardError, check_text, compare, wall_error
from monitor.relocate import relocate
from monitor.store import Store
from monitor.watchlist import AGENCY_ID, Document, Watchlist

LOCK_NAME = ".tos-monitor.lock"


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


@dataclass
class RunSummary:
    run_id: int
    outcomes: list[DocumentOutcome] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)
    site: SiteAudit = field(default_factory=SiteAudit)  # the agency site's audit (monitor/audit)

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
    watchlist: Watchlist,
    home: Path,
    only: str | None = None,
    progress: Progress | None = None,
    report_workers: int = 1,
) -> RunSummary:
    """One nightly pass over the watchlist (or one platform of it); raises RunLocked.

    `report_workers` > 1 lets a full report build (the first run, or after an upgrade) flag
    versions in that many processes, after the browser has closed. Workers are spawned, which
    re-imports the calling program's main module: pass it only from a program whose main module
    is guarded by `if __name__ == "__main__"` (the `tos-monitor` command is).
    """
    with run_lock(home):
        return asyncio.run(_run(watchlist, home, only, progress, report_workers))


def _late_stages() -> tuple[
    Callable[[Store, int, int], Any], Callable[[Watchlist, Store, int], Any]
]:
    """The report and notify stages, imported while the first pages load (in a thread: the
    imports are ~0.3 s of a run's fixed start, and nothing needs them before the end)."""
    from monitor.notify import notify_after_run
    from monitor.report import update_after_run

    return update_after_run, notify_after_run


async def _run(
    watchlist: Watchlist,
    home: Path,
    only: str | None,
    progress: Progress | None,
    report_workers: int = 1,
) -> RunSummary:
    started = time.perf_counter()
    documents = list(watchlist.documents(only))
    pool = FetchPool(watchlist.settings)
    # The fixed start overlaps: Chromium and its driver start (other processes) while the
    # store opens and the documents are registered, and the late stages import in a thread.
    pool.warm_up(documents, audit=watchlist.agency_site is not None)
    late = asyncio.get_running_loop().run_in_executor(None, _late_stages)
    for _ in range(3):  # let the warm-up spawn the driver before the store's work holds the loop
        await asyncio.sleep(0)
    store = Store(home)
    try:
        store.recover(now_utc())
        return await _run_with_store(watchlist, store, pool, documents, late, started, only,
                                     progress, report_workers)  # fmt: skip
    finally:
        store.close()


async def _run_with_store(
    watchlist: Watchlist,
    store: Store,
    pool: FetchPool,
    documents: list[Document],
    late: asyncio.Future[Any],
    started: float,
    only: str | None,
    progress: Progress | None,
    report_workers: int = 1,
) -> RunSummary:
    run_id = store.start_run(now_utc(), only)
    summary = RunSummary(run_id)
    stage_seconds: dict[str, float] = {}
    try:
        with store.transaction():  # one commit for the whole watchlist, not one per document
            for document in documents:
                _register(store, watchlist, document)

        async def one(document: Document) -> None:
            outcome = await _process(store, pool, run_id, document, stage_seconds)
            summary.outcomes.append(outcome)
            if progress:
                progress(outcome)

        await asyncio.gather(*(one(d) for d in documents))
        # The agency's own pages, in the same browser, once the documents are done.
        summary.site = await audit_site(watchlist, store, run_id, pool, only)
    finally:
        await pool.close()
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
    update_after_run(store, run_id, report_workers)
    notified = time.perf_counter()
    # After the records are final; never raises, and what it cannot deliver stays pending.
    notify_after_run(watchlist, store, run_id)
    summary.stats["report_seconds"] = round(notified - reported, 3)
    summary.stats["notify_seconds"] = round(time.perf_counter() - notified, 3)
    # Last: a run killed during its report or its alerts is `interrupted` too, and the next run
    # reports and notifies what it recorded (`Store.unreported_runs`).
    store.finish_run(run_id, now_utc(), summary.counts(), summary.stats)
    return summary


def _register(store: Store, watchlist: Watchlist, document: Document) -> None:
    """Keep the documents table in step with the watchlist (names and URLs may be edited)."""
    existing = store.document(document.key)
    with store.transaction():
        store.upsert_document(
            {
                "key": document.key,
                "platform": document.platform,
                "document": document.id,
                "platform_name": watchlist.platforms[document.platform].name,
                "name": document.name,
                "url": document.url,
                "render": document.render,
                "first_checked": (existing or {}).get("first_checked") or now_utc(),
            }
        )


async def _process(
    store: Store,
    pool: FetchPool,
    run_id: int,
    document: Document,
    stage_seconds: dict[str, float],
) -> DocumentOutcome:
    current_id = (store.document(document.key) or {}).get("current_version_id")
    known = store.known_fingerprint(document.key, current_id)
    result = await pool.fetch(document, known)
    outcome = DocumentOutcome(document, result)
    if current_id is not None and result.ok and result.page and result.page.same_as_known:
        # The visible policy text is byte-identical to last night's: nothing to extract.
        started = time.perf_counter()
        with store.transaction():  # the sighting and the fetch: one commit, one fsync
            outcome.recorded = record_unchanged(store, current_id, result.started_at, run_id)
            _record_fetch(store, run_id, outcome)
        outcome.store_ms = round((time.perf_counter() - started) * 1000)
        return outcome
    # Read only now: every document waiting for a fetch slot holding last night's text made the
    # run's memory grow with the watchlist.
    current = store.version(current_id) if current_id is not None else None
    previous = current.text if current else None
    started = time.perf_counter()
    text = await _checked_text(document, result, previous)
    suspect = False
    if (
        text is not None
        and previous is not None
        and _is_suspicious(store, document, previous, text)
    ):
        # Believe a drastic change only if a second look shows it again.
        result.notes.append("suspicious change: fetched again to confirm")
        again = await pool.fetch(document)
        again.attempts += result.attempts
        again.notes = [*result.notes, *again.notes]
        outcome.fetch = result = again
        text = await _checked_text(document, result, previous)
        suspect = text is not None and _is_suspicious(store, document, previous, text)
    outcome.extract_ms = round((time.perf_counter() - started) * 1000)
    analysis = None
    if (
        current is not None
        and text is not None
        and comparison_sha(text, document) != current.compare_sha256
        and not same_wording(current.text, text, document)
    ):
        # Diff and flags are CPU work: done in a worker thread, the browser keeps fetching.
        fields = await asyncio.to_thread(analyse_change, current.text, text, stage_seconds)
        analysis = Analysis(current.text, text, fields)
    started = time.perf_counter()
    if text is not None:
        raw = result.page.raw if result.page and result.page.raw else None
        outcome.recorded = record_text(
            store,
            run_id,
            document,
            text,
            raw if raw is not None else (result.page.html if result.page else None),
            result.started_at,
            suspect=suspect,
            seconds=stage_seconds,
            analysis=analysis,
        )
        if outcome.recorded.note:
            result.notes.append(outcome.recorded.note)
    _record_fetch(store, run_id, outcome)
    outcome.store_ms = round((time.perf_counter() - started) * 1000)
    return outcome


def _is_suspicious(store: Store, document: Document, previous: str, text: str) -> bool:
    if text == previous or store.find_version(document.key, comparison_sha(text, document)):
        return False  # unchanged, or a text seen before (a flip): nothing new to doubt
    if same_wording(previous, text, document):
        return False  # the same sentences rearranged: never a change
    return compare(previous, text).suspicious


async def _checked_text(
    document: Document, result: FetchResult, previous: str | None
) -> str | None:
    """The policy text of a fetched page, or None with the failure set on `result`."""
    if not result.ok or result.page is None:
        return None
    try:
        text = await asyncio.to_thread(_extract, document, result, previous)
        check_text(text, result.page.title, previous)
        return text
    except (ExtractError, GuardError) as exc:
        result.error_class, result.message = exc.kind, str(exc)
        return None


def _extract(document: Document, result: FetchResult, previous: str | None) -> str:
    assert result.page is not None
    page = result.page
    select, remove = list(document.select) or None, list(document.remove) or None
    try:
        if page.reduced is not None:
            # What the browser made of the page: exactly what the fingerprint covers.
            text = extract_reduced(page.region, page.reduced)
        else:
            text, _ = extract_document(page.html, page.raw, page.content_type, select, remove)
    except ExtractError as exc:
        if exc.kind != "selector-missing" or previous is None:
            raise _wall_or(page, exc) from None
        found = relocate(page.html, previous, remove)
        if found is None:
            raise _wall_or(page, exc) from None
        # A relocated block keeps no fingerprint: it is extracted every night.
        page.fingerprint = None
        result.relocated = found.selector
        result.notes.append(
            f"relocated: {', '.join(document.select)} matched nothing; the text was found at "
            f"{found.selector!r} (similarity {found.similarity:.0%}); update the watchlist"
        )
        text = found.text
    body = "".join(line for line in text.splitlines() if not line.startswith("#"))
    if len(body.strip()) < document.min_chars:
        raise _wall_or(
            page,
            ExtractError(
                f"the page's text is only {len(body.strip())} characters "
                f"(at least {document.min_chars} expected)",
                kind="empty",
            ),
        )
    return text


def _wall_or(page: Page, error: ExtractError) -> Exception:
    """A page with no policy text (or none where `select` points) that reads as a wall is
    `blocked`: the admin's fix is not a selector or a longer timeout. The wall's message is often
    outside the policy region, so the whole page's visible text is read, once, on failure only."""
    if error.kind not in ("empty", "selector-missing") or not page.html:
        return error
    wall = wall_error(page_text(page.html), page.title)
    return wall if wall is not None else error


def _record_fetch(store: Store, run_id: int, outcome: DocumentOutcome) -> None:
    result, document = outcome.fetch, outcome.document
    recorded = outcome.recorded
    finished = now_utc()
    unchanged = recorded is not None and recorded.outcome == "unchanged"
    previous = store.document(document.key) or {}
    with store.transaction():
        # The whole fetch; the store keeps it compact (`Store.add_fetch`: target, fingerprint
        # on the document's row with the version read, in this same transaction).
        store.add_fetch(
            {
                "run_id": run_id,
                "document_key": document.key,
                "started_at": result.started_at,
                "duration_ms": result.duration_ms,
                "url": result.url,
                # An unchanged night should cost a few bytes: repeat nothing that says nothing.
                "final_url": result.final_url if result.final_url != result.url else None,
                "http_status": result.http_status,
                "outcome": recorded.outcome if recorded else "failed",
                "error_class": result.error_class,
                "message": result.message or None,
                "renderer": result.renderer,
                "locale": document.locale,
                "timezone": document.timezone,
                "attempts": result.attempts,
                "title": result.page.title if result.page and not unchanged else None,
                "relocated": result.relocated,
                "notes": "\n".join(result.notes) or None,
                "fingerprint": result.page.fingerprint if result.page else None,
                "version_id": recorded.version_id if recorded else None,
                "change_id": recorded.change_id if recorded else None,
            }
        )
        status: dict[str, Any] = {"key": document.key, "last_checked": finished}
        if result.ok:
            status.update(status="ok", failing_since=None, consecutive_failures=0,
                          last_error_class=None, last_error=None,
                          proposed_selector=result.relocated)  # fmt: skip
        else:
            status.update(
                status="failing",
                failing_since=previous.get("failing_since") or result.started_at,
                consecutive_failures=(previous.get("consecutive_failures") or 0) + 1,
                last_error_class=result.error_class,
                last_error=result.message,
            )
        store.upsert_document(status)
