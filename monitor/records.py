"""Public records: export a period for a records request, verify the snapshot files, search every
version, and (explicitly) prune old raw pages.

Wis. Stat. 16.61 makes the agency's review and the platforms' texts likely public records: what is
exported must be complete for its period and checkable without this tool (a manifest of sha256
sums and a plain index.html).
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.fetch import now_utc
from monitor.review import decisions
from monitor.store import LAST_SEEN_SQL, SIGHTINGS_JOIN, Store, sha256_bytes


class RecordsError(ValueError):
    """Bad arguments to a records command; the message says which and why."""


def parse_date(value: str | None, option: str, end_of_day: bool = False) -> str | None:
    """YYYY-MM-DD (or a full ISO time) -> ISO text comparable with the stored UTC times. A bare
    date given as an end (--until) includes that whole day."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RecordsError(f"{option} {value!r}: expected a date like 2026-01-31") from None
    if end_of_day and len(value.strip()) == 10:
        parsed += timedelta(days=1, microseconds=-1)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S")


def parse_age(value: str) -> timedelta:
    match = re.fullmatch(r"(\d+)\s*([dwy])", value.strip())
    if not match:
        raise RecordsError(f"--raw-older-than {value!r}: expected a number of days like 365d")
    n, unit = int(match.group(1)), match.group(2)
    return timedelta(days=n * {"d": 1, "w": 7, "y": 365}[unit])


# --- verify ----------------------------------------------------------------------------------


@dataclass
class VerifyReport:
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.altered

    def text(self) -> str:
        lines = [f"checked {self.checked} files: {len(self.missing)} missing, "
                 f"{len(self.altered)} altered"]  # fmt: skip
        lines += [f"  MISSING  {path}" for path in self.missing]
        lines += [f"  ALTERED  {path}" for path in self.altered]
        return "\n".join(lines)


def verify(store: Store) -> VerifyReport:
    """Re-hash every snapshot file against the sha256 recorded when it was written."""
    report = VerifyReport()
    for row in store.db.table("versions").rows_where(order_by="id"):
        pairs = [(row["snapshot_path"], row["snapshot_sha256"])]
        if row["raw_path"] and not row.get("raw_pruned_at"):
            pairs.append((row["raw_path"], row["raw_sha256"]))
        for relative, digest in pairs:
            if not relative:
                continue
            report.checked += 1
            path = store.home / relative
            if not path.is_file():
                report.missing.append(relative)
            elif sha256_bytes(path.read_bytes()) != digest:
                report.altered.append(relative)
    return report


# --- search ----------------------------------------------------------------------------------


def search(store: Store, phrase: str, platform: str | None = None) -> list[dict[str, Any]]:
    """Where a phrase appears: per document, the versions holding it, since when, and whether
    the current text still does."""
    if not phrase.strip():
        raise RecordsError("search needs a phrase")
    query = '"' + phrase.replace('"', '""') + '"'  # a phrase, not FTS5 syntax from the user
    rows = store.db.execute(
        f"select v.id, v.document_key, v.first_seen, {LAST_SEEN_SQL}, "
        "snippet(versions_fts, 0, '[', ']', ' ... ', 12) "
        f"from versions_fts join versions v on v.id = versions_fts.rowid {SIGHTINGS_JOIN} "
        "where versions_fts match ? order by v.document_key, v.id",
        [query],
    ).fetchall()
    documents = {d["key"]: d for d in store.documents()}
    found: dict[str, dict[str, Any]] = {}
    for version_id, key, first_seen, last_seen, snippet in rows:
        document = documents.get(key, {})
        if platform and document.get("platform") != platform:
            continue
        entry = found.setdefault(
            key,
            {
                "platform": document.get("platform"),
                "document": document.get("document"),
                "since": first_seen,
                "in_current_version": False,
                "versions": [],
            },
        )
        entry["since"] = min(entry["since"], first_seen)
        entry["in_current_version"] |= version_id == document.get("current_version_id")
        entry["versions"].append(
            {
                "version_id": version_id,
                "first_seen": first_seen,
                "last_seen": last_seen,
                "snippet": " ".join(snippet.split()),
            }  # fmt: skip
        )
    return list(found.values())


def format_search(results: list[dict[str, Any]], phrase: str) -> str:
    if not results:
        return f"{phrase!r} appears in no recorded version"
    lines = []
    for r in results:
        now = "in the current text" if r["in_current_version"] else "no longer in the current text"
        lines.append(f"{r['platform']}/{r['document']}: since {r['since'][:10]}, {now}")
        for v in r["versions"]:
            lines.append(f"  v{v['version_id']} ({v['first_seen'][:10]}): {v['snippet']}")
    return "\n".join(lines)


# --- prune -----------------------------------------------------------------------------------


def prune_raw(store: Store, older_than: timedelta, dry_run: bool = False) -> list[dict[str, Any]]:
    """Delete raw pages (never texts, diffs or decisions) of versions first seen before the cut,
    except each document's current version; every deletion is logged in the `prunes` table."""
    cutoff = (datetime.now(UTC) - older_than).strftime("%Y-%m-%dT%H:%M:%S")
    current = {d["current_version_id"] for d in store.documents()}
    pruned = []
    rows = store.db.table("versions").rows_where(
        "first_seen < ? and raw_path != '' and raw_pruned_at is null", [cutoff], order_by="id"
    )
    for row in list(rows):
        if row["id"] in current:
            continue
        path = store.home / row["raw_path"]
        entry = {
            "version_id": row["id"],
            "raw_path": row["raw_path"],
            "raw_sha256": row["raw_sha256"],
            "bytes": path.stat().st_size if path.exists() else 0,
            "pruned_at": now_utc(),
            "reason": f"raw pages older than {older_than.days} days",
        }
        pruned.append(entry)
        if dry_run:
            continue
        with store.transaction():
            store.insert_row("prunes", entry)
            store.db.table("versions").update(row["id"], {"raw_pruned_at": entry["pruned_at"]})
        path.unlink(missing_ok=True)
    return pruned


