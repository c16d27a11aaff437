"""The records as the report shows them: documents, their versions and changes, per platform.

Read-only and cheap: texts and diffs are not loaded here (a change page loads its own diff), so the
whole site's metadata loads in milliseconds even for thousands of versions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from monitor.categories import CATEGORIES, SEVERITY_ORDER, Category
from monitor.store import LAST_SEEN_SQL, SIGHTINGS_JOIN, Store

# A change's review state is its latest decision (monitor.review), or "pending" without one.
REVIEW_LABELS = {
    "pending": "Pending review",
    "acceptable": "Acceptable",
    "needs-pio": "Escalated to the PIO",
    "deal-breaker": "Deal breaker",
}
# Escalated changes still await a decision: the Public Information Officer's.
OPEN_REVIEW_STATES = frozenset({"pending", "needs-pio"})

SEVERITIES = ("deal-breaker", "review", "info")


@dataclass(frozen=True)
class Review:
    """The latest decision on a change, as the pages show it."""

    state: str
    reviewer: str
    decided_at: str
    note: str
    id: int = 0  # the decision's row: the highest id is the most recent decision


def document_type(document_id: str, name: str) -> str:
    """A reader's name for the kind of document, from its id and display name."""
    words = f"{document_id} {name}".lower()
    for needle, label in (
        ("privacy", "Privacy policy"),
        ("cookie", "Cookie policy"),
        ("guideline", "Community guidelines"),
        ("terms", "Terms of service"),
        ("agreement", "Terms of service"),
        ("tos", "Terms of service"),
    ):
        if needle in words:
            return label
    return "Other"


@dataclass
class VersionInfo:
    id: int
    document_key: str
    ordinal: int  # 1-based within the document, in order of first appearance
    sha256: str
    first_seen: str
    last_seen: str
    chars: int
    snapshot_path: str
    raw_path: str
    run_id: int | None


@dataclass
class ChangeInfo:
    id: int
    document_key: str
    run_id: int | None
    detected_at: str
    from_version_id: int
    to_version_id: int
    kind: str  # "new" or "revert"
    summary: dict[str, Any]
    flags: dict[str, Any]
    review: Review | None = None
    from_ordinal: int = 0
    to_ordinal: int = 0
    previous_id: int | None = None  # the document's change before and after this one
    next_id: int | None = None

    @property
    def categories(self) -> list[tuple[Category, dict[str, int]]]:
        """Flagged categories with their added/removed/modified clause counts, deal breakers
        first (the registry's order)."""
        by_category = self.flags.get("by_category") or {}
        return [(cat, by_category[cat.id]) for cat in CATEGORIES.values() if cat.id in by_category]

    @property
    def severity(self) -> str:
        """The most severe flagged category's severity, or "none"."""
        found = [cat.severity for cat, _ in self.categories]
        return min(found, key=SEVERITY_ORDER.__getitem__) if found else "none"

    @property
    def review_state(self) -> str:
        return self.review.state if self.review else "pending"

    @property
    def review_label(self) -> str:
        return REVIEW_LABELS.get(self.review_state, self.review_state.replace("-", " ").title())


@dataclass
class DocumentInfo:
    row: dict[str, Any]
    versions: list[VersionInfo] = field(default_factory=list)
    changes: list[ChangeInfo] = field(default_factory=list)

    @property
    def key(self) -> str:
        return str(self.row["key"])

    @property
    def platform(self) -> str:
        return str(self.row["platform"])

    @property
    def id(self) -> str:
        return str(self.row["document"])

    @property
    def name(self) -> str:
        return str(self.row.get("name") or self.id)

    @property
    def platform_name(self) -> str:
        return str(self.row.get("platform_name") or self.platform)

    @property
    def type(self) -> str:
        return document_type(self.id, self.name)

    @property
    def slug(self) -> str:
        """File name stem: ids hold no ".", so platform.document is unambiguous."""
        return f"{self.platform}.{self.id}"

    @property
    def failing(self) -> bool:
        return self.row.get("status") == "failing"

    @property
    def current(self) -> VersionInfo | None:
        wanted = self.row.get("current_version_id")
        return next((v for v in self.versions if v.id == wanted), None)

    @property
    def open_changes(self) -> list[ChangeInfo]:
        return [c for c in self.changes if c.review_state in OPEN_REVIEW_STATES]

    def version(self, version_id: int) -> VersionInfo | None:
        return next((v for v in self.versions if v.id == version_id), None)

    def states(self) -> list[tuple[str, VersionInfo, ChangeInfo | None]]:
        """(time it became current, version, the change that made it current), oldest first."""
        if not self.versions:
            return []
        by_id = {v.id: v for v in self.versions}
        out: list[tuple[str, VersionInfo, ChangeInfo | None]] = [
            (self.versions[0].first_seen, self.versions[0], None)
        ]
        for change in self.changes:
            version = by_id.get(change.to_version_id)
            if version is not None:
                out.append((change.detected_at, version, change))
        return out


