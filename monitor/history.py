"""Read side of the records: a document's versions and changes as plain data for the CLI."""

from __future__ import annotations

import json
from typing import Any

from monitor.store import Store


def document_history(store: Store, key: str) -> dict[str, Any] | None:
    document = store.document(key)
    if document is None:
        return None
    versions = [
        {
            "version_id": v.id,
            "sha256": v.sha256,
            "first_seen": v.first_seen,
            "last_seen": v.last_seen,
            "chars": len(v.text),
            "snapshot": v.snapshot_path,
            "raw": v.raw_path,
        }
        for v in store.versions(key)
    ]
    changes = [
        {
            "change_id": c["id"],
            "kind": c["kind"],
            "detected_at": c["detected_at"],
            "from_version_id": c["from_version_id"],
            "to_version_id": c["to_version_id"],
            "summary": json.loads(c["summary"]) if c["summary"] else {},
        }
        for c in store.changes(key)
    ]
    fetches = store.fetches(key)
    last = fetches[-1] if fetches else None
    return {
        "document": key,
        "url": document["url"],
        "status": document.get("status"),
        "last_checked": document.get("last_checked"),
        "last_changed": document.get("last_changed"),
        "current_version_id": document.get("current_version_id"),
        "fetches": len(fetches),
        "failed_fetches": sum(1 for f in fetches if f["outcome"] == "failed"),
        "last_fetch": _fetch_entry(last) if last else None,
        "versions": versions,
        "changes": changes,
    }


def _fetch_entry(fetch: dict[str, Any]) -> dict[str, Any]:
    """What a fetch asked for and got (a final URL is only stored when it differs)."""
    return {
        "fetch_id": fetch["id"],
        "run_id": fetch["run_id"],
        "started_at": fetch["started_at"],
        "outcome": fetch["outcome"],
        "url": fetch["url"],
        "final_url": fetch["final_url"] or fetch["url"],
        "http_status": fetch["http_status"],
        "renderer": fetch["renderer"],
        "locale": fetch["locale"],
        "timezone": fetch["timezone"],
        "error_class": fetch["error_class"],
        "version_id": fetch["version_id"],
    }


def format_history(entry: dict[str, Any]) -> str:
    lines = [
        f"{entry['document']}  {entry['url']}",
        f"status {entry['status'] or 'never checked'}; last checked {entry['last_checked']}; "
        f"last changed {entry['last_changed'] or 'never'}; {entry['fetches']} fetches, "
        f"{entry['failed_fetches']} failed",
    ]
    last = entry.get("last_fetch")
    if last:
        got = f"HTTP {last['http_status']}" if last["http_status"] else "no response"
        moved = f" -> {last['final_url']}" if last["final_url"] != last["url"] else ""
        lines.append(
            f"last fetch {last['started_at']}: {last['outcome']}"
            f"{' (' + last['error_class'] + ')' if last['error_class'] else ''}, {got}; "
            f"{last['url']}{moved} with {last['renderer']}, {last['locale']}, {last['timezone']}"
        )
    lines += ["", "versions:"]
    for v in entry["versions"]:
        current = "  (current)" if v["version_id"] == entry["current_version_id"] else ""
        lines.append(
            f"  v{v['version_id']}  first seen {v['first_seen']}  last seen {v['last_seen']}  "
            f"{v['chars']:,} chars  {v['snapshot']}{current}"
        )
    lines.append("changes:")
    if not entry["changes"]:
        lines.append("  none (the first version is the baseline)")
    for c in entry["changes"]:
        lines.append(
            f"  #{c['change_id']}  {c['detected_at']}  {c['kind']:<6}  "
            f"v{c['from_version_id']} -> v{c['to_version_id']}"
        )
    return "\n".join(lines)
