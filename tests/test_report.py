"""The HTML report, end to end: a history made by the real nightly pipeline (Chromium against pages
served from 127.0.0.1), the site built from it, and the pages opened in a real Chromium from
file://, with policy text that tries to run script."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from playwright.sync_api import Browser, Dialog, Page, expect, sync_playwright

from monitor.categories import CATEGORIES
from monitor.flag import ClauseInput, Flag, checklist, flag_inputs
from monitor.report import build_site, update_site
from monitor.report.checklist import ChecklistCache, answer_since, combine, merge_timelines
from monitor.report.diffview import diff_view
from monitor.run import run_nightly
from monitor.store import Store
from monitor.watchlist import load
from tests.conftest import RESOLVER_RULES, launch_chromium, run_cli
from tests.sites import FIXTURES, PageServer, policy_page

FILLER = "\n\n".join(
    f"## {n}. Section {n}\nParagraph {n} explains how the service handles topic number {n}, "
    f"in plain words that stay the same from one version to the next."
    for n in range(4, 14)
)
TERMS_V1 = f"""# Terms of Service

## 1. Who we are
These terms govern your use of the Example service, provided by Example Inc.

## 2. Governing law
These terms are governed by the laws of the State of California, and disputes go to the courts
of Santa Clara County.

## 3. Changes
We may change these terms at any time. Continued use means you accept the changes.

{FILLER}
"""
TERMS_V2 = TERMS_V1.replace("State of California", "State of Delaware").replace(
    "## 4. Section 4",
    "## 3a. Disputes\nYou agree that all disputes will be resolved by binding arbitration, and "
    "you waive any right to a class action.\n\n## 4. Section 4",
)
# Markup written as text on the platform's page (entities in the HTML): after extraction the
# version's text holds real "<script>" and "<img onerror>" strings, which the report must show
# literally and never run.
HOSTILE = (
    "Our banner said &lt;script&gt;window.__pwned = 1; alert(1)&lt;/script&gt; and "
    '&lt;img src=x onerror="window.__pwned = 2; alert(2)"&gt; as plain text.'
)
PRIVACY_V1 = f"""# Privacy Policy

We collect your IP address, cookies and device identifiers when you use the service.

{HOSTILE}

We do not sell your personal information.
"""
PRIVACY_V2 = PRIVACY_V1.replace(
    "as plain text.",
    'as plain text, and &lt;svg onload="window.__pwned = 3"&gt; too.',
)
SCRIPT_TEXT = "<script>window.__pwned = 1; alert(1)</script>"
IMG_TEXT = '<img src=x onerror="window.__pwned = 2; alert(2)">'


def write_watchlist(home: Path, server: PageServer) -> None:
    """Two platforms: "example" (terms and privacy) and "other" (a page that will break)."""
    data = {
        "settings": {"admin": "web", "default_reviewer": "web", "concurrency": 2, "per_host": 2,
                     "timeout": 10, "min_chars": 40, "chromium_args": [RESOLVER_RULES]},
        "reviewers": {"web": {"name": "Web Team", "notify": []}},
        "platforms": {
            "example": {"name": "Example", "documents": {
                "terms": {"url": server.url("/terms"), "name": "Terms of Service"},
                "privacy": {"url": server.url("/privacy"), "name": "Privacy Policy"},
            }},
            "other": {"name": "Other Network", "documents": {
                "terms-of-service": {"url": server.url("/other")},
            }},
        },
    }  # fmt: skip
    (home / "watchlist.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def night(home: Path) -> int:
    """One nightly pass, in its own thread: the module's sync Playwright owns this thread's
    event loop, and run_nightly starts one of its own."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: run_nightly(load(home / "watchlist.yaml"), home).run_id).result()


def returning(text: str) -> Callable[[], str]:
    """A version's text loader for ChecklistCache, bound to this `text` (not a loop's last)."""
    return lambda: text


