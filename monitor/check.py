"""Check one document: fetch it, extract its policy text, and record what the night found
(an unchanged sighting, a new version and its change, or a failure), in one store.

`monitor.run` drives this for every document of the watchlist; it imports this module while
Chromium starts, since its dependencies (the SQLite layer, extraction, change analysis) are most
of a run's fixed start.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from monitor.changes import (
    Analysis,
    comparison_sha,
    diff_change,
    flag_change,
    record_text,
    record_unchanged,
    same_wording,
)
from monitor.extract import ExtractError, extract_document, extract_reduced, page_text
from monitor.fetch import FetchPool, FetchResult, Page, now_utc
from monitor.guard import GuardError, check_text, compare, wall_error
from monitor.relocate import relocate
from monitor.run import DocumentOutcome
from monitor.store import Store
from monitor.watchlist import Document, Watchlist


def register_document(store: Store, watchlist: Watchlist, document: Document) -> None:
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


async def check_document(
    store: Store,
    pool: FetchPool,
    run_id: int,
    document: Document,
    stage_seconds: dict[str, float],
    before_flags: Callable[[], Awaitable[None]] | None = None,
) -> DocumentOutcome:
    """Fetch, extract and record one document. `before_flags`, when given, is awaited once
    the document needs the fetch pool no more and its new wording is about to be flagged: the
    nightly run holds the flagger there until its browser has closed."""
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
        # Fresh: a page the server marked cacheable would otherwise come back from the first
        # look's copy in Chromium's cache, and confirm itself.
        again = await pool.fetch(document, fresh=True)
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
        # CPU work, in a worker thread while the loop goes on: the diff at once, the flags (the
        # flagger's ~100 MB) when `before_flags` lets them, after the browser has closed.
        fields = await asyncio.to_thread(diff_change, current.text, text, stage_seconds)
        if before_flags is not None:
            await before_flags()
        fields |= await asyncio.to_thread(flag_change, current.text, text, stage_seconds)
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
