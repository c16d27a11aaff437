"""Real raw pages as the platforms served them (Open Terms Archive's snapshots, see
fixtures/realpages/README.md), replayed night by night through the real Chromium: every change of
the policy's wording is found, and nothing else is reported.

Each night serves one snapshot per document from a local server; the pages' references to
other hosts resolve nowhere (RESOLVE_NOTHING), as when the shared real-pages set is replayed.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tests.conftest import make_watchlist, run_json
from tests.sites import FIXTURES, PageServer, Route, policy_page

REAL = FIXTURES / "realpages"
# Saved pages reference CDNs, trackers and APIs: none may be reached.
RESOLVE_NOTHING = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"

YOUTUBE_SELECT: dict[str, list[str]] = {"select": [".article-container"],
                  "remove": [".scClientFeedbackInlineFeedbacklinkroot"]}  # fmt: skip
INSTAGRAM_PRIVACY_SELECT: dict[str, list[str]] = {"select": ["#cms-help-content-results", "#root"]}

# document id -> (fixture folder, watchlist keys, night served first, night served then, is the
# second night a change of wording?)
CASES: dict[str, tuple[str, dict[str, list[str]], int, int, bool]] = {
    # Text changed inside a collapsed section (a Google support "zippy").
    "youtube-zippy-select": ("youtube--community-guidelines-harassment", YOUTUBE_SELECT, 14, 15,
                             True),
    "youtube-zippy": ("youtube--community-guidelines-harassment", {}, 14, 15, True),
    # The policy lives in a display:none mount; the page switched language inside it.
    "instagram-hidden-mount": ("instagram--community-guidelines-intellectual-property", {}, 12, 13,
                               True),
    # Only a related-articles list rotated: no change.
    "instagram-related": ("instagram--community-guidelines-intellectual-property", {}, 7, 8,
                          False),
    "instagram-related-select": ("instagram--privacy-policy", INSTAGRAM_PRIVACY_SELECT, 20, 21,
                                 False),
    # A revision date changed in a notice.
    "facebook-terms-notice": ("facebook--terms-of-service", {}, 9, 10, True),
}  # fmt: skip


def serve_night(server: PageServer, which: int) -> None:
    for doc, (folder, _, first, then, _) in CASES.items():
        night = (first, then)[which]
        body = gzip.decompress((REAL / folder / f"{night:02d}.html.gz").read_bytes())
        server.routes[f"/{doc}"] = _route(body)


def _route(body: bytes) -> Route:
    return Route(body)


@pytest.mark.parametrize("render", ["browser", "http"])
def test_real_pages_report_every_wording_change_and_nothing_else(
    server: PageServer, tmp_path: Path, render: str
) -> None:
    # Through a plain GET no script runs, and lxml makes the extraction input (reduce_html).
    documents = {doc: {"url": server.url(f"/{doc}"), "render": render, **keys}
                 for doc, (_, keys, _, _, _) in CASES.items()}  # fmt: skip
    make_watchlist(
        tmp_path,
        documents,
        settings={"chromium_args": [RESOLVE_NOTHING], "timeout": 20, "concurrency": 3},
        platform="real",
    )
    serve_night(server, 0)
    code, summary = run_json(tmp_path)
    assert summary["failures"] == [] and summary["changes"] == [], summary

    # The same pages again: nothing changed, and the fingerprint of exactly what extraction
    # reads lets every page skip extraction.
    code, summary = run_json(tmp_path)
    assert summary["failures"] == [] and summary["changes"] == [], summary
    assert summary["stats"]["extraction_skipped"] == len(CASES)

    serve_night(server, 1)
    code, summary = run_json(tmp_path)
    assert summary["failures"] == [], summary
    changed = {change["document"] for change in summary["changes"]}
    expected = {doc for doc, case in CASES.items() if case[4]}
    assert changed == expected, summary["changes"]
    assert all(change["kind"] == "new" for change in summary["changes"])


# --- The same mechanisms on small generated pages ------------------------------------------------

PANEL_SCRIPT = """<script>
document.querySelectorAll('.panel').forEach(p => { p.style.display = 'none';
  p.setAttribute('aria-hidden', 'true'); });
