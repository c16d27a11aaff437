"""Stage 5: decide what a fetched text means — baseline, unchanged, new version, or revert — and
record it.

A text is compared by its "comparison text": the full text less the document's `ignore` patterns.
The stored version keeps the full text; only the decision ignores those lines. A text seen before
for the same document (pages flip between A/B variants) is a `revert` to that version, not a new
version, so flips never pile up copies or look like fresh rewrites.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from monitor.pause import pause_at
from monitor.store import Store, Version, sha256_text
from monitor.watchlist import Document


def comparison_text(text: str, ignore: tuple[str, ...]) -> str:
    """The text with ignored stretches removed and the blank lines they leave folded away."""
    for pattern in ignore:
        text = re.sub(pattern, "", text, flags=re.MULTILINE)
    lines = [line.rstrip() for line in text.splitlines()]
    return "\n".join(line for line in lines if line) + "\n"


def comparison_sha(text: str, document: Document) -> str:
    return sha256_text(comparison_text(text, document.ignore))


# Markdown-like markers of a block (heading, list item) and table cell boundaries: layout.
_MARKER = re.compile(r"^(?:#{1,6}|[-*+]|\d+[.)])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\s+\|\s+")


def wording(text: str) -> frozenset[tuple[str, int]]:
    """The sentences of a text, each with how many different blocks say it, block markers and
    all spacing removed.

    Two texts with the same wording say the same thing in another order or layout: a block
    moved, a table of contents or a mobile layout rearranging the same sentences, a heading
    level or list marker changed, a space before a full stop. Only a change of wording is a
    change a reviewer hears about (issue: "only a change of wording is a change").

    A block repeated as it is (a table of contents repeating the headings, a layout showing a
    block twice) counts once, so that layouts still compare equal. A sentence said in one more
    block, or in one fewer, is counted: "We may share this information" appended to a second
    section, when the first already said it, extends what the policy allows, and compared as a
    plain set of sentences it read as the same wording and was never reported.
    """
    blocks: dict[str, str] = {}  # each block once, by its content without any spacing
    for line in text.splitlines():
        stripped = _MARKER.sub("", line.strip())
        blocks.setdefault("".join(stripped.split()), stripped)
    counts: Counter[str] = Counter()
    for block in blocks.values():
        for part in _SENTENCE_END.split(block):
            compact = "".join(part.split())
            if compact:
                counts[compact] += 1
    return frozenset(counts.items())


def same_wording(old: str, new: str, document: Document) -> bool:
    """Do two texts (less the document's `ignore` patterns) hold the same sentences?"""
    return wording(comparison_text(old, document.ignore)) == wording(
        comparison_text(new, document.ignore)
    )


@dataclass(frozen=True)
class Recorded:
    outcome: str
    version_id: int | None = None
    change_id: int | None = None
    from_version_id: int | None = None
    note: str = ""  # for the fetch row, e.g. why a different text counts as unchanged
    # A flip between two texts already reported once: recorded, never alerted.
    quiet: bool = False


def record_unchanged(
    store: Store, version_id: int, fetched_at: str, run_id: int | None = None
) -> Recorded:
    with store.transaction():
        store.touch_version(version_id, fetched_at, run_id)
    return Recorded("unchanged", version_id)


def snapshot_stamp(timestamp: str) -> str:
    """`2026-11-24T03:00:01.123456Z` -> `2026-11-24T030001Z`: sortable and safe on every FS."""
    return timestamp[:19].replace(":", "") + "Z"


def record_text(
    store: Store,
    run_id: int,
    document: Document,
    text: str,
    raw: str | bytes | None,
    fetched_at: str,
    suspect: bool = False,
    seconds: dict[str, float] | None = None,
    analysis: Analysis | None = None,
) -> Recorded:
    """Record one successfully extracted text; the caller records the fetch row with the result.

    `suspect` marks a drastic change that was confirmed by a second fetch but may still be a
    substituted page; alerts say so. `analysis` is the change's diff and flags if the caller
    already computed them off the event loop (used when it was made from the same two texts).
    """
    compare_sha = comparison_sha(text, document)
    row = store.document(document.key) or {}
    current_id = row.get("current_version_id")
    current = store.version(current_id) if current_id else None

    if current is not None and current.compare_sha256 == compare_sha:
        return record_unchanged(store, current.id, fetched_at, run_id)
    if current is not None and same_wording(current.text, text, document):
        # Same sentences, other order or layout: recorded as a note on the fetch, never a
        # version or an alert. The version keeps the text as first seen.
        unchanged = record_unchanged(store, current.id, fetched_at, run_id)
        return Recorded(
            unchanged.outcome, unchanged.version_id,
            note="same wording as the current version in another order or layout: not a change",
        )  # fmt: skip

    earlier = store.find_version(document.key, compare_sha)
    if earlier is not None and current is not None:
        return _record_revert(
            store, run_id, document, current, earlier, fetched_at, seconds, analysis
        )

    # Files before rows: a crash in between leaves an orphan file, never a dangling row.
    files = store.write_snapshot(
        document.platform, document.id, snapshot_stamp(fetched_at), text, raw
    )
    pause_at("snapshot-written")
    with store.transaction():
        version_id = store.add_version(
            {
                "document_key": document.key,
                "sha256": sha256_text(text),
                "compare_sha256": compare_sha,
                "text": text,
                "chars": len(text),
                "first_seen": fetched_at,
                "last_seen": fetched_at,
                "run_id": run_id,
                **files,
            }
        )
        pause_at("transaction")
        if current is None:
            _set_current(store, document, version_id, fetched_at, changed=False)
            return Recorded("baseline", version_id)
        change_id = _add_change(
            store, run_id, document, current, version_id, "new", fetched_at,
            suspect=suspect, seconds=seconds, analysis=analysis,
        )  # fmt: skip
        _set_current(store, document, version_id, fetched_at, changed=True)
    return Recorded("new", version_id, change_id, current.id)


def _record_revert(
    store: Store,
    run_id: int,
    document: Document,
    current: Version,
    earlier: Version,
    fetched_at: str,
    seconds: dict[str, float] | None = None,
    analysis: Analysis | None = None,
) -> Recorded:
    """A flip back to a text seen before. The first time a pair of texts alternates it is
    reported; later flips between the same texts are recorded but kept quiet, so a page that
    A/B-tests twice a day does not alert every night."""
    pair = {current.id, earlier.id}
    earlier_flips = [
        c for c in store.changes(document.key) if {c["from_version_id"], c["to_version_id"]} == pair
    ]
    quiet = any(c["kind"] == "revert" for c in earlier_flips)
    variants = _variants(store, document.key, pair)
    note = f"the page alternates between {variants} variants; back to the text first seen " \
        f"{earlier.first_seen[:10]}"  # fmt: skip
    with store.transaction():
        store.touch_version(earlier.id, fetched_at, run_id)
        change_id = _add_change(
            store, run_id, document, current, earlier.id, "revert", fetched_at,
            quiet=quiet, note=note, seconds=seconds, analysis=analysis,
        )  # fmt: skip
        _set_current(store, document, earlier.id, fetched_at, changed=True)
    return Recorded("revert", earlier.id, change_id, current.id, quiet=quiet)


def _variants(store: Store, key: str, pair: set[int]) -> int:
    """How many distinct texts take part in this document's flips (at least the pair itself)."""
    seen = set(pair)
    for change in store.changes(key):
        if change["kind"] == "revert":
            seen |= {change["from_version_id"], change["to_version_id"]}
    return len(seen)


def _add_change(
    store: Store,
    run_id: int,
    document: Document,
    current: Version,
    to_version_id: int,
    kind: str,
    fetched_at: str,
    suspect: bool = False,
    quiet: bool = False,
    note: str = "",
    seconds: dict[str, float] | None = None,
    analysis: Analysis | None = None,
) -> int:
    new = store.version(to_version_id)
    new_text = new.text if new else ""
    if analysis is None or (analysis.old, analysis.new) != (current.text, new_text):
        analysis = Analysis(current.text, new_text, analyse_change(current.text, new_text, seconds))
    return store.add_change(
        {
            "document_key": document.key,
            "run_id": run_id,
            "detected_at": fetched_at,
            "from_version_id": current.id,
            "to_version_id": to_version_id,
            "kind": kind,
            "suspect": int(suspect),
            "quiet": int(quiet),
            "note": note or None,
            **analysis.fields,
        }
    )


@dataclass(frozen=True)
class Analysis:
    """A change's stored analysis and the two texts it was computed from."""

    old: str
    new: str
    fields: dict[str, Any]


def analyse_change(old: str, new: str, seconds: dict[str, float] | None = None) -> dict[str, Any]:
    """The diff, its summary and the flagged clauses it touches, computed once and stored with
    the change, so reports and alerts never recompute them or disagree. Time spent per stage is
    added to `seconds` for the run's statistics."""
    return {**diff_change(old, new, seconds), **flag_change(old, new, seconds)}


def diff_change(old: str, new: str, seconds: dict[str, float] | None = None) -> dict[str, Any]:
    """The diff half of `analyse_change`: little memory, so a run computes it beside the browser."""
    # Imported here: a night without changes never needs it.
    from monitor.diff import diff_texts

    started = time.perf_counter()
    diff = diff_texts(old, new)
    if seconds is not None:
        seconds["diff"] = seconds.get("diff", 0.0) + time.perf_counter() - started
    return {"summary": json.dumps(diff["summary"]), "diff": json.dumps(diff)}


def flag_change(old: str, new: str, seconds: dict[str, float] | None = None) -> dict[str, Any]:
    """The flags half of `analyse_change`: the flagger's model, tokenizer and arrays (~100 MB),
    which a run holds until its browser has closed (`monitor.run.BrowserPhase`)."""
    # Imported here: a night without changes never needs the flagger's model and patterns.
    from monitor.flag import change_flags

    started = time.perf_counter()
    flags = change_flags(old, new)
    if seconds is not None:
        seconds["flag"] = seconds.get("flag", 0.0) + time.perf_counter() - started
    return {"flags": json.dumps(flags)}


def _set_current(
    store: Store, document: Document, version_id: int, fetched_at: str, changed: bool
) -> None:
    row: dict[str, Any] = {"key": document.key, "current_version_id": version_id}
    if changed:
        row["last_changed"] = fetched_at
    store.upsert_document(row)