# --- export ----------------------------------------------------------------------------------


def export(
    store: Store,
    out: Path,
    since: str | None = None,
    until: str | None = None,
    platform: str | None = None,
) -> dict[str, Any]:
    """Write a zip of the period's versions (text and raw), diffs, flags, decisions and alert
    history, with manifest.json (sha256 of every file) and a human-readable index.html."""
    documents = {
        d["key"]: d for d in store.documents() if not platform or d["platform"] == platform
    }

    def in_period(when: str | None) -> bool:
        if not when:
            return False
        return (not since or when >= since) and (not until or when[:19] <= until)

    versions = [
        v for v in store.db.table("versions").rows_where(order_by="id")
        if v["document_key"] in documents and (in_period(v["first_seen"])
                                               or in_period(v["last_seen"]))
    ]  # fmt: skip
    changes = [
        c for c in store.changes() if c["document_key"] in documents and in_period(c["detected_at"])
    ]
    files: dict[str, bytes] = {}
    for v in versions:
        base = f"documents/{v['document_key']}/versions/{v['id']}"
        files[f"{base}.md"] = (store.home / v["snapshot_path"]).read_bytes()
        raw = store.home / v["raw_path"] if v["raw_path"] and not v["raw_pruned_at"] else None
        if raw is not None and raw.exists():
            files[f"{base}{''.join(Path(v['raw_path']).suffixes)}"] = raw.read_bytes()
    for c in changes:
        base = f"documents/{c['document_key']}/changes/{c['id']}"
        fields = ("id", "document_key", "kind", "detected_at", "from_version_id",
                  "to_version_id", "suspect", "note")  # fmt: skip
        record = {k: c[k] for k in fields}
        record["summary"] = json.loads(c["summary"] or "{}")
        record["decisions"] = [d.__dict__ for d in decisions(store, c["id"])]
        files[f"{base}.json"] = _json(record)
        files[f"{base}.diff.json"] = (c["diff"] or "null").encode()
        files[f"{base}.flags.json"] = (c["flags"] or "null").encode()
    files["alerts.json"] = _json(_alerts(store, {c["id"] for c in changes}, in_period))
    files["index.html"] = _index_html(documents, versions, changes, since, until).encode()
    manifest = {
        "created_at": now_utc(),
        "period": {"since": since, "until": until, "platform": platform},
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(files.items()):
            archive.writestr(name, data)
        archive.writestr("manifest.json", _json(manifest))
    tmp.replace(out)
    return {"files": len(files) + 1, "versions": len(versions), "changes": len(changes)}


def _json(data: Any) -> bytes:
    return json.dumps(data, indent=2, sort_keys=True, default=str).encode()


def _alerts(store: Store, change_ids: set[int], in_period: Any) -> list[dict[str, Any]]:
    """Messages sent about the period (recipients by name; channel URLs are never stored)."""
    out = []
    for m in store.db.table("notify_messages").rows_where(order_by="id"):
        covered = set(json.loads(m.get("change_ids") or "[]"))
        if covered & change_ids or in_period(m.get("created_at")):
            out.append({k: m.get(k) for k in ("id", "created_at", "recipient", "service", "kind",
                                              "subject", "status", "attempts", "sent_at",
                                              "last_error", "change_ids")})  # fmt: skip
    return out


def _index_html(
    documents: dict[str, dict[str, Any]],
    versions: list[dict[str, Any]],
    changes: list[dict[str, Any]],
    since: str | None,
    until: str | None,
) -> str:
    e = html.escape
    rows = []
    for key in sorted(documents):
        doc_versions = [v for v in versions if v["document_key"] == key]
        doc_changes = [c for c in changes if c["document_key"] == key]
        items = "".join(
            f'<li><a href="documents/{e(key)}/versions/{v["id"]}.md">version {v["id"]}</a>, '
            f"first seen {e(v['first_seen'])}</li>"
            for v in doc_versions
        ) + "".join(
            f'<li><a href="documents/{e(key)}/changes/{c["id"]}.json">change {c["id"]}</a> '
            f"({e(c['kind'])}), detected {e(c['detected_at'])}</li>"
            for c in doc_changes
        )
        rows.append(f"<h2>{e(documents[key].get('platform_name') or key)}: "
                    f"{e(documents[key].get('name') or '')}</h2><ul>{items}</ul>")  # fmt: skip
    period = f"{e(since or 'the beginning')} to {e(until or 'the export')}"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>tos-monitor records export</title></head><body><main>"
        f"<h1>Platform terms records, {period}</h1>"
        "<p>Every file is listed with its sha256 in manifest.json. Texts are UTF-8 Markdown-like "
        "text; raw pages are gzip-compressed as fetched.</p>"
        + "".join(rows)
        + "</main></body></html>"
    )
