"""What the records cost on disk, and that a database written by an earlier version opens, keeps
its rows and keeps working. Real SQLite files, a real local server and the nightly run's own
per-document code (`monitor.check.check_document`, with the real fetch pool: Chromium for `browser`
documents, plain HTTP for the many-document size check)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from monitor.changes import comparison_sha
from monitor.check import check_document, register_document
from monitor.extract import extract_reduced
from monitor.fetch import BrowserFetcher, FetchPool, now_utc
from monitor.run import DocumentOutcome
from monitor.store import SCHEMA_VERSION, Store, sha256_text
from monitor.watchlist import Document, Platform, Settings, Watchlist
from tests.conftest import make_watchlist, run_cli
from tests.sites import PageServer, Route, policy_page

TEXT = (
    "# Terms of Service\n\n"
    + "\n\n".join(
        f"Clause {n}: these terms govern your use of the service; disputes go to the courts of "
        "the State of California."
        for n in range(4)
    )
    + "\n"
)
# A path as long as a real platform's (https://www.facebook.com/legal/terms/plain_text_terms).
TERMS = "/legal/terms/plain_text_terms"
MOVED = "/legal/terms.php"


@pytest.fixture
def facebook(server: PageServer) -> Iterator[Document]:
    """The Facebook Terms of Service as the shipped watchlist names them, served locally with
    fresh page noise around the same policy every night."""
    server.routes[TERMS] = server.routes[MOVED] = _page_route(TEXT)
    yield Document("facebook", "terms-of-service", "Terms of Service", server.url(TERMS))


def _page_route(text: str) -> Route:
    return Route(lambda: policy_page(text).encode())


def serve_text(server: PageServer, text: str) -> None:
    server.routes[TERMS] = _page_route(text)


def documents(facebook: Document, count: int) -> list[Document]:
    """Real-sized keys and URLs, e.g. `facebook-12/terms-of-service`, fetched by plain HTTP."""
    return [
        replace(facebook, platform=f"facebook-{n}", url=f"{facebook.url}?copy={n}", render="http")
        for n in range(count)
    ]


def watchlist_of(docs: list[Document]) -> Watchlist:
    platforms = {d.platform: Platform(d.platform, d.platform.title(), ("web",), (d,)) for d in docs}
    return Watchlist(Path("watchlist.yaml"), platforms=platforms)


def night(home: Path, docs: list[Document]) -> list[DocumentOutcome]:
    """One run's per-document work, fetched and recorded as `monitor.run` does it."""
    store = Store(home)
    store.db.execute("PRAGMA synchronous=OFF")  # speed only
    watchlist = watchlist_of(docs)
    run_id = store.start_run(now_utc(), None)
    for document in docs:
        register_document(store, watchlist, document)

    async def each() -> list[DocumentOutcome]:
        pool = FetchPool(Settings())
        try:
            return [await check_document(store, pool, run_id, d, {}) for d in docs]
        finally:
            await pool.close()

    outcomes = asyncio.run(each())
    store.finish_run(run_id, now_utc(), {"documents": len(docs)}, {})
    store.close()
    return outcomes


def outcomes_of(outcomes: list[DocumentOutcome]) -> set[str]:
    return {o.recorded.outcome if o.recorded else "failed" for o in outcomes}


def db_bytes(home: Path) -> int:
    return (home / "monitor.db").stat().st_size


def test_an_unchanged_night_adds_under_100_bytes_per_document(
    tmp_path: Path, facebook: Document
) -> None:
    """Issue 7: 1,000 documents over a year of unchanged nights stay under 50 MB, i.e. under
    137 bytes per document and night, index entries included."""
    docs = documents(facebook, 300)
    assert outcomes_of(night(tmp_path, docs)) == {"baseline"}
    before = db_bytes(tmp_path)
    nights = 6
    for _ in range(nights):
        assert outcomes_of(night(tmp_path, docs)) == {"unchanged"}
    per_night = (db_bytes(tmp_path) - before) / (len(docs) * nights)
    assert per_night < 100, f"{per_night:.0f} bytes per document and night"

    with sqlite3.connect(tmp_path / "monitor.db") as db:
        stored = dict(db.execute("select name, sum(pgsize) from dbstat group by name").fetchall())
        rows = db.execute("select count(*) from fetches").fetchone()[0]
    fetch_bytes = sum(size for name, size in stored.items() if "fetches" in name)
    assert fetch_bytes / rows < 100, "fetch rows and their index entries"


