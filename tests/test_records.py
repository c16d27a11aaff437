"""Review decisions and public records from the command line: changes, review, export, verify,
search, prune — on records made by the real pipeline."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from monitor.run import run_nightly
from monitor.store import Store
from monitor.watchlist import load
from tests.conftest import make_watchlist, run_cli
from tests.sites import PageServer, policy_page

V1 = """# Terms

## Disputes
Any dispute will be resolved in the courts of Santa Clara County, California.

## Changes
We may change these terms at any time and will post the new terms on this page.
"""
V2 = V1.replace(
    "in the courts of Santa Clara County, California",
    "by binding arbitration in San Francisco, and you waive any class action",
)


@pytest.fixture
def history(server: PageServer, tmp_path: Path) -> Path:
    """Two nights: a baseline, then one real change (V1 -> V2)."""
    make_watchlist(tmp_path, {"terms": {"url": server.url("/terms")}})
    for text in (V1, V2):
        server.page("/terms", policy_page(text))
        run_nightly(load(tmp_path / "watchlist.yaml"), tmp_path)
    return tmp_path


def changes_json(home: Path, *args: str) -> list[dict]:
    result = run_cli(home, "changes", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_decisions_are_recorded_and_superseded_but_kept(history: Path) -> None:
    assert run_cli(history, "report").returncode == 0
    [change] = changes_json(history, "--pending")
    assert change["review_state"] == "pending" and change["kind"] == "new"
    assert "arbitration" in change["categories"]

    first = run_cli(history, "review", str(change["change_id"]), "--decision", "needs-pio",
                    "--by", "Jane Analyst", "--note", "Arbitration is new: ask PIO")  # fmt: skip
    assert first.returncode == 0 and "needs-pio by Jane Analyst" in first.stdout
    second = run_cli(history, "review", str(change["change_id"]), "--decision", "deal-breaker",
                     "--by", "Pat PIO")  # fmt: skip
    assert second.returncode == 0

    assert changes_json(history, "--pending") == []
    [listed] = changes_json(history, "--platform", "example")
    assert listed["review_state"] == "deal-breaker" and listed["reviewed_by"] == "Pat PIO"
    rows = list(Store(history).db.table("reviews").rows_where(order_by="id"))
    assert [(r["decision"], r["reviewer"]) for r in rows] == [
        ("needs-pio", "Jane Analyst"), ("deal-breaker", "Pat PIO")
    ]  # fmt: skip
    assert changes_json(history, "--platform", "nowhere") == []
    page = (history / "reports" / "changes" / f"{change['change_id']}.html").read_text()
    assert "Pat PIO" in page, "the report shows the latest decision"


def test_bad_review_requests_are_refused_with_exit_2(history: Path) -> None:
    bad = run_cli(history, "review", "1", "--decision", "fine", "--by", "Jane")
    assert bad.returncode == 2 and "unknown decision 'fine'" in bad.stderr
    missing = run_cli(history, "review", "99", "--decision", "acceptable", "--by", "Jane")
    assert missing.returncode == 2 and "no change 99" in missing.stderr
    nobody = run_cli(history, "review", "1", "--decision", "acceptable", "--by", " ")
    assert nobody.returncode == 2 and "reviewer's name" in nobody.stderr


def test_export_round_trip_matches_its_manifest(history: Path, tmp_path: Path) -> None:
    run_cli(history, "review", "1", "--decision", "acceptable", "--by", "Jane")
    out = tmp_path / "out" / "records.zip"
    result = run_cli(history, "export", "--out", str(out), "--since", "2000-01-01")
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        for name, digest in manifest["files"].items():
            assert hashlib.sha256(archive.read(name)).hexdigest() == digest, name
        assert names == set(manifest["files"]) | {"manifest.json"}
        texts = sorted(n for n in names if n.endswith(".md"))
        assert len(texts) == 2 and "Santa Clara" in archive.read(texts[0]).decode()
        assert sum(n.endswith(".html.gz") for n in names) == 2, "raw snapshots are included"
        change = json.loads(archive.read("documents/example/terms/changes/1.json"))
        assert change["decisions"][0]["reviewer"] == "Jane"
        assert "words" in archive.read("documents/example/terms/changes/1.diff.json").decode()
        assert "version 1" in archive.read("index.html").decode()
    empty = tmp_path / "empty.zip"
    assert run_cli(history, "export", "--out", str(empty), "--until", "2001-01-01").returncode == 0
    with zipfile.ZipFile(empty) as archive:
        assert not [n for n in archive.namelist() if n.endswith(".md")]
    bad = run_cli(history, "export", "--out", str(empty), "--since", "last tuesday")
    assert bad.returncode == 2 and "--since 'last tuesday'" in bad.stderr


def test_verify_detects_altered_and_missing_snapshot_files(history: Path) -> None:
    ok = run_cli(history, "verify")
    assert ok.returncode == 0 and "checked 4 files: 0 missing, 0 altered" in ok.stdout
    store = Store(history)
    first, second = store.versions("example/terms")
    text_file = history / first.snapshot_path
    text_file.write_text(text_file.read_text().replace("Santa Clara", "Santa Cruz"))
    (history / second.raw_path).unlink()
    bad = run_cli(history, "verify")
    assert bad.returncode == 1
    assert f"ALTERED  {first.snapshot_path}" in bad.stdout
    assert f"MISSING  {second.raw_path}" in bad.stdout


def test_search_says_where_and_since_when(history: Path) -> None:
    old = json.loads(run_cli(history, "search", "Santa Clara", "--json").stdout)
    assert [r["document"] for r in old] == ["terms"]
    assert old[0]["in_current_version"] is False and len(old[0]["versions"]) == 1
    new = run_cli(history, "search", "class action")
    assert new.returncode == 0 and "example/terms: since" in new.stdout
    assert "in the current text" in new.stdout
    assert "waive any [class action]. ## Changes" in new.stdout
    assert "appears in no recorded version" in run_cli(history, "search", "myspace").stdout
    quoted = run_cli(history, "search", 'courts" OR "x')
    assert quoted.returncode == 0, "user text is a phrase, never FTS5 syntax"


def test_prune_keeps_texts_and_current_raw_and_logs_it(history: Path) -> None:
    dry = run_cli(history, "prune", "--raw-older-than", "0d", "--dry-run")
    assert dry.returncode == 0 and "1 raw pages would delete" in dry.stdout
    done = run_cli(history, "prune", "--raw-older-than", "0d")
    assert done.returncode == 0 and "1 raw pages deleted" in done.stdout
    store = Store(history)
    first, second = store.versions("example/terms")
    assert not (history / first.raw_path).exists()
    assert (history / second.raw_path).exists(), "the current version's raw page stays"
    assert (history / first.snapshot_path).exists(), "texts are never pruned"
    [logged] = list(store.db.table("prunes").rows)
    assert logged["raw_path"] == first.raw_path
    assert run_cli(history, "verify").returncode == 0
    bad = run_cli(history, "prune", "--raw-older-than", "a year")
    assert bad.returncode == 2 and "365d" in bad.stderr
