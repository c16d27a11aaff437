"""The nightly pipeline end to end: real Chromium against pages served from 127.0.0.1."""

from __future__ import annotations

import asyncio
import fcntl
import gzip
import random
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from monitor.driver import spawn_for_run
from monitor.program import VALUE_OPTIONS, is_run_command
from monitor.run import LOCK_NAME, run_nightly
from monitor.store import Store, sha256_bytes
from monitor.watchlist import Watchlist, WatchlistError, load
from tests.conftest import (
    browser_processes,
    driver_processes,
    drivers_of_home,
    make_watchlist,
    run_cli,
    run_json,
    wait_for,
)
from tests.sites import FIXTURES, PageServer, Route, policy_page, read_fixture_md

POLICY_V1 = """# Terms of Service

## 1. Who we are
These terms govern your use of the Example service, provided by Example Inc.

## 2. Governing law
These terms are governed by the laws of the State of California, and disputes go to the courts
of Santa Clara County.

## 3. Changes
We may change these terms at any time. Continued use means you accept the changes.
"""
POLICY_V2 = POLICY_V1.replace("State of California", "State of Delaware")
# Pages without scripts read the same through the browser and through a plain GET, where lxml
# makes the reduced extraction input the browser makes (extract.reduce_html, REDUCE_JS).
RENDERS = pytest.mark.parametrize("render", ["browser", "http"])


def night(home: Path) -> dict[str, Any]:
    """One nightly pass through the library; returns the JSON summary a cron job would print."""
    return run_nightly(load(home / "watchlist.yaml"), home).as_json()


def test_first_run_is_a_baseline_then_changes_and_reverts_are_recorded(
    server: PageServer, tmp_path: Path
) -> None:
    server.page("/terms", policy_page(POLICY_V1))
    make_watchlist(tmp_path, {"terms": {"url": server.url("/terms")}})

    code, first = run_json(tmp_path)
    assert code == 0
    assert first["documents"] == 1 and first["changes"] == [] and first["failures"] == []

    server.page("/terms", policy_page(POLICY_V1))  # new noise, same policy
    assert night(tmp_path)["changes"] == []

    server.page("/terms", policy_page(POLICY_V2))
    changes = night(tmp_path)["changes"]
    assert [(c["platform"], c["document"], c["kind"]) for c in changes] == [
        ("example", "terms", "new")
    ]

    server.page("/terms", policy_page(POLICY_V1))
    assert [c["kind"] for c in night(tmp_path)["changes"]] == ["revert"]

    store = Store(tmp_path)
    versions = store.versions("example/terms")
    assert len(versions) == 2, "a revert points at the earlier version instead of copying it"
    assert "State of Delaware" in versions[1].text
    assert "We use cookies" not in versions[0].text and "request" not in versions[0].text
    kinds = [(c["kind"], c["from_version_id"], c["to_version_id"]) for c in store.changes()]
    assert kinds == [("new", versions[0].id, versions[1].id), ("revert", versions[1].id,
                                                                versions[0].id)]  # fmt: skip
    assert len(store.fetches("example/terms")) == 4


def test_snapshot_files_hold_the_text_and_raw_page_and_match_the_database(
    server: PageServer, tmp_path: Path
) -> None:
    server.page("/terms", policy_page(POLICY_V1))
    make_watchlist(tmp_path, {"terms": {"url": server.url("/terms")}})
    night(tmp_path)
    server.page("/terms", policy_page(POLICY_V2))
    night(tmp_path)

    store = Store(tmp_path)
    for version in store.versions("example/terms"):
        text_file = tmp_path / version.snapshot_path
        assert text_file.parent == tmp_path / "snapshots" / "example" / "terms"
        assert text_file.read_text(encoding="utf-8") == version.text
        raw = gzip.decompress((tmp_path / version.raw_path).read_bytes()).decode()
        assert "<main" in raw and "cookie-banner" in raw, "the raw page is kept for re-extraction"
        row = store.db.table("versions").get(version.id)
        assert row["snapshot_sha256"] == sha256_bytes(text_file.read_bytes())
    leftovers = list((tmp_path / "snapshots").rglob(".tmp-*"))
    assert leftovers == []