def test_fetches_read_whole_with_url_renderer_locale_and_time_zone(
    tmp_path: Path, facebook: Document, server: PageServer
) -> None:
    paris = replace(facebook, locale="fr-FR", timezone="Europe/Paris")
    night(tmp_path, [paris])
    night(tmp_path, [paris])
    moved = replace(paris, url=server.url(MOVED))
    night(tmp_path, [moved])  # the watchlist's URL was edited

    store = Store(tmp_path)
    fetches = store.fetches(paris.key)
    assert [f["outcome"] for f in fetches] == ["baseline", "unchanged", "unchanged"]
    assert [f["url"] for f in fetches] == [paris.url, paris.url, moved.url]
    for fetch in fetches:
        assert fetch["document_key"] == paris.key
        assert (fetch["renderer"], fetch["locale"], fetch["timezone"]) == (
            "browser", "fr-FR", "Europe/Paris",
        )  # fmt: skip
        assert fetch["http_status"] == 200 and fetch["version_id"] == fetches[0]["version_id"]
    last = store.last_fetch(paris.key)
    assert last is not None and last["id"] == fetches[-1]["id"] and last["url"] == moved.url
    assert store.run_fetches(fetches[1]["run_id"]) == [fetches[1]]
    # Anyone reading the database directly sees the same whole rows.
    with sqlite3.connect(tmp_path / "monitor.db") as db:
        direct = db.execute("select url, locale from fetch_records order by id").fetchall()
    assert direct == [(f["url"], "fr-FR") for f in fetches]
    store.close()


def test_history_shows_what_the_last_fetch_asked_for(tmp_path: Path, facebook: Document) -> None:
    make_watchlist(tmp_path, {"terms-of-service": {"url": facebook.url}}, platform="facebook")
    paris = replace(facebook, locale="fr-FR", timezone="Europe/Paris")
    night(tmp_path, [paris])
    night(tmp_path, [paris])

    shown = run_cli(tmp_path, "history", "facebook", "terms-of-service")
    assert shown.returncode == 0, shown.stderr
    assert "2 fetches, 0 failed" in shown.stdout
    assert f"unchanged, HTTP 200; {facebook.url} with browser, fr-FR, Europe/Paris" in shown.stdout
    as_json = run_cli(tmp_path, "history", "facebook", "terms-of-service", "--json")
    last = json.loads(as_json.stdout)["last_fetch"]
    assert (last["url"], last["final_url"], last["locale"], last["timezone"]) == (
        facebook.url, facebook.url, "fr-FR", "Europe/Paris",
    )  # fmt: skip


def test_snapshots_written_in_the_same_second_list_by_name_in_the_order_written(
    tmp_path: Path,
) -> None:
    # Two runs a second apart (a re-run after a fix, a fast night) share a stamp: none may
    # overwrite another, and the newest must be the last a user sees in the folder.
    store = Store(tmp_path)
    stamp = "2026-11-24T030001Z"
    for n in range(12):
        store.write_snapshot("example", "terms", stamp, f"version {n}", f"<p>version {n}</p>")
    folder = tmp_path / "snapshots" / "example" / "terms"
    texts = [p.read_text() for p in sorted(folder.glob("*.md"))]
    assert texts == [f"version {n}" for n in range(12)]
    raws = sorted(folder.glob("*.html.gz"))
    assert [p.name.removesuffix(".html.gz") for p in raws] == \
        [p.stem for p in sorted(folder.glob("*.md"))]  # fmt: skip
    store.close()


def test_a_transaction_commits_all_its_writes_or_none(tmp_path: Path) -> None:
    key = "facebook/terms-of-service"
    store = Store(tmp_path)
    with pytest.raises(RuntimeError), store.transaction():
        store.upsert_document({"key": key, "status": "ok"})
        with store.transaction():  # nested: a savepoint of the same transaction
            store.insert_row("runs", {"status": "running"})
        raise RuntimeError("killed")
    assert store.documents() == [] and store.db.table("runs").count == 0
    with store.transaction():
        store.upsert_document({"key": key, "status": "ok"})
    assert [d["key"] for d in store.documents()] == [key]
    store.close()


