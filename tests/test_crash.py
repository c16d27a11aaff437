"""A run killed with SIGKILL at a named point leaves consistent records, and the next run records
exactly what the killed one would have.

The run is stopped at each point by `TOS_MONITOR_PAUSE_AT` (monitor/pause.py): it says on stderr
that it is paused and waits there, and the test kills its whole process group (Python and the
Chromium it started, as a crash or the OOM killer would). No sleep decides where the kill lands, so
the test means the same on a fast machine and a slow one. Everything is real: pages served on
127.0.0.1, Chromium, SQLite files, and the reviewer's digest through aiosmtpd.
"""

from __future__ import annotations

import gzip
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.pause import ENV as PAUSE_ENV
from monitor.store import sha256_bytes
from tests.conftest import make_watchlist, run_json
from tests.sites import PageServer, policy_page
from tests.test_notify import SmtpSink, mailto

DOCUMENTS = [f"doc{n}" for n in range(4)]
# Night 1 records every baseline; on night 2 the first two documents change.
NIGHTS = [dict.fromkeys(DOCUMENTS, 1), {**dict.fromkeys(DOCUMENTS, 1), "doc0": 2, "doc1": 2}]
# `@2`: the second time the point is reached, so the killed run has already recorded something.
POINTS = ["fetch@2", "snapshot-written@2", "transaction@2", "report@3", "notify"]
PAUSE_TIMEOUT = 240  # seconds a run may take to reach its point on a slow, shared machine


def text_for(name: str, edition: int) -> str:
    body = "\n\n".join(
        f"Clause {k} of {name}, edition {edition if k == 2 else 1}: the user agrees to the terms "
        f"set out here and the provider keeps the records described in this clause."
        for k in range(8)
    )
    return f"# {name} terms\n\n{body}\n"


def serve(server: PageServer, night: int) -> None:
    for name in DOCUMENTS:
        server.page(f"/{name}", policy_page(text_for(name, NIGHTS[night][name])))


def make_home(home: Path, server: PageServer, sink: SmtpSink) -> None:
    path = make_watchlist(home, {name: {"url": server.url(f"/{name}")} for name in DOCUMENTS})
    data = yaml.safe_load(path.read_text())
    data["reviewers"]["web"]["notify"] = [mailto(sink, "web@agency.example.gov")]
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def kill_at(home: Path, point: str) -> bool:
    """Run until the run says it is paused at `point`, then SIGKILL its process group. False when
    the run finished without reaching the point."""
    env = {**os.environ, "TOS_MONITOR_HOME": str(home), PAUSE_ENV: point}
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    wanted = f"tos-monitor: paused at {point.partition('@')[0]} "
    seen: list[str] = []
    try:
        while True:
            line = lines.get(timeout=PAUSE_TIMEOUT)
            if line is None:
                process.wait(timeout=30)
                return False
            seen.append(line)
            if line.startswith(wanted):
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
                return True
    except queue.Empty:
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError(f"the run never reached {point}: {''.join(seen)}") from None


def assert_consistent(home: Path, settled: bool = True) -> None:
    """What a killed run leaves: an intact database whose every version is whole (its files
    there and unaltered, and a change to it unless it is the document's first), and no partial
    file anywhere a reader looks. `settled`: a run has completed since the kill."""
    db = sqlite3.connect(home / "monitor.db")
    assert db.execute("pragma integrity_check").fetchone() == ("ok",)
    versions = db.execute(
        "select id, document_key, text, snapshot_path, snapshot_sha256, raw_path, raw_sha256 "
        "from versions order by id"
    ).fetchall()
    first: dict[str, int] = {}
    for vid, key, text, path, digest, raw_path, raw_digest in versions:
        assert (home / path).read_text() == text
        assert sha256_bytes((home / path).read_bytes()) == digest
        assert sha256_bytes((home / raw_path).read_bytes()) == raw_digest
        gzip.decompress((home / raw_path).read_bytes())
        if first.setdefault(key, vid) != vid:
            assert db.execute("select 1 from changes where to_version_id = ?", [vid]).fetchone()
    for (version_id,) in db.execute("select current_version_id from documents"):
        if version_id is not None:
            assert db.execute("select 1 from versions where id = ?", [version_id]).fetchone()
    for from_id, to_id in db.execute("select from_version_id, to_version_id from changes"):
        assert {from_id, to_id} <= {v[0] for v in versions}
    texts = {(v[1], v[2]) for v in versions}
    db.close()
    # A snapshot file with no row (killed between the two) is whole: the very text the next run
    # recorded for that document.
    for path in (home / "snapshots").rglob("*.md") if settled else ():
        key = "/".join(path.relative_to(home / "snapshots").parts[:2])
        assert _referenced(home, path) or (key, path.read_text()) in texts, path
    for page in (home / "reports").rglob("*.html"):
        assert page.read_text().rstrip().endswith("</html>"), f"partial report page {page}"


