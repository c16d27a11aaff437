"""Review decisions: for every change, is the platform still acceptable?

Decisions are append-only: a new decision supersedes the last one for display, and the earlier
ones stay in the history, because the agency's review is itself a public record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from monitor.fetch import now_utc
from monitor.store import Store

DECISIONS = {
    "acceptable": "Acceptable: the platform may still be used",
    "needs-pio": "Escalated to the Public Information Officer",
    "deal-breaker": "Deal breaker: the agency cannot accept these terms",
}
PENDING = "pending"
MAX_NOTE = 10_000


class ReviewError(ValueError):
    """A decision that cannot be recorded; the message says why."""


@dataclass(frozen=True)
class Decision:
    id: int
    change_id: int
    decision: str
    reviewer: str
    note: str
    decided_at: str
    via: str


def record_decision(
    store: Store,
    change_id: int,
    decision: str,
    reviewer: str,
    note: str = "",
    via: str = "cli",
) -> Decision:
    if decision not in DECISIONS:
        raise ReviewError(f"unknown decision {decision!r} (choose: {', '.join(DECISIONS)})")
    reviewer = reviewer.strip()
    if not reviewer:
        raise ReviewError("a decision needs the reviewer's name (--by)")
    if len(note) > MAX_NOTE:
        raise ReviewError(f"the note is longer than {MAX_NOTE:,} characters")
    if not list(store.db.table("changes").rows_where("id = ?", [change_id])):
        raise ReviewError(f"no change {change_id}")
    row: dict[str, Any] = {
        "change_id": change_id,
        "decision": decision,
        "reviewer": reviewer,
        "note": note,
        "decided_at": now_utc(),
        "via": via,
    }
    with store.transaction():
        decision_id = store.insert_row("reviews", row)
    return Decision(id=decision_id, **row)


def decisions(store: Store, change_id: int | None = None) -> list[Decision]:
    where, args = ("change_id = ?", [change_id]) if change_id is not None else (None, [])
    rows = store.db.table("reviews").rows_where(where, args, order_by="id")
    return [Decision(**row) for row in rows]


def latest_decisions(store: Store) -> dict[int, Decision]:
    latest: dict[int, Decision] = {}
    for decision in decisions(store):
        latest[decision.change_id] = decision  # ordered by id: the last one wins
    return latest


def list_changes(
    store: Store, pending: bool = False, platform: str | None = None
) -> list[dict[str, Any]]:
    """Changes newest first, each with its review state and the latest decision."""
    latest = latest_decisions(store)
    documents = {d["key"]: d for d in store.documents()}
    out = []
    for change in reversed(store.changes()):
        document = documents.get(change["document_key"], {})
        if platform and document.get("platform") != platform:
            continue
        decision = latest.get(change["id"])
        state = decision.decision if decision else PENDING
        if pending and state != PENDING:
            continue
        flags = json.loads(change["flags"]) if change.get("flags") else {}
        out.append(
            {
                "change_id": change["id"],
                "platform": document.get("platform"),
                "document": document.get("document"),
                "kind": change["kind"],
                "detected_at": change["detected_at"],
                "from_version_id": change["from_version_id"],
                "to_version_id": change["to_version_id"],
                "categories": sorted((flags.get("by_category") or {}).keys()),
                "suspect": bool(change.get("suspect")),
                "review_state": state,
                "reviewed_by": decision.reviewer if decision else None,
                "reviewed_at": decision.decided_at if decision else None,
                "note": decision.note if decision else None,
            }
        )
    return out


def format_changes(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no changes"
    lines = []
    for row in rows:
        reviewed = ""
        if row["reviewed_by"]:
            reviewed = f" by {row['reviewed_by']} {row['reviewed_at'][:10]}"
        categories = f"  [{', '.join(row['categories'])}]" if row["categories"] else ""
        lines.append(
            f"#{row['change_id']:<5} {row['detected_at'][:16]}  {row['platform']}/{row['document']}"
            f"  {row['kind']}  {row['review_state']}{reviewed}{categories}"
        )
    return "\n".join(lines)