def _synchronous(store: Store) -> int:
    [(level,)] = store.db.execute("PRAGMA synchronous").fetchall()
    return int(level)


def test_commits_synced_once_are_committed_each_and_synced_again_after(tmp_path: Path) -> None:
    key = "facebook/terms-of-service"
    store = Store(tmp_path)
    assert _synchronous(store) == 2  # FULL: each commit flushed to the disk
    with store.synced_once():
        assert _synchronous(store) == 1  # NORMAL: written to the log, flushed by a later sync
        with store.transaction():
            store.upsert_document({"key": key, "status": "ok"})
        # Committed, not merely written: another connection (`tos-monitor serve`) reads it.
        other = sqlite3.connect(tmp_path / "monitor.db")
        assert other.execute("select key from documents").fetchall() == [(key,)]
        other.close()
    assert _synchronous(store) == 2
    with pytest.raises(RuntimeError), store.synced_once():
        raise RuntimeError("killed")
    assert _synchronous(store) == 2  # a run that fails still leaves every later commit synced
    store.db.execute("PRAGMA synchronous=OFF")  # the choice of whoever opened the store
    with store.synced_once():
        assert _synchronous(store) == 0
    assert _synchronous(store) == 0
    store.close()


def test_a_failed_transaction_leaves_neither_the_fetch_nor_its_fingerprint(
    tmp_path: Path, facebook: Document
) -> None:
    """A run killed while recording a fetch must never leave a fingerprint paired with a
    version it was not read as: the fetch row and the pair commit together or not at all."""
    night(tmp_path, [facebook])
    store = Store(tmp_path)
    document = store.document(facebook.key) or {}
    version_id = document["current_version_id"]
    known = store.known_fingerprint(facebook.key, version_id)
    assert known is not None
    with pytest.raises(RuntimeError), store.transaction():
        store.add_fetch({"run_id": 99, "document_key": facebook.key, "url": facebook.url,
                         "outcome": "unchanged", "fingerprint": "0" * 32,
                         "version_id": version_id})  # fmt: skip
        raise RuntimeError("killed")
    assert len(store.fetches(facebook.key)) == 1
    assert store.known_fingerprint(facebook.key, version_id) == known
    store.close()


# --- a database written before fetch targets (schema 1) ----------------------------------------

SCHEMA_1: dict[str, dict[str, Any]] = {
    "runs": {
        "id": int, "started_at": str, "finished_at": str, "status": str, "pid": int,
        "documents": int, "unchanged": int, "changed": int, "failed": int, "only": str,
        "stats": str,
    },
    "documents": {
        "key": str, "platform": str, "document": str, "platform_name": str, "name": str,
        "url": str, "render": str, "first_checked": str, "last_checked": str,
        "last_changed": str, "current_version_id": int, "status": str, "failing_since": str,
        "consecutive_failures": int, "last_error_class": str, "last_error": str,
        "proposed_selector": str,
    },
    "versions": {
        "id": int, "document_key": str, "sha256": str, "compare_sha256": str, "text": str,
        "chars": int, "first_seen": str, "last_seen": str, "run_id": int, "snapshot_path": str,
        "snapshot_sha256": str, "raw_path": str, "raw_sha256": str, "raw_pruned_at": str,
    },
    "fetches": {
        "id": int, "run_id": int, "document_key": str, "started_at": str, "duration_ms": int,
        "url": str, "final_url": str, "http_status": int, "outcome": str, "error_class": str,
        "message": str, "renderer": str, "locale": str, "timezone": str, "attempts": int,
        "version_id": int, "change_id": int, "title": str, "relocated": str, "notes": str,
        "fingerprint": str,
    },
}  # fmt: skip
PKS = {"runs": "id", "documents": "key", "versions": "id", "fetches": "id"}