@dataclass
class History:
    home: Path
    server: PageServer
    site: Path


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    """Three nights: baseline; terms and privacy change while "other" starts failing; terms go
    back to their first text (a revert) while "other" still fails. Then a full build."""
    home = tmp_path_factory.mktemp("report-home")
    server = PageServer()
    write_watchlist(home, server)
    nights = [
        (TERMS_V1, PRIVACY_V1, policy_page(TERMS_V1), 200),
        (TERMS_V2, PRIVACY_V2, "oops", 500),
        (TERMS_V1, PRIVACY_V2, "oops", 500),
    ]
    for terms, privacy, other, status in nights:
        server.page("/terms", policy_page(terms))
        server.page("/privacy", policy_page(privacy))
        server.page("/other", other, status=status)
        night(home)
    build_site(Store(home))
    yield History(home, server, home / "reports")
    server.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = launch_chromium(playwright)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    yield opened
    context.close()


def url(path: Path) -> str:
    return path.resolve().as_uri()


def change_pages(site: Path) -> dict[str, Path]:
    """kind ("terms-new", "terms-revert", "privacy-new") -> change page, from the document pages."""
    store = Store(site.parent)
    found = {}
    for change in store.changes():
        document = change["document_key"].split("/")[1]
        found[f"{document}-{change['kind']}"] = site / "changes" / f"{change['id']}.html"
    return found


# --- Pages in a real browser ---------------------------------------------------------------------


def test_change_page_highlights_words_and_switches_views(
    history: History, page: Page, tmp_path: Path
) -> None:
    page.goto(url(change_pages(history.site)["terms-new"]))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Terms of Service, change #")
    diff = page.locator("#diff")
    # Word level: only the changed word is marked, inside <del>/<ins>, in the inline view.
    expect(diff.locator(".merged del", has_text="California")).to_be_visible()
    expect(diff.locator(".merged ins", has_text="Delaware")).to_be_visible()
    expect(diff.locator("ins", has_text="binding arbitration")).to_be_visible()
    expect(diff.locator(".merged", has_text="State of")).to_contain_text("Santa Clara County")
    expect(diff.locator(".col-old.side-only").first).to_be_hidden()
    # Unchanged stretches are folded, with context around the changes.
    fold = diff.locator("details.fold").first
    expect(fold).not_to_have_attribute("open", "")
    expect(fold.locator("summary")).to_contain_text("unchanged block")
    # The flagged category of the added clause is in the header, deal breakers listed first.
    expect(page.locator("dl.facts")).to_contain_text("Binding arbitration")
    page.screenshot(path=str(tmp_path / "change-inline.png"), full_page=True)

    page.get_by_text("Side by side", exact=True).click()
    expect(diff.locator(".merged").first).to_be_hidden()
    old_side = diff.locator(".col-old.side-only", has_text="State of")
    new_side = diff.locator(".col-new.side-only", has_text="State of")
    expect(old_side.locator("del")).to_have_text("California")
    expect(new_side.locator("ins")).to_have_text("Delaware")
    old_box, new_box = old_side.bounding_box(), new_side.bounding_box()
    assert old_box and new_box and new_box["x"] > old_box["x"] + old_box["width"] / 2
    page.screenshot(path=str(tmp_path / "change-side.png"), full_page=True)

    # "next change" links jump between changed passages, and keep the chosen view.
    page.locator("#change-1").get_by_role("link", name="next change").click()
    assert page.evaluate("location.hash") == "#change-2"
    expect(diff.locator(".merged").first).to_be_hidden()
    # Print always shows the inline view.
    page.emulate_media(media="print")
    expect(diff.locator(".merged", has_text="State of")).to_be_visible()
    expect(old_side).to_be_hidden()
    print(f"screenshots: {tmp_path / 'change-inline.png'}, {tmp_path / 'change-side.png'}")


def test_change_page_works_without_javascript(history: History, browser: Browser) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(url(change_pages(history.site)["terms-new"]))
    expect(page.locator("#diff .merged ins", has_text="Delaware")).to_be_visible()
    page.get_by_text("Side by side", exact=True).click()  # the radio button + CSS :has()
    expect(page.locator("#diff .col-new.side-only ins", has_text="Delaware")).to_be_visible()
    expect(page.locator("#diff .merged").first).to_be_hidden()
    expect(page.locator("#view-side")).to_be_focused()
    page.keyboard.press("ArrowLeft")  # keyboard: arrows move between the two views
    expect(page.locator("#diff .merged").first).to_be_visible()
    context.close()