</script>"""


def collapsible_page(panel_text: str) -> str:
    """Visible text that never changes, and a section its script collapses behind a button."""
    intro = "\n\n".join(f"Section {n}: the service keeps the records it describes here." for n in
                        range(8))  # fmt: skip
    return policy_page(intro).replace(
        "</main>",
        '<h2><button aria-expanded="false">Disputes</button></h2>'
        f'<div class="panel"><p>{panel_text}</p></div></main>{PANEL_SCRIPT}',
    )


def test_a_change_inside_a_collapsed_section_is_found(server: PageServer, tmp_path: Path) -> None:
    make_watchlist(tmp_path, {"terms": {"url": server.url("/terms")}})
    server.page("/terms", collapsible_page("Disputes are settled in the courts of your state."))
    run_json(tmp_path)
    server.page("/terms", collapsible_page("Disputes are settled by binding arbitration."))
    code, summary = run_json(tmp_path)
    assert [c["document"] for c in summary["changes"]] == ["terms"], summary
    history = tmp_path / "snapshots" / "example" / "terms"
    newest = sorted(history.glob("*.md"))[-1].read_text()
    assert "Disputes are settled by binding arbitration." in newest


def layout(sections: list[str], as_list: bool) -> str:
    if as_list:
        return "\n".join(f"- {s}" for s in sections)
    return "\n\n".join(f"## {s}" if n % 3 == 0 else s for n, s in enumerate(sections))


def test_moved_blocks_and_another_layout_of_the_same_sentences_are_not_changes(
    server: PageServer, tmp_path: Path
) -> None:
    sections = [f"Clause {n}: the provider may keep the data described in clause {n}." for n in
                range(10)]  # fmt: skip
    make_watchlist(tmp_path, {"terms": {"url": server.url("/terms")}})
    server.page("/terms", policy_page(layout(sections, as_list=False)))
    run_json(tmp_path)
    # A block moved; then a mobile-like layout (one list) of the same sentences; then back.
    moved = [*sections[3:], *sections[:3]]
    for text in (layout(moved, False), layout(sections, True), layout(sections, False)):
        server.page("/terms", policy_page(text))
        code, summary = run_json(tmp_path)
        assert code == 0 and summary["changes"] == [], summary
    # A changed word is a change, whatever the layout.
    reworded = [s.replace("clause 4.", "clause 44.") for s in sections]
    server.page("/terms", policy_page(layout(reworded, as_list=True)))
    code, summary = run_json(tmp_path)
    assert [c["kind"] for c in summary["changes"]] == ["new"], summary


def test_a_sentence_the_policy_already_had_added_or_dropped_elsewhere_is_a_change(
    server: PageServer, tmp_path: Path
) -> None:
    # Found by bench_run's repeated change nights: the wording was compared as a set of
    # sentences, so a sentence the policy already held, appended to another section, or dropped
    # from one of the two sections that said it, was "the same wording" and never reported.
    repeated = "We may share this information with our partners."
    sections = [f"Clause {n}: the provider keeps the data described in clause {n}." for n in
                range(8)]  # fmt: skip
    sections[2] += " " + repeated
    make_watchlist(tmp_path, {"terms": {"url": server.url("/terms")}})
    server.page("/terms", policy_page(layout(sections, as_list=False)))
    run_json(tmp_path)
    amended = list(sections)
    amended[6] += " " + repeated  # now said of the data of clause 6 too
    for text in (amended, sections):  # added to a section, then dropped from it again
        server.page("/terms", policy_page(layout(text, as_list=False)))
        code, summary = run_json(tmp_path)
        assert [c["kind"] for c in summary["changes"]] in (["new"], ["revert"]), summary
    # The same sections laid out as one list, with a table of contents repeating the headings:
    # still the same wording, no change.
    contents = "\n".join(f"- {s}" for n, s in enumerate(sections) if n % 3 == 0)
    server.page("/terms", policy_page(contents + "\n\n" + layout(sections, as_list=True)))
    code, summary = run_json(tmp_path)
    assert code == 0 and summary["changes"] == [], summary


def test_the_extraction_input_loses_nothing_extraction_reads(
    server: PageServer, tmp_path: Path
) -> None:
    """The browser hands extraction a reduced page (monitor.extract.REDUCE_JS) instead of the
    whole DOM: on real pages, both give the same text."""
    import asyncio

    from monitor.extract import extract_reduced, extract_region, reduce_html
    from monitor.fetch import BrowserFetcher, Page
    from monitor.watchlist import Document, Settings

    pages = [(folder, keys, night) for folder, keys, night, _, _ in CASES.values()]
    for n, (folder, _, night) in enumerate(pages):
        body = gzip.decompress((REAL / folder / f"{night:02d}.html.gz").read_bytes())
        server.routes[f"/{n}"] = _route(body)

    async def fetch_all() -> list[tuple[dict[str, list[str]], Page]]:
        fetcher = BrowserFetcher(Settings(chromium_args=(RESOLVE_NOTHING,)))
        try:
            got = []
            for n, (_, keys, _) in enumerate(pages):
                select, remove = tuple(keys.get("select", [])), tuple(keys.get("remove", []))
                document = Document("real", f"p{n}", f"p{n}", server.url(f"/{n}"), select, remove)
                got.append((keys, await fetcher.fetch(document)))
            return got
        finally:
            await fetcher.close()

    for keys, page in asyncio.run(fetch_all()):
        assert page.reduced is not None and len(page.reduced) < len(page.html)
        select, remove = keys.get("select") or None, keys.get("remove") or None
        full, _ = extract_region(page.html, select, remove)
        assert extract_reduced(page.region, page.reduced) == full
        # lxml's twin of REDUCE_JS, on the page the browser rendered: the same text again.
        twin = reduce_html(page.html, select or (), remove or ())
        assert twin.region == page.region and extract_reduced(twin.region, twin.html) == full


def test_plain_http_pages_hand_extraction_what_it_reads(server: PageServer) -> None:
    """A `render: http` page is reduced by lxml (extract.reduce_html): extracting that input
    gives the text of the whole page, and the next night's identical input is recognised."""
    import asyncio

    from monitor.extract import extract_reduced, extract_region
    from monitor.fetch import HttpFetcher, Page
    from monitor.watchlist import Document, Settings

    pages = [(folder, keys, night) for folder, keys, night, _, _ in CASES.values()]
    bodies = []
    for n, (folder, _, night) in enumerate(pages):
        bodies.append(gzip.decompress((REAL / folder / f"{night:02d}.html.gz").read_bytes()))
        server.routes[f"/{n}"] = _route(bodies[-1])

    async def fetch_all() -> list[tuple[Page, Page]]:
        fetcher = HttpFetcher(Settings())
        try:
            got = []
            for n, (_, keys, _) in enumerate(pages):
                select, remove = tuple(keys.get("select", [])), tuple(keys.get("remove", []))
                document = Document("real", f"p{n}", f"p{n}", server.url(f"/{n}"), select,
                                    remove, render="http")  # fmt: skip
                first = await fetcher.fetch(document)
                got.append((first, await fetcher.fetch(document, first.fingerprint)))
            return got
        finally:
            await fetcher.close()

    for (keys, body), (page, again) in zip(
        [(p[1], b) for p, b in zip(pages, bodies, strict=True)],
        asyncio.run(fetch_all()),
        strict=True,
    ):
        select, remove = keys.get("select") or None, keys.get("remove") or None
        full, _ = extract_region(body.decode("utf-8", "replace"), select, remove)
        assert page.reduced is not None and page.fingerprint is not None
        assert extract_reduced(page.region, page.reduced) == full
        assert again.same_as_known and again.fingerprint == page.fingerprint