def as_fetched(document: Document) -> tuple[str, str]:
    """The fingerprint of the page's <main> and the page's text, as Chromium and the extractor
    take them from the served page."""

    async def fetch() -> Any:
        fetcher = BrowserFetcher(Settings())
        try:
            return await fetcher.fetch(document)
        finally:
            await fetcher.close()

    page = asyncio.run(fetch())
    return page.fingerprint, extract_reduced(page.region, page.reduced)


def old_database(home: Path, document: Document) -> str:
    """A home folder as schema 1 left it: a baseline and an unchanged night of `document`, each
    fetch row carrying its URL, renderer, locale, time zone and fingerprint. Returns that
    fingerprint, taken from the served page as the tool takes it."""
    db = sqlite_utils.Database(home / "monitor.db")
    for name, columns in SCHEMA_1.items():
        db.table(name).create(columns, pk=PKS[name])
    for index_columns in (["document_key"], ["run_id"], ["version_id"]):
        db.table("fetches").create_index(index_columns)
    fingerprint, text = as_fetched(document)
    stamps = ["2026-03-01T03:00:01.123456Z", "2026-03-02T03:00:02.654321Z"]
    db.table("documents").insert({
        "key": document.key, "platform": document.platform, "document": document.id,
        "platform_name": "Facebook", "name": document.name, "url": document.url,
        "render": "browser", "first_checked": stamps[0], "last_checked": stamps[1],
        "current_version_id": 1, "status": "ok", "consecutive_failures": 0,
    })  # fmt: skip
    db.table("versions").insert({
        "id": 1, "document_key": document.key, "sha256": sha256_text(text),
        "compare_sha256": comparison_sha(text, document), "text": text, "chars": len(text),
        "first_seen": stamps[0], "last_seen": stamps[1], "run_id": 1,
    })  # fmt: skip
    for run_id, stamp, outcome in zip((1, 2), stamps, ("baseline", "unchanged"), strict=True):
        db.table("runs").insert({"id": run_id, "started_at": stamp, "finished_at": stamp,
                                 "status": "ok", "documents": 1})  # fmt: skip
        db.table("fetches").insert({
            "run_id": run_id, "document_key": document.key, "started_at": stamp,
            "duration_ms": 2345, "url": document.url, "final_url": document.url,
            "http_status": 200, "outcome": outcome, "message": "", "renderer": "browser",
            "locale": "en-US", "timezone": "America/Chicago", "attempts": 1, "version_id": 1,
            "title": "Terms" if outcome == "baseline" else None, "fingerprint": fingerprint,
        })  # fmt: skip
    db.execute("PRAGMA user_version=1")
    db.close()
    return fingerprint