def test_index_lists_documents_status_and_pending_changes(history: History, page: Page) -> None:
    page.goto(url(history.site / "index.html"))
    documents = page.locator("table.docs tbody tr")
    expect(documents).to_have_count(3)
    failing = documents.filter(has_text="Other Network")
    expect(failing).to_contain_text("Failing")
    expect(failing).to_contain_text("http-5xx")
    expect(page.locator("section.alert")).to_contain_text("Other Network")
    terms = documents.filter(has_text="Terms of Service").filter(has_text="Example")
    expect(terms.locator(".status-ok")).to_be_visible()
    expect(terms).to_contain_text("2 changes")  # both pending review
    expect(terms).to_contain_text("Governing law")  # the platform's deal-breaker answers
    # Newest first: the revert (last night) is above the change it undid.
    pending = page.locator("table.changes tbody tr")
    expect(pending).to_have_count(3)
    expect(pending.first).to_contain_text("revert")
    expect(pending.first).to_contain_text("Pending review")
    # One chart of the last 12 months per platform, with this month's changes counted.
    charts = page.locator("table.platforms svg.spark")
    expect(charts).to_have_count(2)
    assert "3 changes in the last 12 months" in (charts.first.get_attribute("aria-label") or "")


def test_index_shows_each_document_the_questions_of_its_kind(history: History, page: Page) -> None:
    """A privacy policy's row answers the privacy questions, a terms row the terms deal breakers
    (with the platform's answers); neither shows the other kind's questions."""
    page.goto(url(history.site / "index.html"))
    rows = page.locator("table.docs tbody tr").filter(has_text="Example")
    privacy = rows.filter(has_text="Privacy Policy").locator("ul.chips li")
    terms = rows.filter(has_text="Terms of Service").locator("ul.chips li")
    expect(privacy).to_have_text([
        re.compile("^Tracking for advertising: "), re.compile("^Disclosure of user information: "),
        "Sale of user data: no",  # "We do not sell your personal information."
    ])  # fmt: skip
    expect(terms).to_have_text([
        re.compile("^Indemnification: "), "Governing law: yes",
        re.compile("^Binding arbitration: "), re.compile("^Unilateral changes to the terms: "),
    ])  # fmt: skip
    others = rows.filter(has_text="Privacy Policy").locator("p.others")
    expect(others).to_contain_text("Other privacy questions")
    expect(others.get_by_role("link")).to_have_attribute("href", "platforms/example.html")
    expect(rows.filter(has_text="Terms of Service").locator("p.others")).to_contain_text(
        "Other terms questions"
    )


def test_document_page_shows_the_revert_in_the_table_and_the_picture(
    history: History, page: Page
) -> None:
    page.goto(url(history.site / "documents" / "example.terms.html"))
    rows = page.locator("table.history tbody tr")
    expect(rows).to_have_count(3)  # revert, change, baseline: newest first
    expect(rows.nth(0)).to_contain_text("Reverted to version 1 (from version 2)")
    expect(rows.nth(1)).to_contain_text("Version 1 → version 2")
    expect(rows.nth(2)).to_contain_text("baseline")
    svg = page.locator("svg.timeline")
    expect(svg.locator(".marker-revert")).to_have_count(1)
    expect(svg.locator("circle.marker")).to_have_count(1)
    # The change adds an arbitration clause: a deal breaker, so its marker is the alarming colour.
    expect(svg.locator("circle.marker.sev-deal-breaker")).to_have_count(1)
    expect(svg.locator(".conn-revert")).to_have_count(1)
    svg.locator(".marker-revert").click()
    expect(page).to_have_url(re.compile(r"/changes/\d+\.html$"))
    expect(page.locator("h1")).to_contain_text("revert")


