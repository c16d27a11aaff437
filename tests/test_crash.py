"""A run killed with SIGKILL at any moment leaves consistent records, and the next run detects
exactly what the killed one would have."""

from __future__ import annotations

import gzip
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from monitor.store import sha256_bytes
from tests.conftest import make_watchlist, run_json
from tests.sites import PageServer, policy_page

DOCUMENTS = [f"doc{n}" for n in range(6)]


def text_for(name: str, edition: int) -> str:
    body = "\n\n".join(
        f"Clause {k} of {name}, edition {edition if k == 2 else 1}: the user agrees to the terms "
        f"set out here and the provider keeps the records described in this clause."
        for k in range(8)
    )
    return f"# {name} terms\n\n{body}\n"


def serve(server: PageServer, edition: dict[str, int]) -> None:
    for name in DOCUMENTS:
        server.page(f"/{name}", policy_page(text_for(name, edition[name])), delay=0.4)


def start_run(home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "TOS_MONITOR_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def kill_run_after(home: Path, seconds: float) -> None:
    process = start_run(home)
    time.sleep(seconds)
    # The whole process group: Python and the Chromium it started, as a crash or OOM would.
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def assert_consistent(home: Path) -> None:
    db = sqlite3.connect(home / "monitor.db")
    assert db.execute("pragma integrity_check").fetchone() == ("ok",)
    for path, digest, raw_path, raw_digest in db.execute(
        "select snapshot_path, snapshot_sha256, raw_path, raw_sha256 from versions"
    ):
        assert sha256_bytes((home / path).read_bytes()) == digest
        assert sha256_bytes((home / raw_path).read_bytes()) == raw_digest
        gzip.decompress((home / raw_path).read_bytes())
    for (version_id,) in db.execute("select current_version_id from documents"):
        if version_id is not None:
            assert db.execute("select 1 from versions where id = ?", [version_id]).fetchone()
    db.close()


def test_sigkill_at_any_point_then_the_next_run_completes(
    server: PageServer, tmp_path: Path
) -> None:
    edition = dict.fromkeys(DOCUMENTS, 1)
    serve(server, edition)
    make_watchlist(
        tmp_path,
        {name: {"url": server.url(f"/{name}")} for name in DOCUMENTS},
        settings={"concurrency": 2, "per_host": 2},
    )
    for seconds in (0.2, 1.0, 1.8, 2.6):
        kill_run_after(tmp_path, seconds)
        if (tmp_path / "monitor.db").exists():
            assert_consistent(tmp_path)

    code, summary = run_json(tmp_path)
    assert code == 0 and summary["changes"] == [] and summary["failures"] == []
    assert list((tmp_path / "snapshots").rglob(".tmp-*")) == [], "partial files are cleaned up"
    db = sqlite3.connect(tmp_path / "monitor.db")
    per_document = dict(db.execute("select document_key, count(*) from versions group by 1"))
    assert per_document == {f"example/{name}": 1 for name in DOCUMENTS}
    statuses = [row[0] for row in db.execute("select status from runs order by id")]
    assert statuses[-1] == "ok" and set(statuses[:-1]) <= {"interrupted"}

    # Three documents change; runs are killed part-way; the survivors record each change once.
    for name in DOCUMENTS[:3]:
        edition[name] = 2
    serve(server, edition)
    for seconds in (1.2, 2.2):
        kill_run_after(tmp_path, seconds)
        assert_consistent(tmp_path)
    run_json(tmp_path)
    code, summary = run_json(tmp_path)
    assert code == 0 and summary["changes"] == []
    changes = dict(db.execute("select document_key, count(*) from changes group by 1"))
    assert changes == {f"example/{name}": 1 for name in DOCUMENTS[:3]}
    assert_consistent(tmp_path)