@dataclass
class PlatformInfo:
    id: str
    name: str
    documents: list[DocumentInfo] = field(default_factory=list)


@dataclass
class Site:
    documents: dict[str, DocumentInfo]
    platforms: dict[str, PlatformInfo]
    changes: dict[int, ChangeInfo]
    versions: dict[int, VersionInfo]


def load_site(store: Store) -> Site:
    documents = {row["key"]: DocumentInfo(row) for row in store.documents()}
    _load_versions(store, documents)
    changes = _load_changes(store, documents)
    platforms: dict[str, PlatformInfo] = {}
    for document in sorted(documents.values(), key=lambda d: (d.platform, d.id)):
        platform = platforms.setdefault(
            document.platform, PlatformInfo(document.platform, document.platform_name)
        )
        platform.documents.append(document)
    versions = {v.id: v for d in documents.values() for v in d.versions}
    return Site(documents, platforms, changes, versions)


def _load_versions(store: Store, documents: dict[str, DocumentInfo]) -> None:
    rows = store.db.query(
        "select v.id, v.document_key, v.sha256, v.first_seen, "
        f"{LAST_SEEN_SQL} as last_seen, v.chars, v.snapshot_path, v.raw_path, v.run_id "
        f"from versions v {SIGHTINGS_JOIN} order by v.id"
    )
    for row in rows:
        document = documents.get(row["document_key"])
        if document is None:
            continue
        document.versions.append(
            VersionInfo(
                id=row["id"],
                document_key=row["document_key"],
                ordinal=len(document.versions) + 1,
                sha256=row["sha256"],
                first_seen=row["first_seen"],
                last_seen=row["last_seen"],
                chars=row["chars"] or 0,
                snapshot_path=row["snapshot_path"] or "",
                raw_path=row["raw_path"] or "",
                run_id=row["run_id"],
            )
        )


def _load_reviews(store: Store) -> dict[int, Review]:
    """change id -> its latest decision."""
    from monitor.review import latest_decisions

    return {
        change_id: Review(d.decision, d.reviewer, d.decided_at, d.note, d.id)
        for change_id, d in latest_decisions(store).items()
    }


def _load_changes(store: Store, documents: dict[str, DocumentInfo]) -> dict[int, ChangeInfo]:
    rows = store.db.query("select * from changes order by id")
    reviews = _load_reviews(store)
    found: dict[int, ChangeInfo] = {}
    for row in rows:
        document = documents.get(row["document_key"])
        if document is None:
            continue
        change = ChangeInfo(
            id=row["id"],
            document_key=row["document_key"],
            run_id=row["run_id"],
            detected_at=row["detected_at"],
            from_version_id=row["from_version_id"],
            to_version_id=row["to_version_id"],
            kind=row["kind"],
            summary=_json(row.get("summary")),
            flags=_json(row.get("flags")),
            review=reviews.get(row["id"]),
        )
        change.from_ordinal = _ordinal(document, change.from_version_id)
        change.to_ordinal = _ordinal(document, change.to_version_id)
        if document.changes:
            change.previous_id = document.changes[-1].id
            document.changes[-1].next_id = change.id
        document.changes.append(change)
        found[change.id] = change
    return found


def _ordinal(document: DocumentInfo, version_id: int) -> int:
    version = document.version(version_id)
    return version.ordinal if version else 0


def _json(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    data = json.loads(value)
    return data if isinstance(data, dict) else {}


def load_diff(store: Store, change_id: int) -> dict[str, Any]:
    rows = list(store.db.query("select diff from changes where id = ?", [change_id]))
    return _json(rows[0]["diff"]) if rows else {}


def load_text(store: Store, version_id: int) -> str:
    rows = list(store.db.query("select text from versions where id = ?", [version_id]))
    return str(rows[0]["text"]) if rows else ""