def test_platform_page_dates_each_answer_from_the_version_history(
    history: History, page: Page
) -> None:
    store = Store(history.home)
    changes = {(c["document_key"], c["kind"]): c for c in store.changes()}
    reverted_at = changes[("example/terms", "revert")]["detected_at"]
    page.goto(url(history.site / "platforms" / "example.html"))
    arbitration = page.locator("#q-arbitration")
    # Night 2 added an arbitration clause, night 3 reverted it: "unclear" again since the revert.
    expect(arbitration.locator(".answer-line .ans")).to_have_text("unclear")
    expect(arbitration.locator(".answer-line time")).to_have_attribute("datetime", reverted_at)
    law_since = page.locator("#q-governing-law .answer-line time")
    expect(law_since).to_have_attribute("datetime", store.versions("example/terms")[0].first_seen)
    law = page.locator("#q-governing-law")
    expect(law.locator(".answer-line .ans")).to_have_text("yes")
    expect(law.locator("blockquote").first).to_contain_text("governed by the laws")
    sale = page.locator("#q-data-sale")
    expect(sale.locator(".answer-line .ans")).to_have_text("no")
    expect(sale).to_contain_text("We do not sell your personal information.")
    summary = page.locator("table.checklist tbody tr")
    expect(summary.first).to_contain_text("indemnify")  # deal breakers first


def test_hostile_policy_text_is_shown_literally_and_never_runs(
    history: History, page: Page
) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    privacy = next(p for k, p in change_pages(history.site).items() if k == "privacy-new")
    store = Store(history.home)
    version_pages = [history.site / "versions" / f"{v.id}.html" for v in store.versions(
        "example/privacy")]  # fmt: skip
    pages = [
        privacy,
        *version_pages,
        history.site / "documents" / "example.privacy.html",
        history.site / "platforms" / "example.html",
        history.site / "index.html",
    ]
    for path in pages:
        page.goto(url(path))
        page.wait_for_load_state("load")
        assert page.evaluate("typeof window.__pwned") == "undefined", path
        assert page.locator("script:not([src])").count() == 0, path
        assert page.locator("main img, main svg[onload], main [onerror]").count() == 0, path
    for path in [privacy, version_pages[0]]:
        page.goto(url(path))
        body = page.locator("main").inner_text()
        assert SCRIPT_TEXT in body and IMG_TEXT in body, path
    page.goto(url(privacy))
    svg_text = '<svg onload="window.__pwned = 3">'
    expect(page.locator("#diff .merged ins", has_text=svg_text)).to_be_visible()
    assert dialogs == []


# --- Generated files -----------------------------------------------------------------------------

ASSET_URL = re.compile(
    r"""(?:\b(?:src|href|xlink:href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|url\(\s*["']?\s*(?:https?:)?//|@import\s+["']?(?:https?:)?//)""",
    re.IGNORECASE,
)


def test_generated_files_load_nothing_from_the_network(history: History) -> None:
    files = [p for p in history.site.rglob("*") if p.is_file() and ".cache" not in p.parts]
    assert len(files) > 10
    for path in files:
        text = path.read_text(encoding="utf-8")
        for match in ASSET_URL.finditer(text):
            # The one allowed: the document page's link to the live policy (a link, no asset).
            line = text[text.rfind("\n", 0, match.start()) + 1 : text.find("\n", match.end())]
            assert path.parent.name == "documents" and "(the live page)" in line, (path, line)
        assert "<link" not in text or 'href="../assets/' in text or 'href="assets/' in text
        if path.suffix == ".html":  # defence in depth: no inline script even if escaping failed
            assert "Content-Security-Policy" in text and "script-src 'self'" in text, path
    css = (history.site / "assets" / "report.css").read_text()
    assert "@media print" in css and "http" not in css


