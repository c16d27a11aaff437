"""Stage 4: keep every version, fetch and change — SQLite (`monitor.db`) plus snapshot files.

The database is the index; `snapshots/<platform>/<document>/<UTC timestamp>.md` and `.html.gz` are
the record itself, written atomically and never overwritten, so a records officer can read them
without this tool. Rows are only ever added or have their "last seen" moved forward: normal
operation deletes and rewrites nothing a user recorded.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.imports import hidden

# sqlite-utils imports numpy and pandas when they are installed, only to name their types'
# columns, which the store never needs (its tables declare Python types and it never stores a
# numpy value). numpy is installed for the flagger, which a quiet night never loads; importing it
# cost every run ~0.14 s of CPU at its start (0.21 s -> 0.07 s for sqlite-utils, measured), while
# Chromium's driver and browser start on the same two cores. Where numpy is already imported
# (the flagger ran first, a user's program), sqlite-utils gets it as before.
with hidden("numpy", "pandas"):
    import sqlite_utils

# 2: fetch rows refer to a `fetch_targets` row instead of repeating the document, URL, renderer,
# locale and time zone, and the visible-text fingerprint moved to the document's row.
# 3: the site audit's tables (`site_audits` and the cookies, storage keys, third-party hosts and
# changes each audit found); added to an existing database without touching its rows.
# 4: `version_sightings`: when each version was last seen moves in a row of its own, so an
# unchanged night writes a few bytes instead of rewriting the version's row (its whole text,
# ~70 KB on a policy page). `versions.last_seen` keeps what it held (the version's last sighting
# before schema 4, its first one after); a version's last seen is the later of the two.
SCHEMA_VERSION = 4

TABLES: dict[str, dict[str, Any]] = {
    "runs": {
        "columns": {
            "id": int, "started_at": str, "finished_at": str, "status": str, "pid": int,
            "documents": int, "unchanged": int, "changed": int, "failed": int, "only": str,
            "stats": str, "first_fetch_id": int,
        },
        "pk": "id",
    },
    "documents": {
        "columns": {
            "key": str, "platform": str, "document": str, "platform_name": str, "name": str,
            "url": str, "render": str, "first_checked": str, "last_checked": str,
            "last_changed": str, "current_version_id": int, "status": str,
            "failing_since": str, "consecutive_failures": int, "last_error_class": str,
            "last_error": str, "proposed_selector": str, "fingerprint": str,
            "fingerprint_version_id": int,
        },
        "pk": "key",
    },
    "versions": {
        "columns": {
            "id": int, "document_key": str, "sha256": str, "compare_sha256": str, "text": str,
            "chars": int, "first_seen": str, "last_seen": str, "run_id": int,
            "snapshot_path": str, "snapshot_sha256": str, "raw_path": str, "raw_sha256": str,
            "raw_pruned_at": str,
        },
        "pk": "id",
    },
    # The night a version was last seen (see schema 4); one row per version seen since.
    "version_sightings": {
        "columns": {"version_id": int, "last_seen": str, "run_id": int},
        "pk": "version_id",
    },
    "changes": {
        "columns": {
            "id": int, "document_key": str, "run_id": int, "detected_at": str,
            "from_version_id": int, "to_version_id": int, "kind": str, "summary": str,
            "diff": str, "flags": str, "suspect": int, "quiet": int, "note": str,
        },
        "pk": "id",
    },
    "reviews": {
        "columns": {
            "id": int, "change_id": int, "decision": str, "reviewer": str, "note": str,
            "decided_at": str, "via": str,
        },
        "pk": "id",
    },
    "prunes": {
        "columns": {
            "id": int, "pruned_at": str, "version_id": int, "raw_path": str, "raw_sha256": str,
            "bytes": int, "reason": str,
        },
        "pk": "id",
    },
    # One row per fetch, every night for every document: kept small (see `Store.add_fetch`).
    # `document_key` to `timezone` and `fingerprint` are only filled in rows written before
    # schema 2; newer rows refer to `fetch_targets` and leave them NULL (one byte each).
    "fetches": {
        "columns": {
            "id": int, "run_id": int, "document_key": str, "started_at": str,
            "duration_ms": int, "url": str, "final_url": str, "http_status": int,
            "outcome": str, "error_class": str, "message": str, "renderer": str,
            "locale": str, "timezone": str, "attempts": int, "version_id": int,
            "change_id": int, "title": str, "relocated": str, "notes": str, "fingerprint": str,
            "target_id": int,
        },
        "pk": "id",
    },
    # What a fetch aimed at, written once and shared by every fetch with the same aim.
    "fetch_targets": {
        "columns": {
            "id": int, "document_key": str, "url": str, "renderer": str, "locale": str,
            "timezone": str,
        },
        "pk": "id",
    },
    # Notifications (monitor/notify.py): what each recipient must hear about, every message
    # composed with its delivery status, and which channel has delivered which item.
    "notify_items": {
        "columns": {
            "id": int, "recipient": str, "kind": str, "ref": str, "change_id": int,
            "document_key": str, "run_id": int, "created_at": str, "details": str,
        },
        "pk": "id",
    },
    "notify_messages": {
        "columns": {
            "id": int, "run_id": int, "created_at": str, "recipient": str, "channel": str,
            "service": str, "kind": str, "subject": str, "format": str, "change_ids": str,
            "item_ids": str, "attachments": int, "chars": int, "truncated": int,
            "attempts": int, "status": str, "last_error": str, "last_attempt_at": str,
            "sent_at": str,
        },
        "pk": "id",
    },
    "notify_deliveries": {
        "columns": {
            "item_id": int, "channel": str, "recipient": str, "message_id": int,
            "delivered_at": str,
        },
        "pk": ("item_id", "channel"),  # the key is the promise: one delivery per channel
    },
    "notify_channels": {
        "columns": {
            "recipient": str, "channel": str, "service": str, "since_item": int,
            "first_seen": str, "last_seen": str,
        },
        "pk": ("recipient", "channel"),
    },
    # The site audit (monitor/audit.py): one row per agency page per night, ok or failed, with
    # what the browser held after the page settled. Names and attributes only: cookie and
    # storage values are never read into a row. Nothing here is updated after it is written;
    # when a cookie appeared and disappeared is read from the audits in order.
    "site_audits": {
        "columns": {
            "id": int, "run_id": int, "page": str, "started_at": str, "duration_ms": int,
            "final_url": str, "http_status": int, "status": str, "error_class": str,
            "message": str, "attempts": int, "cookies": int, "persistent": int,
            "third_parties": int,
        },
        "pk": "id",
    },
    "site_cookies": {
        "columns": {
            "id": int, "audit_id": int, "name": str, "domain": str, "path": str, "party": str,
            "persistent": int, "expires": float, "lifetime_days": float, "secure": int,
            "http_only": int, "same_site": str, "set_by": str, "set_by_host": str,
        },
        "pk": "id",
    },
    "site_storage": {
        "columns": {"id": int, "audit_id": int, "area": str, "origin": str, "key": str},
        "pk": "id",
    },
    "site_hosts": {
        "columns": {"id": int, "audit_id": int, "host": str, "types": str, "requests": int},
        "pk": "id",
    },
    # What an audit found different from the page's previous successful one (`quiet`: the same
    # change was already recorded lately, e.g. a sampled script that comes and goes).
    "site_changes": {
        "columns": {
            "id": int, "run_id": int, "audit_id": int, "page": str, "kind": str, "name": str,
            "detected_at": str, "details": str, "quiet": int,
        },
        "pk": "id",
    },
}  # fmt: skip

INDEXES = [
    ("versions", ["document_key", "compare_sha256"]),
    ("changes", ["document_key"]),
    ("reviews", ["change_id"]),
    ("notify_items", ["recipient", "id"]),
    ("notify_messages", ["recipient", "channel", "id"]),
    ("site_audits", ["page", "id"]),
    ("site_audits", ["run_id"]),
    ("site_cookies", ["audit_id"]),
    ("site_storage", ["audit_id"]),
    ("site_hosts", ["audit_id"]),
    ("site_changes", ["run_id"]),
    ("site_changes", ["page", "kind", "name"]),
]
# An item is queued once per recipient, however often the run that found it is repeated.
UNIQUE_INDEXES = [
    ("notify_items", ["recipient", "ref"]),
    ("fetch_targets", ["document_key", "url", "renderer", "locale", "timezone"]),
]
# An index entry is paid by every fetch row, so `fetches` has only what reading a document's
# fetches needs, and only over the rows that have the column: new rows by target, older rows by
# document. A run's fetches are found by id from `runs.first_fetch_id` (ids only grow, and one
# run at a time writes), nothing reads fetches by version.
PARTIAL_INDEXES = [
    ("idx_fetches_target_id", "fetches", "target_id", "target_id is not null"),
    ("idx_fetches_old_document_key", "fetches", "document_key", "document_key is not null"),
]
# Indexes of earlier schemas: dropped, which deletes no record (only the lookup structure).
RETIRED_INDEXES = [
    "idx_fetches_document_key_started_at",
    "idx_fetches_document_key",
    "idx_fetches_run_id",
    "idx_fetches_version_id",
]
TARGET_COLUMNS = ("document_key", "url", "renderer", "locale", "timezone")
# Every fetch as one row, old and new alike (for readers, and for anyone opening the database
# with sqlite3 or Datasette): a row's own values where it has them, else its target's.
FETCH_RECORDS_VIEW = "fetch_records"
FETCH_RECORDS_SQL = (
    "select "
    + ", ".join(
        f"coalesce(f.{c}, t.{c}) as {c}" if c in TARGET_COLUMNS else f"f.{c}"
        for c in TABLES["fetches"]["columns"]
    )
    + " from fetches f left join fetch_targets t on t.id = f.target_id"
)


# A version's last sighting, whichever row holds it (SQLite's max() of NULL is NULL).
LAST_SEEN_SQL = "max(v.last_seen, coalesce(s.last_seen, v.last_seen))"
SIGHTINGS_JOIN = "left join version_sightings s on s.version_id = v.id"


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_new_file(directory: Path, stem: str, suffix: str, data: bytes) -> Path:
    """Write atomically under a name that did not exist: temp file, fsync, then a hard link.

    A link fails when the name is taken, so two runs in the same second never overwrite each
    other, and a crash leaves either no file or the whole file, never half of one. A taken name
    gets `_001`, `_002`, ...: `_` sorts after the `.` of the suffix and the number is padded,
    so a folder listed by name lists the files in the order they were written (a `-1` would
    sort before the first one).
    """
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        for n in range(1000):
            target = directory / (f"{stem}{suffix}" if n == 0 else f"{stem}_{n:03d}{suffix}")
            try:
                os.link(tmp, target)
                return target
            except FileExistsError:
                continue
        raise FileExistsError(f"no free name for {stem}{suffix} in {directory}")
    finally:
        os.unlink(tmp)


@dataclass(frozen=True)
class Version:
    id: int
    document_key: str
    sha256: str
    compare_sha256: str
    text: str
    first_seen: str
    last_seen: str
    snapshot_path: str
    raw_path: str


class Store:
    """The home folder's records: `monitor.db` and `snapshots/`."""

    def __init__(self, home: str | os.PathLike[str]):
        self.home = Path(home)
        self.snapshots = self.home / "snapshots"
        self.db = sqlite_utils.Database(self.home / "monitor.db")
        # WAL lets the report and the server read while the nightly run writes.
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA busy_timeout=10000")
        self.db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        with self.transaction():
            for name, spec in TABLES.items():
                table = self.db.table(name)
                if not table.exists():
                    table.create(spec["columns"], pk=spec["pk"])
                    continue
                # Newer versions add columns; existing rows keep their values untouched.
                have = table.columns_dict
                for column, kind in spec["columns"].items():
                    if column not in have:
                        table.add_column(column, kind)
            for table_name, columns in INDEXES:
                self.db.table(table_name).create_index(columns, if_not_exists=True)
            for table_name, columns in UNIQUE_INDEXES:
                self.db.table(table_name).create_index(columns, unique=True, if_not_exists=True)
            for index_name in RETIRED_INDEXES:
                self.db.execute(f"drop index if exists {index_name}")
            for index_name, table_name, column, where in PARTIAL_INDEXES:
                self.db.execute(
                    f"create index if not exists {index_name} on {table_name} ({column}) "
                    f"where {where}"
                )
            view = self.db.execute(
                "select sql from sqlite_master where type = 'view' and name = ?",
                [FETCH_RECORDS_VIEW],
            ).fetchone()
            expected = f"CREATE VIEW {FETCH_RECORDS_VIEW} AS {FETCH_RECORDS_SQL}"
            if view is None or view[0] != expected:
                self.db.execute(f"drop view if exists {FETCH_RECORDS_VIEW}")
                self.db.execute(expected)
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        if not self.db.table("versions").detect_fts():
            # No triggers: versions are indexed once when added. sqlite-utils' update trigger
            # would re-index a whole policy every night its "last seen" time moves.
            self.db.table("versions").enable_fts(["text"], tokenize="porter")

    def close(self) -> None:
        # Fold the write-ahead log back into the database so an idle home folder stays small.
        with contextlib.suppress(sqlite3.OperationalError):
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.close()

    def insert_row(self, table: str, row: dict[str, Any]) -> int:
        # One plain statement: sqlite-utils' insert reads the table's schema on every call,
        # which cost more than the insert itself on the nightly path (a fetch row per document).
        if table not in TABLES or any(isinstance(v, dict | list | tuple) for v in row.values()):
            inserted = self.db.table(table).insert(row)  # it encodes such values as JSON
            assert inserted.last_rowid is not None
            return int(inserted.last_rowid)
        columns = ", ".join(f"[{column}]" for column in row)
        marks = ", ".join("?" for _ in row)
        cursor = self.db.execute(
            f"insert into [{table}] ({columns}) values ({marks})", list(row.values())
        )
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: the writes inside commit together or not at all (a savepoint when
        nested). It takes the write lock at once, so a reader-turned-writer never finds its
        snapshot overtaken by another writer (`tos-monitor serve` recording a review)."""
        if self.db.conn.in_transaction:
            with self.db.atomic():
                yield
            return
        self.db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.db.conn.execute("COMMIT")
        except BaseException:
            self.db.rollback()
            raise

    @contextmanager
    def synced_once(self) -> Iterator[None]:
        """Commits inside are durable together, not one by one: each is written to the log as
        always (a crashed process loses none of them), but the log is flushed to the disk only by
        the first commit after the block (or the store's close, whose checkpoint flushes it).

        For the nightly run's document phase: a fetch and a sighting per document, each its own
        commit so that `serve` can record a review between them. Flushed one by one, those were
        ~40 disk syncs on the run's event loop a 40-document night, each 0.2 ms on an idle disk
        and 1-2 ms beside a busy Chromium, and every tab's next step waited behind them.
        What this gives up: after a power loss or an operating-system crash (not a crash of the
        process), the run's last documents may be missing from the records, as if the run had
        stopped there; the database stays whole (write-ahead log), and a snapshot file is always
        synced before its row is written, so a lost row leaves an unreferenced file, never a row
        without its file. The next night fetches those documents again. No alert tells of an
        unsynced record: alerts are queued after the block, in a commit that flushes the log,
        before they are sent."""
        [(previous,)] = self.db.execute("PRAGMA synchronous").fetchall()
        if previous <= 1:  # already NORMAL or OFF (set by whoever opened the store): leave it
            yield
            return
        self.db.execute("PRAGMA synchronous=NORMAL")
        try:
            yield
        finally:
            # SQLite refuses the change inside a transaction; every writer here closes its own
            # (`transaction`), and if one did not, the close's checkpoint still flushes the log.
            if not self.db.conn.in_transaction:
                self.db.execute(f"PRAGMA synchronous={int(previous)}")

    def recover(self, finished_at: str) -> int:
        """After a crash: mark runs that never finished, and remove half-written temporary files
        (never a snapshot: those only appear under their final name once complete). Call only
        while holding the run lock."""
        for partial in self.snapshots.rglob(".tmp-*"):
            partial.unlink(missing_ok=True)
        with self.transaction():
            cursor = self.db.execute(
                "update runs set status = 'interrupted', finished_at = ? where status = 'running'",
                [finished_at],
            )
            # A message recorded as being sent when the run died: its items have no delivery,
            # so the next run sends them again; the row says this attempt never finished.
            self.db.execute(
                "update notify_messages set status = 'interrupted', last_attempt_at = ? "
                "where status = 'sending'",
                [finished_at],
            )
        return cursor.rowcount

    def unreported_runs(self, run_id: int) -> list[int]:
        """`run_id` and the interrupted runs since the last run that finished before it: runs
        whose records may not be in the report or the alerts yet (a run's report and alerts
        come after its records, and only a run that finished did both)."""
        rows = self.db.execute(
            "select id from runs where id = :run or (status = 'interrupted' and id < :run and "
            "id > coalesce((select max(id) from runs where id < :run and status not in "
            "('running', 'interrupted')), 0)) order by id",
            {"run": run_id},
        ).fetchall()
        return [int(row[0]) for row in rows]

    # runs -----------------------------------------------------------------------------------
    def start_run(self, started_at: str, only: str | None) -> int:
        with self.transaction():
            # Fetch ids only grow and one run at a time records fetches (the run lock): the
            # run's fetches are those from this id on that carry its run id.
            [(first_fetch_id,)] = self.db.execute(
                "select coalesce(max(id), 0) + 1 from fetches"
            ).fetchall()
            return self.insert_row(
                "runs",
                {"started_at": started_at, "status": "running", "pid": os.getpid(), "only": only,
                 "first_fetch_id": first_fetch_id},
            )  # fmt: skip

    def finish_run(
        self, run_id: int, finished_at: str, counts: dict[str, int], stats: dict
    ) -> None:
        status = "failed-documents" if counts.get("failed") else "ok"
        with self.transaction():
            self.db.table("runs").update(
                run_id,
                {
                    "finished_at": finished_at,
                    "status": status,
                    "stats": json.dumps(stats),
                    **counts,
                },
            )

    # documents ------------------------------------------------------------------------------
    def document(self, key: str) -> dict[str, Any] | None:
        return next(self.db.query("select * from documents where key = ?", [key]), None)

    def documents(self) -> list[dict[str, Any]]:
        return list(self.db.table("documents").rows_where(order_by="key"))

    def upsert_document(self, row: dict[str, Any]) -> None:
        """Insert the document's row, or set these columns of it (the others keep theirs)."""
        columns = list(row)
        updates = ", ".join(f"[{c}] = excluded.[{c}]" for c in columns if c != "key")
        self.db.execute(
            f"insert into documents ({', '.join(f'[{c}]' for c in columns)}) values "
            f"({', '.join('?' for _ in columns)}) on conflict(key) do "
            + (f"update set {updates}" if updates else "nothing"),
            list(row.values()),
        )

    # versions -------------------------------------------------------------------------------
    def _versions_where(self, where: str, params: list[Any], limit: str = "") -> list[Version]:
        rows = self.db.query(
            f"select v.*, {LAST_SEEN_SQL} as seen from versions v {SIGHTINGS_JOIN} "
            f"where {where} order by v.id{limit}",
            params,
        )
        return [_version({**row, "last_seen": row["seen"]}) for row in rows]

    def version(self, version_id: int) -> Version | None:
        found = self._versions_where("v.id = ?", [version_id])
        return found[0] if found else None

    def find_version(self, document_key: str, compare_sha256: str) -> Version | None:
        found = self._versions_where(
            "v.document_key = ? and v.compare_sha256 = ?", [document_key, compare_sha256],
            " limit 1",
        )  # fmt: skip
        return found[0] if found else None

    def versions(self, document_key: str) -> list[Version]:
        return self._versions_where("v.document_key = ?", [document_key])

    def write_snapshot(
        self, platform: str, document: str, stamp: str, text: str, raw: str | bytes | None
    ) -> dict[str, str]:
        """Files first, rows after: a crash between leaves an unreferenced file, never a row
        pointing at a missing one."""
        folder = self.snapshots / platform / document
        text_bytes = text.encode("utf-8")
        text_path = write_new_file(folder, stamp, ".md", text_bytes)
        files = {
            "snapshot_path": str(text_path.relative_to(self.home)),
            "snapshot_sha256": sha256_bytes(text_bytes),
            "raw_path": "",
            "raw_sha256": "",
        }
        if raw is not None:
            # A str is the page's HTML; bytes are a document served as such (a PDF policy).
            data, suffix = (raw.encode("utf-8"), ".html.gz") if isinstance(raw, str) \
                else (raw, ".pdf.gz")  # fmt: skip
            raw_bytes = gzip.compress(data, compresslevel=6, mtime=0)
            raw_path = write_new_file(folder, text_path.stem, suffix, raw_bytes)
            files["raw_path"] = str(raw_path.relative_to(self.home))
            files["raw_sha256"] = sha256_bytes(raw_bytes)
        return files

    def add_version(self, row: dict[str, Any]) -> int:
        version_id = self.insert_row("versions", row)
        self.db.execute(
            "insert into versions_fts (rowid, text) values (?, ?)", [version_id, row["text"]]
        )
        return version_id

    def touch_version(self, version_id: int, seen_at: str, run_id: int | None = None) -> None:
        """The version was seen again: a small row moves; the version's own row is untouched."""
        self.db.execute(
            "insert into version_sightings (version_id, last_seen, run_id) values (?, ?, ?) "
            "on conflict(version_id) do update set last_seen = excluded.last_seen, "
            "run_id = excluded.run_id",
            [version_id, seen_at, run_id],
        )

    # changes and fetches -------------------------------------------------------------------
    def add_change(self, row: dict[str, Any]) -> int:
        return self.insert_row("changes", row)

    def changes(self, document_key: str | None = None) -> list[dict[str, Any]]:
        if document_key is None:
            return list(self.db.table("changes").rows_where(order_by="id"))
        return list(
            self.db.table("changes").rows_where("document_key = ?", [document_key], order_by="id")
        )

    def add_fetch(self, row: dict[str, Any]) -> int:
        """Record one fetch, given as a whole (document_key, url, renderer, locale, timezone,
        fingerprint and the fetch's own columns). Every document has one every night, so the row
        repeats nothing: what the fetch aimed at (document, URL, renderer, locale, time zone) is
        a `fetch_targets` row it refers to, its start time is kept to the second, an empty
        message is NULL, and the visible-text fingerprint, a cache key only the next fetch needs,
        goes on the document's row with the version it was read as (one statement: the pair is
        never torn). Call inside `transaction()`, so the fetch and that pair commit together."""
        row = dict(row)
        target = {column: row.pop(column, None) for column in TARGET_COLUMNS}
        fingerprint = row.pop("fingerprint", None)
        row["target_id"] = self._target_id(target)
        if row.get("started_at"):
            row["started_at"] = whole_second(row["started_at"])
        if row.get("message") == "":
            row["message"] = None
        fetch_id = self.insert_row("fetches", row)
        self.db.execute(
            "update documents set fingerprint = ?, fingerprint_version_id = ? where key = ?",
            [fingerprint, row.get("version_id"), target["document_key"]],
        )
        return fetch_id

    def _target_id(self, target: dict[str, Any]) -> int:
        values = [target[column] for column in TARGET_COLUMNS]
        # `is`, not `=`: a column may be NULL (the unique index lets NULLs repeat).
        found = self.db.execute(
            "select id from fetch_targets where "
            + " and ".join(f"{column} is ?" for column in TARGET_COLUMNS),
            values,
        ).fetchone()
        return int(found[0]) if found else self.insert_row("fetch_targets", target)

    def known_fingerprint(self, document_key: str, current_version_id: int | None) -> str | None:
        """The visible-text fingerprint of the document's last fetch, if that fetch read the
        current version: then an equal fingerprint tonight means the same text."""
        if current_version_id is None:
            return None
        row = self.db.execute(
            "select fingerprint, fingerprint_version_id from documents where key = ?",
            [document_key],
        ).fetchone()
        if row is not None and row[0] is not None:
            fingerprint, version_id = row
        else:
            # Never written since schema 2, or the last fetch had no page: the last fetch row
            # tells (rows before schema 2 hold it; later rows hold none).
            last = self.last_fetch(document_key)
            if last is None:
                return None
            fingerprint, version_id = last["fingerprint"], last["version_id"]
        return str(fingerprint) if fingerprint and version_id == current_version_id else None

    def fetches(self, document_key: str) -> list[dict[str, Any]]:
        """A document's fetches, oldest first, each whole (see `fetch_records`)."""
        return list(
            self.db.query(
                f"select * from {FETCH_RECORDS_VIEW} where id in ("
                "select id from fetches where target_id in "
                "(select id from fetch_targets where document_key = :key) "
                "union all select id from fetches where document_key = :key) order by id",
                {"key": document_key},
            )
        )

    def last_fetch(self, document_key: str, before_run: int | None = None) -> dict[str, Any] | None:
        """A document's latest fetch, or its latest in a run before `before_run`. One index
        lookup per target of the document (usually one), whatever the number of fetches."""
        earlier = "" if before_run is None else " and run_id < :run"
        row = self.db.execute(
            "select max(id) from ("
            f"select (select id from fetches where target_id = t.id{earlier} "
            "order by id desc limit 1) as id from fetch_targets t where t.document_key = :key "
            f"union all select (select id from fetches where document_key = :key{earlier} "
            "order by id desc limit 1))",
            {"key": document_key, "run": before_run},
        ).fetchone()
        if row is None or row[0] is None:
            return None
        return next(self.db.query(f"select * from {FETCH_RECORDS_VIEW} where id = ?", [row[0]]))

    # the site audit ---------------------------------------------------------------------------
    def add_site_audit(
        self,
        audit: dict[str, Any],
        cookies: list[dict[str, Any]],
        storage: list[dict[str, Any]],
        hosts: list[dict[str, Any]],
    ) -> int:
        """Record one page's audit whole; call inside `transaction()`."""
        audit_id = self.insert_row("site_audits", audit)
        for table, rows in (("site_cookies", cookies), ("site_storage", storage),
                            ("site_hosts", hosts)):  # fmt: skip
            if rows:
                self.db.table(table).insert_all([{**row, "audit_id": audit_id} for row in rows])
        return audit_id

    def site_audits(self, page: str, ok_only: bool = False) -> list[dict[str, Any]]:
        """A page's audits, oldest first (only the successful ones with `ok_only`)."""
        where = "page = ? and status = 'ok'" if ok_only else "page = ?"
        return list(self.db.table("site_audits").rows_where(where, [page], order_by="id"))

    def last_site_audit(self, page: str, before_id: int | None = None) -> dict[str, Any] | None:
        """The page's latest successful audit (before audit `before_id`)."""
        rows = list(
            self.db.table("site_audits").rows_where(
                "page = ? and status = 'ok' and id < ?",
                [page, before_id if before_id is not None else 2**62],
                order_by="id desc",
                limit=1,
            )
        )
        return rows[0] if rows else None

    def site_rows(self, table: str, audit_ids: list[int]) -> list[dict[str, Any]]:
        """Rows of `site_cookies`, `site_storage` or `site_hosts` of these audits, in order."""
        if table not in ("site_cookies", "site_storage", "site_hosts") or not audit_ids:
            return []
        marks = ", ".join("?" for _ in audit_ids)
        return list(
            self.db.table(table).rows_where(f"audit_id in ({marks})", audit_ids, order_by="id")
        )

    def run_fetches(self, run_id: int) -> list[dict[str, Any]]:
        """A run's fetches, each whole, read from the run's first fetch id on (a run recorded
        before schema 2 has none: then the whole table is read)."""
        return list(
            self.db.query(
                f"select * from {FETCH_RECORDS_VIEW} where id >= coalesce("
                "(select first_fetch_id from runs where id = :run), 0) and run_id = :run "
                "order by id",
                {"run": run_id},
            )
        )


def whole_second(timestamp: str) -> str:
    """`2026-11-24T03:00:01.123456Z` -> `2026-11-24T03:00:01Z`: the same order, 7 bytes less."""
    if len(timestamp) > 20 and timestamp[19] == "." and timestamp.endswith("Z"):
        return timestamp[:19] + "Z"
    return timestamp


def _version(row: dict[str, Any]) -> Version:
    return Version(
        id=row["id"],
        document_key=row["document_key"],
        sha256=row["sha256"],
        compare_sha256=row["compare_sha256"],
        text=row["text"],
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        snapshot_path=row["snapshot_path"] or "",
        raw_path=row["raw_path"] or "",
    )