def fetch_rows(home: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(home / "monitor.db") as db:
        columns = ", ".join(SCHEMA_1["fetches"])
        return db.execute(f"select {columns} from fetches order by id").fetchall()


def test_an_old_database_opens_migrates_and_keeps_every_row_as_it_was(
    tmp_path: Path, facebook: Document
) -> None:
    fingerprint = old_database(tmp_path, facebook)
    before = fetch_rows(tmp_path)

    store = Store(tmp_path)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    fetches = store.fetches(facebook.key)
    assert [f["outcome"] for f in fetches] == ["baseline", "unchanged"]
    assert all(f["url"] == facebook.url and f["locale"] == "en-US" for f in fetches)
    assert store.known_fingerprint(facebook.key, 1) == fingerprint
    assert store.known_fingerprint(facebook.key, 2) is None, "only for the version it read"
    store.close()
    Store(tmp_path).close()  # opening again changes nothing either
    assert fetch_rows(tmp_path) == before


def test_the_first_night_after_upgrading_still_skips_extraction(
    tmp_path: Path, facebook: Document
) -> None:
    fingerprint = old_database(tmp_path, facebook)
    before = fetch_rows(tmp_path)

    for _ in range(2):  # the fingerprint from the old fetch row, then from the document's row
        [outcome] = night(tmp_path, [facebook])
        # Same as known: the fetcher was given the old fingerprint and the page matched it.
        assert outcome.fetch.page is not None and outcome.fetch.page.same_as_known
        assert outcome.recorded is not None and outcome.recorded.outcome == "unchanged"
        assert outcome.fetch.page.fingerprint == fingerprint

    store = Store(tmp_path)
    assert store.known_fingerprint(facebook.key, 1) == fingerprint  # now on the document's row
    assert store.changes() == [] and len(store.versions(facebook.key)) == 1
    fetches = store.fetches(facebook.key)
    assert [f["outcome"] for f in fetches] == ["baseline", "unchanged", "unchanged", "unchanged"]
    assert {f["url"] for f in fetches} == {facebook.url}
    assert {(f["renderer"], f["locale"], f["timezone"]) for f in fetches} == {
        ("browser", "en-US", "America/Chicago")
    }
    store.close()
    assert fetch_rows(tmp_path)[:2] == before, "rows written before the upgrade are untouched"


def test_a_changed_text_after_upgrading_is_extracted_and_recorded(
    tmp_path: Path, facebook: Document, server: PageServer
) -> None:
    old_database(tmp_path, facebook)
    serve_text(server, TEXT.replace("State of California", "State of Delaware"))
    [outcome] = night(tmp_path, [facebook])
    assert outcome.recorded is not None and outcome.recorded.outcome == "new"
    store = Store(tmp_path)
    [change] = store.changes(facebook.key)
    assert (change["from_version_id"], change["to_version_id"]) == (1, outcome.recorded.version_id)
    store.close()


def test_the_previous_fetch_is_found_across_the_upgrade_and_a_url_edit(
    tmp_path: Path, facebook: Document, server: PageServer
) -> None:
    """What the report asks of a document every night ("did its last fetch fail?")."""
    old_database(tmp_path, facebook)
    store = Store(tmp_path)
    store.db.execute("update runs set status = 'ok'")  # (the old runs' ids are 1 and 2)
    assert (store.last_fetch(facebook.key, before_run=3) or {})["run_id"] == 2
    store.close()
    night(tmp_path, [facebook])  # run 3, the old URL
    moved = server.url(MOVED)
    night(tmp_path, [replace(facebook, url=moved)])  # run 4
    store = Store(tmp_path)
    assert [(f["run_id"], f["url"]) for f in store.fetches(facebook.key)][1:] == [
        (2, facebook.url), (3, facebook.url), (4, moved),
    ]  # fmt: skip
    previous = store.last_fetch(facebook.key, before_run=4)
    assert previous is not None and (previous["run_id"], previous["url"]) == (3, facebook.url)
    assert (store.last_fetch(facebook.key, before_run=3) or {})["run_id"] == 2
    assert store.last_fetch(facebook.key, before_run=1) is None
    store.close()


# --- schema 4: when a version was last seen lives in a row of its own ---------------------------


def version_rows(home: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(home / "monitor.db") as db:
        return db.execute("select * from versions order by id").fetchall()


def test_an_unchanged_night_moves_last_seen_without_rewriting_the_version(
    tmp_path: Path, facebook: Document
) -> None:
    docs = documents(facebook, 2)
    assert outcomes_of(night(tmp_path, docs)) == {"baseline"}
    before = version_rows(tmp_path)
    with sqlite3.connect(tmp_path / "monitor.db") as db:  # every write to a version, counted
        db.execute("create table rewrites (id integer)")
        db.execute("create trigger count_rewrites after update on versions "
                   "begin insert into rewrites values (new.id); end")  # fmt: skip
    for _ in range(2):
        outcomes = night(tmp_path, docs)
        assert outcomes_of(outcomes) == {"unchanged"}
        assert all(o.fetch.page and o.fetch.page.same_as_known for o in outcomes)
    assert version_rows(tmp_path) == before
    with sqlite3.connect(tmp_path / "monitor.db") as db:
        assert db.execute("select count(*) from rewrites").fetchone()[0] == 0
    store = Store(tmp_path)
    for document in docs:
        [version] = store.versions(document.key)
        last = store.fetches(document.key)[-1]
        assert last["outcome"] == "unchanged"
        # Where every reader looks: the store, `history`, the report's data, `search`.
        assert version.last_seen[:19] == last["started_at"][:19]
        assert version.last_seen > version.first_seen
    from monitor.records import search
    from monitor.report.data import load_site

    site = load_site(store)
    [hit, *_] = search(store, "State of California")

    assert {v.last_seen for v in site.versions.values()} == {
        last_seen(store, v) for v in site.versions
    }
    assert hit["versions"][0]["last_seen"] == last_seen(store, hit["versions"][0]["version_id"])
    store.close()
    shown = run_cli(tmp_path, "history", docs[0].platform, docs[0].id)
    assert f"last seen {store_last_seen(tmp_path, docs[0])}" in shown.stdout, shown


def last_seen(store: Store, version_id: int) -> str | None:
    """When the store says the version was last seen (its sighting or its own column)."""
    version = store.version(version_id)
    return version.last_seen if version else None


def store_last_seen(home: Path, document: Document) -> str:
    store = Store(home)
    try:
        [version] = store.versions(document.key)
        return version.last_seen
    finally:
        store.close()


def test_a_schema_3_database_upgrades_and_loses_nothing(tmp_path: Path, facebook: Document) -> None:
    docs = documents(facebook, 2)
    night(tmp_path, docs)
    night(tmp_path, docs)
    # As schema 3 left a home folder: the last sighting in the version's own row, no
    # version_sightings table.
    with sqlite3.connect(tmp_path / "monitor.db") as db:
        db.execute(
            "update versions set last_seen = (select last_seen from version_sightings s "
            "where s.version_id = versions.id) where id in (select version_id from "
            "version_sightings)"
        )
        db.execute("drop table version_sightings")
        db.execute("PRAGMA user_version=3")
    tables = ("runs", "documents", "versions", "changes", "fetches", "fetch_targets")

    def rows() -> dict[str, list[tuple[Any, ...]]]:
        with sqlite3.connect(tmp_path / "monitor.db") as db:
            return {t: db.execute(f"select * from {t} order by 1").fetchall() for t in tables}

    before = rows()
    seen = {v[0]: v[7] for v in before["versions"]}  # id -> last_seen, as recorded
    store = Store(tmp_path)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    assert {v: last_seen(store, v) for v in seen} == seen
    store.close()
    assert rows() == before, "opening the old database rewrites no row"
    assert outcomes_of(night(tmp_path, docs)) == {"unchanged"}
    store = Store(tmp_path)
    for version_id, old in seen.items():
        assert (last_seen(store, version_id) or "") > old
    store.close()
    after = rows()
    assert after["versions"] == before["versions"]
    for table in tables:
        assert after[table][: len(before[table])] == before[table] or table == "documents"


def test_numpy_is_hidden_from_sqlite_utils_in_the_importing_thread_only() -> None:
    # The store hides numpy while sqlite-utils loads (it would import it only to name column
    # types). Another thread importing numpy at that moment must get it, and the finder must be
    # gone afterwards. A fresh interpreter: this one has imported numpy long ago.
    code = """
import sys, threading
from monitor.imports import hidden
before = list(sys.meta_path)
with hidden("numpy"):
    try:
        import numpy
        print("imported here")
    except ModuleNotFoundError:
        print("hidden here")
    other = []
    thread = threading.Thread(target=lambda: other.append(__import__("numpy").__name__))
    thread.start()
    thread.join()
    print("other thread:", other)
print("finder gone:", sys.meta_path == before)
import numpy
print("after:", numpy.__name__)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)  # fmt: skip
    assert out.stdout.splitlines() == [
        "hidden here", "other thread: ['numpy']", "finder gone: True", "after: numpy",
    ]  # fmt: skip


def test_the_store_works_whether_numpy_came_first_or_not(tmp_path: Path) -> None:
    # The flagger may import numpy before the store (a first report, a user's program): then
    # sqlite-utils gets it as it always did; without it first, the store opens without numpy.
    code = """
import sys
if sys.argv[2] == "numpy first":
    import numpy
from pathlib import Path
from monitor.store import Store
store = Store(Path(sys.argv[1]))
store.close()
import sqlite_utils.db
print(sqlite_utils.db.np is not None)
"""
    seen = []
    for order in ("numpy first", "store first"):
        home = tmp_path / order.replace(" ", "-")
        home.mkdir()
        out = subprocess.run([sys.executable, "-c", code, str(home), order], capture_output=True,
                             text=True, timeout=60, check=True)  # fmt: skip
        seen.append(out.stdout.strip())
        assert (home / "monitor.db").exists()
    assert seen == ["True", "False"]