def test_pages_are_written_whole_and_leave_no_temporary_files(history: History) -> None:
    leftovers = [p for p in history.site.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    for path in history.site.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>"), path


# --- Incremental updates -------------------------------------------------------------------------


def snapshot_site(site: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(site)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in site.rglob("*")
        if p.is_file() and ".cache" not in p.parts
    }


def test_a_run_updates_only_the_pages_its_changes_touch(history: History, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(history.home, home)
    site = home / "reports"
    before = snapshot_site(site)
    store = Store(home)
    last_change = max(c["id"] for c in store.changes("example/privacy"))
    old_versions = {v.id for v in store.versions("example/privacy")}
    store.close()

    history.server.page("/privacy", policy_page(PRIVACY_V2 + "\nWe keep logs for 30 days.\n"))
    run_id = night(home)  # the run updates the site itself

    store = Store(home)
    [change] = [c for c in store.changes() if c["run_id"] == run_id]
    [new_version] = [v.id for v in store.versions("example/privacy") if v.id not in old_versions]
    affected = {
        "index.html",
        "documents/example.privacy.html",
        "documents/other.terms-of-service.html",  # still failing: its status line moved on
        "platforms/example.html",
        "platforms/other.html",
        f"changes/{change['id']}.html",
        f"changes/{last_change}.html",  # its "next change" link now leads to the new one
        f"versions/{new_version}.html",
    }
    stats = json.loads((site / ".cache" / "last-build.json").read_text())
    assert stats["mode"] == "incremental"
    assert set(stats["written_pages"]) | set(stats["unchanged_pages"]) == affected
    after = snapshot_site(site)
    rewritten = {k for k, v in after.items() if before.get(k) != v}
    assert set(stats["written_pages"]) == rewritten
    # Pages whose content had to change were rewritten; a rendered page that came out the same
    # (e.g. a platform page whose answers did not move) kept its bytes and its mtime.
    assert (
        {
            "index.html",
            "documents/example.privacy.html",
            f"changes/{change['id']}.html",
            f"changes/{last_change}.html",
            f"versions/{new_version}.html",
        }
        <= rewritten
        <= affected
    )
    for unchanged in set(before) - rewritten:
        assert before[unchanged][0] == after[unchanged][0], f"{unchanged} was rewritten"
    # Updating again from the same run rewrites nothing new (pages keep their bytes and mtime).
    again = update_site(store, run_id, now=datetime.now(UTC))
    assert again.mode == "incremental"
    assert set(again.written) <= {"index.html", "documents/other.terms-of-service.html",
                                  "documents/example.privacy.html"}  # fmt: skip
    assert set(again.written) | set(again.unchanged) == affected


def test_report_command_rebuilds_the_site(history: History, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(history.home, home, ignore=shutil.ignore_patterns("reports"))
    result = run_cli(home, "report")
    assert result.returncode == 0, result.stderr
    assert "index.html" in result.stdout and "pages" in result.stdout
    assert (home / "reports" / "index.html").exists()
    assert (home / "reports" / "assets" / "report.css").exists()
    assert run_cli(tmp_path / "empty", "report").returncode == 2
    # Any web server, or none: pages link each other with relative paths only.
    index = (home / "reports" / "index.html").read_text()
    assert 'href="/' not in index and "file://" not in index


# --- Pieces --------------------------------------------------------------------------------------


def test_cached_checklist_matches_the_flagger(tmp_path: Path) -> None:
    paths = sorted((FIXTURES / "corpus" / "facebook-terms-of-service").glob("*.md.gz"))[:2]
    cache = ChecklistCache(tmp_path)
    for path in paths:
        text = gzip.decompress(path.read_bytes()).decode()
        got = cache.checklist_of("facebook/terms", path.name, returning(text))
        assert got == checklist(text)
    cache.save()
    again = ChecklistCache(tmp_path)  # from the files, without calling the text loader
    assert again.answers_of("facebook/terms", paths[0].name, lambda: "unused")
    assert list((again.dir / "clauses").glob("*.json"))


def test_documents_sharing_clauses_flag_them_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Platforms repeat boilerplate across documents; a first build flags a shared clause once.
    # A clause under another heading is the same input to the flagger (flag.input_key).
    import monitor.flag

    path = sorted((FIXTURES / "corpus" / "facebook-terms-of-service").glob("*.md.gz"))[0]
    body = gzip.decompress(path.read_bytes()).decode()
    text, other = "# Facebook terms\n\n" + body, "# Another platform's terms\n\n" + body
    expected = checklist(text), checklist(other)
    flagged: list[int] = []

    def counting(items: Sequence[ClauseInput]) -> list[list[Flag]]:
        flagged.append(len(items))
        return flag_inputs(items)

    # The report imports the flagger where it flags (`ClauseMemo.flagged`): patched at its source.
    monkeypatch.setattr(monitor.flag, "flag_inputs", counting)
    cache = ChecklistCache(tmp_path)
    first = cache.checklist_of("facebook/terms", "a", lambda: text)
    second = cache.checklist_of("other/terms", "b", lambda: other)
    assert len(flagged) == 1 and flagged[0] > 50  # the second document flagged nothing new
    assert (first, second) == expected
    cache.save()
    # Each document's own clause file holds all its clauses: the next build needs no other.
    monkeypatch.setattr(monitor.flag, "flag_inputs", flag_inputs)
    again = ChecklistCache(tmp_path)
    assert again._memo("other/terms").flagged(other) == cache._memo("other/terms").flagged(other)
    assert again._memo("other/terms").flags.keys() == cache._memo("facebook/terms").flags.keys()


def test_answer_dates_follow_the_combined_history() -> None:
    terms = [("2026-01-01", {"arbitration": "unclear"}), ("2026-03-01", {"arbitration": "yes"}),
             ("2026-05-01", {"arbitration": "yes"})]  # fmt: skip
    privacy = [("2026-02-01", {"arbitration": "no"}), ("2026-04-01", {"arbitration": "no"})]
    assert answer_since(terms, "arbitration") == "2026-03-01"
    merged = merge_timelines({"t": terms, "p": privacy})
    assert [answers["arbitration"] for _, answers in merged] == [
        "unclear", "no", "yes", "yes", "yes"
    ]  # fmt: skip
    assert answer_since(merged, "arbitration") == "2026-03-01"
    assert answer_since([], "arbitration") is None


def test_merged_timeline_combines_every_document_at_each_event() -> None:
    # The merge keeps counts instead of recombining every document at every event: it must
    # still equal `combine` over the answers current at each event.
    import random

    rng = random.Random(7)
    cats = list(CATEGORIES)[:4]
    timelines = {
        f"doc{d}": [
            (f"2026-01-{day:02d}", {c: rng.choice(["yes", "no", "unclear"]) for c in cats})
            for day in sorted(rng.sample(range(1, 29), rng.randint(1, 6)))
        ]
        for d in range(6)
    }
    events = sorted((t, k, a) for k, states in timelines.items() for t, a in states)
    merged = merge_timelines(timelines)
    assert len(merged) == len(events)
    for i, (began, answers) in enumerate(merged):
        now: dict[str, dict[str, str]] = {}
        for _, key, a in events[: i + 1]:
            now[key] = a
        assert began == events[i][0]
        assert answers == {
            c: combine(a.get(c, "unclear") for a in now.values()) for c in CATEGORIES
        }


def test_diff_view_folds_unchanged_stretches_around_numbered_changes() -> None:
    def equal(n: int) -> dict[str, object]:
        return {"op": "equal", "old": n, "new": n, "text": f"Block {n}"}

    ops = [equal(n) for n in range(10)]
    ops[5] = {"op": "modified", "old": 5, "new": 5, "old_text": "a b", "new_text": "a c",
              "words": [[0, "a "], [-1, "b"], [1, "c"]]}  # fmt: skip
    ops.append({"op": "added", "old": None, "new": 10, "text": "New block"})
    view = diff_view({"ops": ops})
    assert view.hunks == 2
    assert [(p.type, len(p.rows)) for p in view.parts] == [
        ("fold", 3), ("context", 2), ("hunk", 1), ("context", 4), ("hunk", 1)
    ]  # fmt: skip


def test_views_are_written_atomically_with_readable_permissions(history: History) -> None:
    index = history.site / "index.html"
    assert oct(index.stat().st_mode & 0o777) == oct(0o644)
    assert os.access(index, os.R_OK)


def test_answers_flagged_in_worker_processes_match_in_process_ones(
    history: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import monitor.report.checklist as report_checklist

    store = Store(history.home)
    versions = {
        d["key"]: [(v.sha256, v.id) for v in store.versions(d["key"])] for d in store.documents()
    }
    monkeypatch.setattr(report_checklist, "PARALLEL_MIN_VERSIONS", 1)
    current = {d["key"]: store.version(d["current_version_id"]).sha256 for d in store.documents()}  # type: ignore[union-attr]
    parallel = ChecklistCache(tmp_path / "parallel")
    with parallel.filling(history.home / "monitor.db", versions, workers=2, current=current):
        pass
    serial = ChecklistCache(tmp_path / "serial")
    for key, items in versions.items():
        for sha, version_id in items:
            text = store.version(version_id).text  # type: ignore[union-attr]
            serial.answers_of(key, sha, returning(text))
    texts = {sha for items in versions.values() for sha, _ in items}
    assert parallel.answers == serial.answers and set(parallel.answers) == texts
    # Workers also wrote each current version's full checklist (quotes included), which the
    # report then reads instead of flagging that text again: the same as computed in-process.
    for key, sha in current.items():
        written = json.loads((parallel.dir / "checklists" / f"{sha}.json").read_text())
        text = store.version(dict(versions[key])[sha]).text  # type: ignore[union-attr]
        assert written == serial.checklist_of(key, sha, returning(text))


def test_a_recorded_decision_shows_and_leaves_the_awaiting_list(
    history: History, tmp_path: Path, page: Page
) -> None:
    from monitor.review import record_decision

    home = tmp_path / "home"
    shutil.copytree(history.home, home)
    store = Store(home)
    first, second = (c["id"] for c in store.changes("example/terms"))
    record_decision(store, first, "acceptable", "Pat Reviewer", "Checked <b>clause 3a</b>")
    record_decision(store, second, "needs-pio", "Pat Reviewer")
    build_site(store)
    page.goto(url(home / "reports" / "changes" / f"{first}.html"))
    expect(page.locator("dd .review")).to_have_text("Acceptable")
    expect(page.locator("dl.facts")).to_contain_text("by Pat Reviewer")
    expect(page.locator(".review-note")).to_have_text("Checked <b>clause 3a</b>")
    page.goto(url(home / "reports" / "index.html"))
    terms = page.locator("table.docs tbody tr").filter(has_text="Terms of Service")
    expect(terms.filter(has_text="Example")).to_contain_text("1 change")  # escalated: still open
    expect(page.locator("table.changes")).to_contain_text("Escalated to the PIO")
    expect(page.locator("table.changes tbody tr")).to_have_count(2)


TERMS_V3 = TERMS_V1.replace(
    "## 4. Section 4",
    "## 3b. Arbitration\nAny dispute between you and Example will be settled by binding "
    "arbitration on an individual basis.\n\n## 4. Section 4",
)


def test_platform_page_shows_the_last_review_and_answers_changed_since(
    history: History, tmp_path: Path, page: Page
) -> None:
    from monitor.report import update_for_review
    from monitor.review import record_decision

    home = tmp_path / "home"
    shutil.copytree(history.home, home)
    platform_page = url(home / "reports" / "platforms" / "example.html")
    page.goto(platform_page)
    expect(page.locator(".last-review")).to_have_text("Not reviewed yet.")

    store = Store(home)
    first, revert = (c["id"] for c in store.changes("example/terms"))
    decision = record_decision(store, revert, "acceptable", "Pat <b>Reviewer</b>")
    update_for_review(store, revert)  # as `tos-monitor review` and `serve` do
    store.close()
    page.goto(platform_page)
    line = page.locator(".last-review")
    expect(line).to_contain_text(
        f"Last reviewed by Pat <b>Reviewer</b> on {decision.decided_at[:10]} (Acceptable)"
    )
    expect(line.locator("time")).to_have_attribute("datetime", decision.decided_at)
    expect(line.get_by_role("link")).to_have_attribute("href", f"../changes/{revert}.html")
    html = (home / "reports" / "platforms" / "example.html").read_text()
    assert "Pat &lt;b&gt;Reviewer&lt;/b&gt;" in html and "<b>Reviewer" not in html
    expect(page.locator("main .changed-since-review:not(.last-review *)")).to_have_count(0)
    page.goto(url(home / "reports" / "platforms" / "other.html"))
    expect(page.locator(".last-review")).to_have_text("Not reviewed yet.")

    # A later night adds an arbitration clause: that answer is no longer the one reviewed.
    try:
        history.server.page("/terms", policy_page(TERMS_V3))
        history.server.page("/privacy", policy_page(PRIVACY_V2))
        night(home)  # the run updates the site itself
    finally:
        history.server.page("/terms", policy_page(TERMS_V1))
    page.goto(platform_page)
    arbitration = page.locator("#q-arbitration .answer-line")
    expect(arbitration.locator(".ans")).to_have_text("yes")
    expect(arbitration.locator(".changed-since-review")).to_have_text(
        "changed since review (was unclear)"
    )
    summary = page.locator("table.checklist tbody tr", has_text="arbitration")
    expect(summary.locator(".changed-since-review")).to_be_visible()
    expect(page.locator("#q-governing-law .changed-since-review")).to_have_count(0)
    expect(page.locator("main .changed-since-review:not(.last-review *)")).to_have_count(2)
    expect(page.locator(".last-review")).to_contain_text("Pat <b>Reviewer</b>")

    # The most recent decision counts, whichever change it is on: the first change's new
    # version already had an arbitration clause, so nothing differs from that review.
    store = Store(home)
    record_decision(store, first, "needs-pio", "Sam Second")
    update_for_review(store, first)
    page.goto(platform_page)
    expect(page.locator(".last-review")).to_contain_text("Last reviewed by Sam Second on")
    expect(page.locator(".last-review")).to_contain_text("(Escalated to the PIO)")
    expect(page.locator("main .changed-since-review:not(.last-review *)")).to_have_count(0)


def test_change_page_shows_the_answers_it_turns_and_the_clause_why(
    history: History, page: Page
) -> None:
    """Version 2 adds an arbitration clause: its change page says the arbitration answer went
    from "unclear" to "yes" because of that added clause; the revert says the opposite."""
    pages = change_pages(history.site)
    page.goto(url(pages["terms-new"]))
    item = page.locator("#answers li.answer-change", has_text="Binding arbitration")
    expect(item).to_contain_text("unclear → yes")
    expect(item.locator("li.clause-added")).to_contain_text("resolved by binding arbitration")
    page.goto(url(pages["terms-revert"]))
    item = page.locator("#answers li.answer-change", has_text="Binding arbitration")
    expect(item).to_contain_text("yes → unclear")
    expect(item.locator("li.clause-removed")).to_contain_text("resolved by binding arbitration")
    # Governing law stays "yes" (California -> Delaware): not an answer this change turns.
    expect(page.locator("#answers li.answer-change", has_text="Governing law")).to_have_count(0)


# --- Compiled templates kept between runs ---------------------------------------------------------


def test_compiled_templates_are_reused_and_an_edited_template_is_compiled_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monitor.report.build import environment

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "page.html").write_text("<p>{{ text }}</p>")
    environment.cache_clear()  # each environment below is a new process's
    try:
        assert environment(templates).get_template("page.html").render(text="<b>") == (
            "<p>&lt;b&gt;</p>"
        )
        compiled = list((tmp_path / "cache" / "tos-monitor" / "report-templates").rglob("*.cache"))
        assert len(compiled) == 1
        # The next process loads that entry instead of compiling the template again.
        compiles: list[str] = []
        real = jinja2.Environment.compile

        def counted(self: jinja2.Environment, source: str, *args: Any, **kwargs: Any) -> Any:
            compiles.append(source)
            return real(self, source, *args, **kwargs)

        monkeypatch.setattr(jinja2.Environment, "compile", counted)
        environment.cache_clear()
        assert environment(templates).get_template("page.html").render(text="&") == "<p>&amp;</p>"
        assert compiles == []
        environment.cache_clear()
        # Edited, the template renders its new text: no stale compiled code survives the edit.
        (templates / "page.html").write_text("<div>{{ text }}</div>")
        assert environment(templates).get_template("page.html").render(text="x") == "<div>x</div>"
        assert compiles == ["<div>{{ text }}</div>"]
        folders = list((tmp_path / "cache" / "tos-monitor" / "report-templates").iterdir())
        assert len(folders) == 1  # the folder of the old fingerprint is gone
    finally:
        environment.cache_clear()


def test_a_damaged_or_unwritable_template_cache_never_breaks_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jinja2.bccache import bc_magic

    from monitor.report.build import environment

    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "page.html").write_text("<p>{{ text }}</p>")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    environment.cache_clear()
    try:
        environment(templates).get_template("page.html")
        # Cut short just past Jinja's header (a disk filled mid-write, say): read as a miss.
        for entry in (tmp_path / "cache").rglob("*.cache"):
            entry.write_bytes(entry.read_bytes()[: len(bc_magic) + 3])
        environment.cache_clear()
        assert environment(templates).get_template("page.html").render(text="a") == "<p>a</p>"
        # A cache folder that cannot be made (a file stands where it would go).
        (tmp_path / "blocked").write_text("")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "blocked"))
        environment.cache_clear()
        assert environment(templates).get_template("page.html").render(text="b") == "<p>b</p>"
    finally:
        environment.cache_clear()