def _referenced(home: Path, path: Path) -> bool:
    db = sqlite3.connect(home / "monitor.db")
    relative = str(path.relative_to(home))
    found = db.execute("select 1 from versions where snapshot_path = ?", [relative]).fetchone()
    db.close()
    return found is not None


def records(home: Path, sink: SmtpSink) -> dict[str, Any]:
    """What a user relies on, free of ids and times: the versions, changes, what the reviewer
    was told, and the report's change pages."""
    db = sqlite3.connect(home / "monitor.db")
    sha = dict(db.execute("select id, sha256 from versions"))
    result = {
        "versions": sorted(db.execute("select document_key, sha256 from versions")),
        "current": sorted(
            (key, sha[vid])
            for key, vid in db.execute("select key, current_version_id from documents")
        ),
        "changes": sorted(
            (key, kind, sha[a], sha[b], summary, flags, quiet)
            for key, kind, a, b, summary, flags, quiet in db.execute(
                "select document_key, kind, from_version_id, to_version_id, summary, flags, quiet "
                "from changes"
            )
        ),
        "delivered": sorted(
            db.execute(
                "select i.kind, i.document_key, count(*) from notify_deliveries d "
                "join notify_items i on i.id = d.item_id group by 1, 2"
            )
        ),
        "mails": sorted(str(m["Subject"]) for m in sink.messages),
        "change_pages": sorted(
            (key, (home / "reports" / "changes" / f"{cid}.html").is_file())
            for cid, key in db.execute("select id, document_key from changes")
        ),
    }
    db.close()
    return result


@pytest.fixture(scope="module")
def site() -> Iterator[PageServer]:
    server = PageServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def reference(site: PageServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same two nights, never killed."""
    home = tmp_path_factory.mktemp("reference")
    sink = SmtpSink()
    sink.start()
    try:
        make_home(home, site, sink)
        for night in range(len(NIGHTS)):
            serve(site, night)
            code, _ = run_json(home)
            assert code == 0
        return records(home, sink)
    finally:
        sink.stop()


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_at_a_named_point_then_the_next_run_records_the_same(
    point: str, site: PageServer, reference: dict[str, Any], tmp_path: Path
) -> None:
    sink = SmtpSink()
    sink.start()
    try:
        make_home(tmp_path, site, sink)
        killed = []
        for night in range(len(NIGHTS)):
            serve(site, night)
            if kill_at(tmp_path, point):
                killed.append(night)
                assert_consistent(tmp_path, settled=False)
                code, summary = run_json(tmp_path)  # the same night again
                assert code == 0, summary
            assert_consistent(tmp_path)
        # Every point is reached on the night with changes (the first has no alert to send).
        assert len(NIGHTS) - 1 in killed
        got = records(tmp_path, sink)
    finally:
        sink.stop()
    assert got == reference
    assert all(present for _, present in got["change_pages"])
    assert len(got["changes"]) == 2 and len(got["mails"]) == 1
    db = sqlite3.connect(tmp_path / "monitor.db")
    statuses = [row[0] for row in db.execute("select status from runs order by id")]
    db.close()
    expected = []
    for night in range(len(NIGHTS)):
        expected += ["interrupted", "ok"] if night in killed else ["ok"]
    assert statuses == expected
    assert list((tmp_path / "snapshots").rglob(".tmp-*")) == [], "partial files are cleaned up"
    assert list((tmp_path / "reports").rglob(".*.tmp")) == [], "partial pages are cleaned up"