def test_a_night_syncs_its_document_records_together_and_its_end_at_once(
    server: PageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The document phase's commits are flushed to the disk together (`Store.synced_once`), and
    the run's end, once the report and the alerts are done, is flushed as it commits: a run that
    says it finished is on the disk whole."""
    levels: dict[str, set[int]] = {}

    def spy(name: str) -> None:
        original = getattr(Store, name)

        def recorded(self: Store, *args: object, **kwargs: object) -> object:
            [(level,)] = self.db.execute("PRAGMA synchronous").fetchall()
            levels.setdefault(name, set()).add(int(level))
            return original(self, *args, **kwargs)

        monkeypatch.setattr(Store, name, recorded)

    for name in ("start_run", "add_fetch", "touch_version", "add_version", "add_change",
                 "finish_run"):  # fmt: skip
        spy(name)
    server.page("/terms", policy_page(POLICY_V1))
    server.page("/privacy", policy_page(POLICY_V1.replace("Terms of Service", "Privacy Policy")))
    make_watchlist(
        tmp_path,
        {"terms": {"url": server.url("/terms")}, "privacy": {"url": server.url("/privacy")}},
    )
    night(tmp_path)
    server.page("/terms", policy_page(POLICY_V2))
    second = night(tmp_path)
    assert [c["document"] for c in second["changes"]] == ["terms"]
    assert levels == {
        "start_run": {1}, "add_fetch": {1}, "touch_version": {1}, "add_version": {1},
        "add_change": {1}, "finish_run": {2},
    }  # fmt: skip
    assert Store(tmp_path).db.execute("select status from runs").fetchall() == [("ok",), ("ok",)]


def test_javascript_rendered_policy_is_waited_for(server: PageServer, tmp_path: Path) -> None:
    server.page("/terms", policy_page(POLICY_V1, js=True))
    make_watchlist(tmp_path, {"terms": {"url": server.url("/terms")}})
    night(tmp_path)
    [version] = Store(tmp_path).versions("example/terms")
    assert "Santa Clara County" in version.text
    assert "## 2. Governing law" in version.text


def test_plain_http_documents_do_not_start_the_browser(server: PageServer, tmp_path: Path) -> None:
    server.page("/terms", policy_page(POLICY_V1))
    make_watchlist(tmp_path, {"terms": {"url": server.url("/terms"), "render": "http"}})
    run = run_nightly(load(tmp_path / "watchlist.yaml"), tmp_path)
    assert run.stats["launch_seconds"] == 0
    [fetch] = Store(tmp_path).fetches("example/terms")
    assert fetch["renderer"] == "http" and fetch["outcome"] == "baseline"
    assert fetch["http_status"] == 200


@RENDERS
def test_select_and_remove_keep_only_the_policy(
    server: PageServer, tmp_path: Path, render: str
) -> None:
    page = policy_page(POLICY_V1).replace(
        "<h2>3. Changes</h2>", '<div class="share">Share this page</div><h2>3. Changes</h2>'
    )
    server.page("/terms", page)
    make_watchlist(
        tmp_path,
        {"terms": {"url": server.url("/terms"), "select": ["#policy"], "remove": [".share"],
                   "render": render}},
    )  # fmt: skip
    night(tmp_path)
    [version] = Store(tmp_path).versions("example/terms")
    assert "Share this page" not in version.text
    assert version.text.startswith("# Terms of Service")


@RENDERS
def test_ignore_patterns_hide_a_line_from_comparison_but_keep_it(
    server: PageServer, tmp_path: Path, render: str
) -> None:
    server.page("/terms", policy_page(POLICY_V1 + "\nLast visited: Monday\n"))
    make_watchlist(
        tmp_path,
        {"terms": {"url": server.url("/terms"), "ignore": ["^Last visited:.*$"], "render": render}},
    )
    night(tmp_path)
    server.page("/terms", policy_page(POLICY_V1 + "\nLast visited: Tuesday\n"))
    assert night(tmp_path)["changes"] == []
    [version] = Store(tmp_path).versions("example/terms")
    assert "Last visited: Monday" in version.text


def test_locale_and_time_zone_are_pinned_and_recorded(server: PageServer, tmp_path: Path) -> None:
    server.page(
        "/terms",
        "<html><body><main><p id=p></p></main><script>document.getElementById('p').textContent"
        " = 'Served for ' + navigator.language + ' in ' + Intl.DateTimeFormat()"
        ".resolvedOptions().timeZone + '. ' + 'These terms govern the service. '.repeat(3);"
        "</script></body></html>",
    )
    make_watchlist(
        tmp_path,
        {"terms": {"url": server.url("/terms"), "locale": "fr-FR", "timezone": "Europe/Paris"}},
    )
    night(tmp_path)
    [version] = Store(tmp_path).versions("example/terms")
    assert "Served for fr-FR in Europe/Paris" in version.text
    [fetch] = Store(tmp_path).fetches("example/terms")
    assert (fetch["locale"], fetch["timezone"]) == ("fr-FR", "Europe/Paris")


@RENDERS
def test_real_noise_pairs_record_no_change(server: PageServer, tmp_path: Path, render: str) -> None:
    """Real back-to-back snapshots whose HTML differs but whose policy text does not."""
    html = FIXTURES / "html"
    pairs = {
        "x-tos": sorted((html / "noise-pairs" / "x-twitter-terms-of-service").glob("*.html.gz")),
        "youtube-privacy": sorted((html / "youtube-privacy-policy").glob("*.html.gz")),
    }
    assert all(len(files) == 2 for files in pairs.values()), "noise-pair fixtures are missing"
    documents = {name: {"url": server.url(f"/{name}"), "render": render} for name in pairs}
    make_watchlist(tmp_path, documents, settings={"min_chars": 200})
    for night_index in range(2):
        for name, files in pairs.items():
            server.page(f"/{name}", read_fixture_md(files[night_index]))
        summary = night(tmp_path)
        assert summary["failures"] == []
        assert summary["changes"] == []
    for name in pairs:
        [version] = Store(tmp_path).versions(f"example/{name}")
        assert len(version.text) > 5000


def test_replaying_real_versions_night_by_night(server: PageServer, tmp_path: Path) -> None:
    """Six real Facebook ToS versions, each served on two noisy nights (one JavaScript-rendered),
    then a real Instagram A -> B -> A flip: one change per real text change, none on noise
    nights, and the flip back is a revert."""
    versions = [
        read_fixture_md(p)
        for p in sorted((FIXTURES / "corpus" / "facebook-terms-of-service").glob("*.md.gz"))
    ]
    flip = [
        read_fixture_md(p)
        for p in sorted((FIXTURES / "corpus" / "instagram-terms-of-service-flip").glob("*.gz"))
    ]
    assert len(versions) == 6 and len(flip) == 3 and flip[0] == flip[2] != flip[1]
    rng = random.Random(7)
    make_watchlist(
        tmp_path,
        {
            "facebook-tos": {"url": server.url("/fb")},
            "instagram-tos": {"url": server.url("/ig")},
        },
    )
    recorded: list[tuple[str, str]] = []
    nights = [(v, f) for v, f in zip(versions, [flip[0]] * 3 + flip, strict=True)]
    for fb_text, ig_text in nights:
        for js in (False, True):
            server.page("/fb", policy_page(fb_text, rng, js=js))
            server.page("/ig", policy_page(ig_text, rng))
            summary = night(tmp_path)
            assert summary["failures"] == []
            recorded += [(c["document"], c["kind"]) for c in summary["changes"]]

    assert recorded == [("facebook-tos", "new")] * 3 + [
        ("facebook-tos", "new"), ("instagram-tos", "new"),
        ("facebook-tos", "new"), ("instagram-tos", "revert"),
    ]  # fmt: skip
    store = Store(tmp_path)
    assert len(store.versions("example/facebook-tos")) == 6
    assert len(store.versions("example/instagram-tos")) == 2


def test_full_text_search_index_covers_versions(server: PageServer, tmp_path: Path) -> None:
    server.page("/terms", policy_page(POLICY_V1))
    make_watchlist(tmp_path, {"terms": {"url": server.url("/terms")}})
    night(tmp_path)
    db = sqlite3.connect(tmp_path / "monitor.db")
    hits = db.execute(
        "select rowid from versions_fts where versions_fts match 'santa clara'"
    ).fetchall()
    assert len(hits) == 1


def test_cli_history_and_show(server: PageServer, tmp_path: Path) -> None:
    server.page("/terms", policy_page(POLICY_V1))
    make_watchlist(tmp_path, {"terms": {"url": server.url("/terms")}})
    night(tmp_path)
    server.page("/terms", policy_page(POLICY_V2))
    night(tmp_path)

    history = run_cli(tmp_path, "history", "example", "terms")
    assert history.returncode == 0
    assert "v1" in history.stdout and "v2" in history.stdout and "new" in history.stdout

    as_json = run_cli(tmp_path, "history", "example", "terms", "--json")
    import json

    data = json.loads(as_json.stdout)
    assert [c["kind"] for c in data["changes"]] == ["new"]
    second = data["versions"][1]["version_id"]

    shown = run_cli(tmp_path, "show", str(second))
    assert shown.returncode == 0 and "State of Delaware" in shown.stdout

    missing = run_cli(tmp_path, "show", "999")
    assert missing.returncode == 2 and "no version 999" in missing.stderr


@RENDERS
def test_without_select_the_pages_only_main_element_is_what_is_compared(
    server: PageServer, tmp_path: Path, render: str
) -> None:
    # No `select`: the policy sits in the page's only <main>, the nightly noise outside it.
    make_watchlist(tmp_path, {"terms": {"url": server.url("/terms"), "render": render}})
    skipped, kinds = [], []
    for text in (POLICY_V1, POLICY_V1, POLICY_V2, POLICY_V2):
        server.page("/terms", policy_page(text))
        summary = night(tmp_path)
        skipped.append(summary["stats"]["extraction_skipped"])
        kinds.append([f["outcome"] for f in Store(tmp_path).fetches("example/terms")][-1])
    assert kinds == ["baseline", "unchanged", "new", "unchanged"]
    assert skipped == [0, 1, 0, 1]
    # Two <main> elements: no single region to compare, so the page is extracted every night.
    for _ in range(2):
        two = policy_page(POLICY_V2).replace("<footer>", "<main hidden>promo</main><footer>")
        server.page("/terms", two)
        summary = night(tmp_path)
        assert summary["changes"] == [] and summary["stats"]["extraction_skipped"] == 0


@RENDERS
def test_an_unchanged_visible_text_skips_extraction_but_a_change_does_not(
    server: PageServer, tmp_path: Path, render: str
) -> None:
    terms = {"url": server.url("/terms"), "select": ["#policy"], "render": render}
    make_watchlist(tmp_path, {"terms": terms})
    known = []
    for text in (POLICY_V1, POLICY_V1, POLICY_V2, POLICY_V2):
        server.page("/terms", policy_page(text))  # fresh noise around the policy every night
        night(tmp_path)
        store = Store(tmp_path)
        document = store.document("example/terms") or {}
        known.append(store.known_fingerprint("example/terms", document["current_version_id"]))
        store.close()
    store = Store(tmp_path)
    fetches = store.fetches("example/terms")
    assert [f["outcome"] for f in fetches] == ["baseline", "unchanged", "new", "unchanged"]
    assert None not in known and known[0] == known[1] != known[2] == known[3]
    assert len(store.versions("example/terms")) == 2
    # Editing the selectors invalidates the fingerprint: the text is extracted again.
    make_watchlist(tmp_path, {"terms": {**terms, "remove": ["h2"]}})
    assert [c["kind"] for c in night(tmp_path)["changes"]] == ["new"]


def test_run_json_marks_a_repeated_flip_quiet_as_the_reviewer_saw_it(
    server: PageServer, tmp_path: Path
) -> None:
    """A -> B -> A -> B: the first B alerts, the second B is a flip already reported, recorded
    quietly; `run --json` says which is which, so a script sees what the reviewer saw."""
    server.page("/terms", policy_page(POLICY_V1))
    make_watchlist(tmp_path, {"terms": {"url": server.url("/terms")}})
    assert run_json(tmp_path)[0] == 0
    seen = []
    for text in (POLICY_V2, POLICY_V1, POLICY_V2):
        server.page("/terms", policy_page(text))
        code, summary = run_json(tmp_path)
        assert code == 0
        seen += [(c["kind"], c["quiet"]) for c in summary["changes"]]
    assert seen == [("new", False), ("revert", False), ("revert", True)]
    quiet = {c["id"]: bool(c["quiet"]) for c in Store(tmp_path).changes("example/terms")}
    assert list(quiet.values()) == [False, False, True], "the JSON says what the records say"


def test_a_run_starts_the_browser_before_importing_its_stages() -> None:
    # What `tos-monitor run` imports before it can start Chromium's driver adds to every night's
    # fixed start; the SQLite layer, extraction, httpx and rich are imported while the driver
    # starts (`monitor.run._stages`). A module-level import of one of them here fails this.
    heavy = ["sqlite_utils", "numpy", "httpx", "rich", "monitor.store", "monitor.check",
             "monitor.extract", "monitor.changes", "monitor.audit", "playwright", "soupsieve",
             "bs4"]  # fmt: skip
    code = (
        "import sys, monitor.cli, monitor.fetch, monitor.progress, monitor.run; "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_run_loads_its_watchlist_while_the_driver_starts(
    server: PageServer, tmp_path: Path
) -> None:
    # `tos-monitor run` hands the run a loader: the driver (a Node process, ~0.3 s to start) is
    # spawned first and the watchlist loads beside it. The loader sees the driver already there.
    server.page("/terms", policy_page(POLICY_V1))
    path = make_watchlist(tmp_path, {"terms": {"url": server.url("/terms")}})
    seen: list[list[Path]] = []

    def loader() -> Watchlist:
        seen.append(driver_processes())
        return load(path)

    summary = run_nightly(loader, tmp_path)
    assert seen and seen[0], "the driver was not spawned before the watchlist was loaded"
    assert summary.counts()["documents"] == 1 and not summary.failures
    assert Store(tmp_path).document("example/terms") is not None
    assert driver_processes() == []  # stopped with the run


def test_a_run_whose_watchlist_fails_to_load_stops_the_driver(tmp_path: Path) -> None:
    (tmp_path / "watchlist.yaml").write_text("settings: {concurrency: 0}\nplatforms: {}\n")
    with pytest.raises(WatchlistError, match="concurrency"):
        run_nightly(lambda: load(tmp_path / "watchlist.yaml"), tmp_path)
    assert driver_processes() == []
    assert not (tmp_path / "monitor.db").exists()  # nothing recorded


def test_a_run_with_no_browser_document_stops_the_driver_it_started(
    server: PageServer, tmp_path: Path
) -> None:
    server.page("/terms", policy_page(POLICY_V1))
    path = make_watchlist(tmp_path, {"terms": {"url": server.url("/terms"), "render": "http"}})
    summary = run_nightly(lambda: load(path), tmp_path)
    # The driver was stopped without starting a browser, and is gone with the run.
    assert not summary.failures and summary.stats["launch_seconds"] == 0
    assert driver_processes() == []


def test_the_program_knows_a_run_from_its_arguments() -> None:
    # `tos-monitor` spawns the driver before parsing its command line only for `run`: the
    # program's options come first, --home and --watchlist with a value.
    runs = [
        ["run"],
        ["run", "--json", "--only", "x"],
        ["--home", "h", "run"],
        ["--home=h", "--watchlist", "w.yaml", "run"],
        ["--watchlist=run", "run"],
    ]
    others = [[], ["report"], ["--home", "run", "report"], ["--watchlist", "run"],
              ["run", "--help"], ["--help", "run"], ["--version"], ["demo"], ["runs"]]  # fmt: skip
    assert all(is_run_command(args) for args in runs)
    assert not any(is_run_command(args) for args in others)
    # The options it skips with their value are the CLI's own: adding one to `cli.main` fails
    # this until the program knows it too.
    from monitor.cli import main

    valued = {o for p in main.params if not getattr(p, "is_flag", False) for o in p.opts}
    assert valued == set(VALUE_OPTIONS)


def test_the_program_spawns_the_driver_before_it_imports_the_cli() -> None:
    # What the program imports before it can spawn the driver delays every run's first page:
    # only Playwright's Python side and asyncio. The CLI, the watchlist's YAML and the stages
    # are imported while Node starts. A module-level import in monitor.driver fails this.
    code = (
        "import sys; from monitor.driver import spawn_for_run; spawn_for_run(); "
        "early = [m for m in ('click', 'yaml', 'monitor.cli', 'monitor.watchlist', "
        "'monitor.fetch', 'monitor.run') if m in sys.modules]; "
        "from tests.conftest import driver_processes; print(len(driver_processes()), early)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1 []"


def test_a_run_takes_the_driver_the_program_spawned(
    server: PageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import monitor.driver
    import monitor.fetch

    server.page("/terms", policy_page(POLICY_V1))
    path = make_watchlist(tmp_path, {"terms": {"url": server.url("/terms")}})
    spawn_for_run()
    early = driver_processes()
    assert len(early) == 1

    async def no_second_driver() -> None:
        raise AssertionError("the run started a driver of its own")

    monkeypatch.setattr(monitor.driver, "start_driver", no_second_driver)
    monkeypatch.setattr(monitor.fetch, "start_driver", no_second_driver)
    seen: list[list[Path]] = []

    def loader() -> Watchlist:
        seen.append(driver_processes())
        return load(path)

    summary = run_nightly(loader, tmp_path)
    assert seen == [early]  # the same Node process, already there when the watchlist loaded
    assert summary.counts()["documents"] == 1 and not summary.failures
    assert summary.stats["launch_seconds"] > 0  # Chromium was started through it
    assert driver_processes() == []  # stopped with the run


def test_a_run_that_cannot_start_leaves_no_driver_behind(tmp_path: Path) -> None:
    # The program spawns the driver before it knows whether the run can go on: a home another
    # run holds, a missing watchlist, a watchlist with no document for a browser.
    make_watchlist(tmp_path, {"terms": {"url": "http://127.0.0.1:9/terms", "render": "http",
                                        "timeout": 2}})  # fmt: skip
    with open(tmp_path / LOCK_NAME, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        locked = run_cli(tmp_path, "run", timeout=30)
    assert locked.returncode == 3, locked.stderr
    missing = run_cli(tmp_path / "nowhere", "run", timeout=30)
    assert missing.returncode == 2 and "file not found" in missing.stderr
    plain = run_cli(tmp_path, "run", "--json", timeout=60)
    assert plain.returncode == 1, plain.stderr  # the one document fails: nothing listens on :9
    for home in (tmp_path, tmp_path / "nowhere"):

        def no_driver(h: Path = home) -> bool:
            return not drivers_of_home(h)

        assert wait_for(no_driver, seconds=10), drivers_of_home(home)


def test_a_quiet_night_does_not_load_the_flagger(server: PageServer, tmp_path: Path) -> None:
    # The flagger and numpy's models are for nights with a change (or a first report); a night
    # on which nothing changed renders its report from cached answers without them. numpy is
    # not even imported: sqlite-utils would import it to name column types (`monitor.store`),
    # ~0.14 s of CPU beside the browser's start.
    server.page("/terms", policy_page(POLICY_V1))
    make_watchlist(tmp_path, {"terms": {"url": server.url("/terms")}})
    assert run_json(tmp_path)[0] == 0  # the first night: its report flags the baseline
    server.page("/terms", policy_page(POLICY_V1))  # fresh noise, same policy
    code = (
        "import sys; from pathlib import Path; from monitor.run import run_nightly; "
        "from monitor.watchlist import load; home = Path(sys.argv[1]); "
        "summary = run_nightly(load(home / 'watchlist.yaml'), home); "
        "print(summary.counts()['unchanged'], 'monitor.flag' in sys.modules, "
        "'numpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                         text=True, timeout=120, check=True)  # fmt: skip
    assert out.stdout.split() == ["1", "False", "False"]
    assert (tmp_path / "reports" / "index.html").exists()


def test_changes_are_flagged_once_the_browser_has_closed_but_only_so_many_wait(
    server: PageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The flagger (~100 MB) beside Chromium made every night with changes the run's memory
    # peak; a changed document's flags now wait for the browser to close. Each waiting document
    # holds its page, so past the bound (one here) the others are flagged at once.
    import monitor.check
    import monitor.run

    for i in range(3):
        server.page(f"/d{i}", policy_page(POLICY_V1 + f"\n## {i}. Document\nDocument {i}.\n"))
    armed, served = threading.Event(), threading.Event()

    def last_page() -> bytes:
        # Tonight the last document answers only once two changes have been flagged, so those
        # two certainly ran while the browser was up (fetching it), whatever the machine's speed.
        if armed.is_set():
            served.wait(60)
        return policy_page(POLICY_V1).encode()

    server.routes["/last"] = Route(last_page)
    documents = {f"d{i}": {"url": server.url(f"/d{i}")} for i in range(3)}
    documents["last"] = {"url": server.url("/last")}
    make_watchlist(tmp_path, documents, {"concurrency": 4, "per_host": 4})
    assert night(tmp_path)["changes"] == []

    for i in range(3):
        server.page(f"/d{i}", policy_page(POLICY_V2 + f"\n## {i}. Document\nDocument {i}.\n"))
    browser_up: list[bool] = []
    flag = monitor.check.flag_change

    def watched(*args: object) -> object:
        browser_up.append(bool(browser_processes()))
        if len(browser_up) == 2:
            served.set()
        return flag(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(monitor.check, "flag_change", watched)
    monkeypatch.setattr(monitor.run, "HELD_CHANGES", 1)
    armed.set()
    summary = night(tmp_path)
    assert browser_up == [True, True, False]  # the held one last, with no browser left
    changes = Store(tmp_path).changes()
    assert len(changes) == 3 == len(summary["changes"])
    assert all("governing-law" in c["flags"] for c in changes)


def test_the_command_exits_with_its_status_after_the_exit_handlers(tmp_path: Path) -> None:
    # `monitor.cli.entry` ends the process without the interpreter's teardown: exit handlers
    # (logging's, multiprocessing's) must still run, and the status be the command's.
    marker = tmp_path / "ran"
    code = (
        "import atexit, sys, monitor.cli\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write('ran'))\n"
        "sys.argv = ['tos-monitor', '--home', sys.argv[1], 'run']\n"
        "monitor.cli.entry()\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2 and "file not found" in result.stderr  # no watchlist here
    assert marker.read_text() == "ran"


def test_the_command_waits_for_a_thread_still_working(tmp_path: Path) -> None:
    # A thread that is not a daemon still running when the command returns: the normal exit
    # waits for it, and so must this one.
    marker = tmp_path / "done"
    code = (
        "import sys, threading, time, monitor.cli\n"
        "def late():\n"
        "    time.sleep(0.5)\n"
        f"    open({str(marker)!r}, 'w').write('done')\n"
        "threading.Thread(target=late).start()\n"
        "sys.argv = ['tos-monitor', '--version']\n"
        "monitor.cli.entry()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0 and "tos-monitor" in result.stdout
    assert marker.read_text() == "done"


def test_many_http_documents_are_reduced_in_worker_processes_as_in_threads(
    server: PageServer, tmp_path: Path
) -> None:
    # A run with many `render: http` documents reduces their pages in worker processes (both
    # cores); what it records must be what threads record, on a first night and a noisy second.
    from monitor.fetch import HTTP_WORKERS_MIN, FetchPool, HttpFetcher

    rng = random.Random(3)
    n = HTTP_WORKERS_MIN
    texts = [POLICY_V1.replace("Example", f"Example {i}") for i in range(n)]
    documents = {f"d{i}": {"url": server.url(f"/d{i}"), "render": "http"} for i in range(n)}
    homes = {workers: tmp_path / f"workers{workers}" for workers in (1, 2)}
    for home in homes.values():
        home.mkdir()
        make_watchlist(home, documents, {"concurrency": 4, "per_host": 4})
    for _ in range(2):
        for i, text in enumerate(texts):
            server.page(f"/d{i}", policy_page(text, rng))
        runs = {w: run_nightly(load(h / "watchlist.yaml"), h, workers=w) for w, h in homes.items()}
        assert runs[1].counts() == runs[2].counts()
    assert runs[2].stats["extraction_skipped"] == n  # the second night: every page unchanged

    def current_texts(home: Path) -> list[str]:
        store = Store(home)
        rows = [store.document(f"example/d{i}") or {} for i in range(n)]
        return [getattr(store.version(r["current_version_id"]), "text", "") for r in rows]

    texts_by_workers = {w: current_texts(h) for w, h in homes.items()}
    assert texts_by_workers[1] == texts_by_workers[2]
    assert "Example 7 Inc." in texts_by_workers[2][7]

    async def fetch_all() -> tuple[list[object], bool]:
        docs = list(load(homes[2] / "watchlist.yaml").documents(None))
        pool = FetchPool(load(homes[2] / "watchlist.yaml").settings, workers=2)
        pool.warm_up(docs)
        fetcher = pool._fetcher("http")
        assert isinstance(fetcher, HttpFetcher) and fetcher._processes is not None
        first = await pool.fetch(docs[0])
        # A worker killed (out of memory, by an admin): the night goes on in threads.
        for process in list(fetcher._processes._processes.values()):
            process.kill()
        results = [first, *[await pool.fetch(d) for d in docs[1:4]]]
        await pool.close()
        return [r.page.fingerprint if r.page else r.error_class for r in results], (
            fetcher._processes is None
        )

    fingerprints, fell_back = asyncio.run(fetch_all())
    assert all(isinstance(f, str) and len(f) == 32 for f in fingerprints)
    assert fell_back
