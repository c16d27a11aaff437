"""`tos-monitor demo`: offline, the whole flow in one folder — nights fetched by Chromium from a
server on 127.0.0.1 inside the demo's process, the report, and one reviewer's digest as files."""

from __future__ import annotations

import email
import json
from email import policy
from pathlib import Path

from tests.conftest import run_cli


def test_demo_records_real_changes_builds_the_report_and_writes_the_digest(
    tmp_path: Path,
) -> None:
    home = tmp_path / "demo"
    result = run_cli(tmp_path, "demo", "--home", str(home), timeout=600)
    assert result.returncode == 0, result.stderr

    # The amendments and the flip are changes; the noise night and the baselines are not.
    listed = run_cli(tmp_path, "--home", str(home), "changes", "--json")
    assert listed.returncode == 0, listed.stderr
    changes = json.loads(listed.stdout)
    kinds = sorted((c["platform"], c["kind"]) for c in changes)
    assert kinds == [
        ("instagram", "new"),
        ("instagram", "revert"),
        ("linkedin", "new"),
        ("youtube", "new"),
    ]
    # YouTube's real 2023 amendment: the minimum age went from 15 to 13.
    youtube = next(c for c in changes if c["platform"] == "youtube")
    shown = run_cli(tmp_path, "--home", str(home), "show", str(youtube["to_version_id"]))
    assert "at least 13 years old" in shown.stdout

    report = home / "reports" / "index.html"
    assert report.is_file()
    for change in changes:
        assert (home / "reports" / "changes" / f"{change['change_id']}.html").is_file()

    outbox = sorted((home / "outbox").iterdir())
    assert [p.suffix for p in outbox] == [".eml", ".html"]
    page = next(p for p in outbox if p.suffix == ".html").read_text()
    assert "YouTube" in page and "LinkedIn" in page and "Instagram" in page
    mail = email.message_from_bytes(outbox[0].read_bytes(), policy=policy.default)
    assert "4 documents changed" in str(mail["Subject"])
    text = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert text is not None and "YouTube" in text.get_content()
    assert html is not None and html.get_content().strip() == page.strip()
    # The digest counts as delivered on the outbox: nothing is left waiting.
    db_messages = run_cli(tmp_path, "--home", str(home), "notify", "--pending")
    assert "1 pending" not in db_messages.stdout

    # The last lines say what to open.
    tail = result.stdout.strip().splitlines()[-4:]
    assert any(str(report) in line for line in tail)
    assert any(str(outbox[1]) in line for line in tail)

    # A folder that holds records, or a watchlist of its own, is never filled with demo nights.
    again = run_cli(tmp_path, "--home", str(home), "demo")
    assert again.returncode == 2 and "already holds records" in again.stderr
    agency = tmp_path / "agency"
    agency.mkdir()
    (agency / "watchlist.yaml").write_text("settings: {}\n")
    refused = run_cli(tmp_path, "demo", "--home", str(agency))
    assert refused.returncode == 2 and "watchlist.yaml of its own" in refused.stderr
    assert (agency / "watchlist.yaml").read_text() == "settings: {}\n"
