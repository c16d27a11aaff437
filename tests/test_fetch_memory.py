"""What keeps a run's memory flat: the Playwright driver (a Node process) starts with a bounded V8
heap unless the user chose one, and a tab serves document after document, its garbage collected
between them, rather than growing or being replaced every time."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from monitor.driver import DRIVER_NODE_OPTIONS
from monitor.fetch import PAGE_REUSES, BrowserFetcher, FetchPool
from monitor.watchlist import Document, Settings
from tests.conftest import driver_processes
from tests.sites import PageServer, policy_page

# A policy long enough to be read as one, for the tests that only need a page to load.
TERMS = "# Terms\n\n" + "Clause one of the terms of service. " * 40


def _driver_environ() -> dict[str, str]:
    """The environment the run's Playwright driver (a child Node process) was started with."""

    async def start() -> dict[str, str]:
        fetcher = BrowserFetcher(Settings())
        await fetcher._ensure_browser()
        try:
            drivers = driver_processes()
            assert drivers, "no Playwright driver process found"
            environ = (drivers[0] / "environ").read_bytes().split(b"\0")
            pairs = (entry.decode().split("=", 1) for entry in environ if b"=" in entry)
            return {name: value for name, value in pairs}
        finally:
            await fetcher.close()

    return asyncio.run(start())


def _driver_node_options() -> str | None:
    return _driver_environ().get("NODE_OPTIONS")


def test_the_driver_gets_a_bounded_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NODE_OPTIONS", raising=False)
    assert _driver_node_options() == DRIVER_NODE_OPTIONS
    assert "NODE_OPTIONS" not in os.environ  # set for the driver only, not left behind


def test_a_users_own_heap_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODE_OPTIONS", "--max-old-space-size=2048")
    assert _driver_node_options() == "--max-old-space-size=2048"
    monkeypatch.setenv("NODE_OPTIONS", "--trace-warnings")
    assert _driver_node_options() == f"--trace-warnings {DRIVER_NODE_OPTIONS}"


def test_the_driver_keeps_its_compiled_code_in_the_users_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The driver's start is mostly compiling Playwright's JavaScript: Node keeps the result in
    # the user's cache folder, so later runs start sooner.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NODE_COMPILE_CACHE", raising=False)
    folder = tmp_path / "cache" / "tos-monitor" / "node-compile-cache"
    assert _driver_environ().get("NODE_COMPILE_CACHE") == str(folder)
    assert "NODE_COMPILE_CACHE" not in os.environ  # set for the driver only
    # Node wrote its cache there (a folder per Node version, holding compiled files).
    assert [p for p in folder.rglob("*") if p.is_file() and p.stat().st_size > 0]


def test_a_users_own_compile_cache_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NODE_COMPILE_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert _driver_environ().get("NODE_COMPILE_CACHE") == str(tmp_path / "mine")
    assert not (tmp_path / "cache").exists()


def test_one_tab_serves_document_after_document(server: PageServer) -> None:
    text = "# Terms\n\n" + "\n\n".join(
        f"Clause {n} of the terms of service." * 5 for n in range(20)
    )
    documents = []
    for n in range(PAGE_REUSES - 1):
        server.page(f"/d{n}", policy_page(text, js=n % 2 == 0))
        documents.append(Document("example", f"d{n}", f"D{n}", server.url(f"/d{n}")))

    async def fetch_all() -> list[int]:
        fetcher = BrowserFetcher(Settings())
        tabs = []
        try:
            for document in documents:
                page = await fetcher.fetch(document)
                assert "Clause 19" in page.html
                [tab] = fetcher._idle[(document.locale, document.timezone)]
                tabs.append(id(tab))
        finally:
            await fetcher.close()
        return tabs

    # Were collecting garbage to fail, each document would close its tab and open another.
    assert len(set(asyncio.run(fetch_all()))) == 1


# A page that leaves ~64 MB of garbage on V8's heap, which V8 would keep until it next needs room.
GARBAGE_SCRIPT = (
    "<script>let held = []; for (let i = 0; i < 64; i++)"
    " held.push(new Array(131072).fill(i + 0.5)); held = null;</script></body>"
)


def test_a_tabs_garbage_is_collected_while_its_next_document_loads(server: PageServer) -> None:
    # The first page leaves ~64 MB of garbage in its tab; the next document's fetch collects it
    # (started as that page commits, finished before the fetch returns).
    server.page("/heavy", policy_page(TERMS).replace("</body>", GARBAGE_SCRIPT))
    server.page("/light", policy_page(TERMS))
    heavy = Document("example", "heavy", "Heavy", server.url("/heavy"))
    light = Document("example", "light", "Light", server.url("/light"))

    async def heap_after(documents: list[Document]) -> int:
        fetcher = BrowserFetcher(Settings())
        try:
            for document in documents:
                await fetcher.fetch(document)
            [tab] = fetcher._idle[(light.locale, light.timezone)]
            usage = await fetcher._tabs[tab][0].send("Runtime.getHeapUsage")
            return int(usage["usedSize"])
        finally:
            await fetcher.close()

    # The garbage is there to collect: left alone, the tab holds it.
    assert asyncio.run(heap_after([heavy])) > 48 * 2**20
    assert asyncio.run(heap_after([heavy, light])) < 16 * 2**20


def test_a_tabs_garbage_collection_starts_as_its_next_document_commits(
    server: PageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The previous document is garbage once the next one commits, and the next one is nearly
    # empty then: the collector has little to mark. The second page's end is held back until its
    # collection starts; were it started only once the page had loaded, it would wait (15 s,
    # then the page ends anyway and the test fails).
    from monitor import fetch

    started = threading.Event()
    seen: list[bool] = []

    def hold() -> None:
        seen.append(started.wait(timeout=15))

    server.page("/first", policy_page(TERMS))
    body = policy_page(TERMS)
    server.page("/second", body, hold=(body.index("Clause one"), hold))

    class Watched(fetch._Collection):
        def start(self) -> None:
            super().start()
            if self._running is not None:
                started.set()

    monkeypatch.setattr(fetch, "_Collection", Watched)
    first = Document("example", "first", "First", server.url("/first"))
    second = Document("example", "second", "Second", server.url("/second"))

    async def fetch_both() -> str:
        fetcher = BrowserFetcher(Settings())
        try:
            await fetcher.fetch(first)  # the tab's first document: nothing to collect
            return (await fetcher.fetch(second)).html
        finally:
            await fetcher.close()

    assert "Clause one" in asyncio.run(fetch_both())
    assert seen == [True]


def test_the_tabs_opened_ahead_are_only_those_the_first_documents_can_use(
    server: PageServer,
) -> None:
    # Four documents on one host: with one request at a time to a host, one tab serves them all.
    # A tab opened beside it would sit idle, then take its turn and grow to a full tab's size.
    documents = []
    for n in range(4):
        server.page(f"/p{n}", policy_page(TERMS))
        documents.append(Document("example", f"p{n}", f"P{n}", server.url(f"/p{n}")))

    async def tabs_after_run(per_host: int) -> int:
        pool = FetchPool(Settings(concurrency=4, per_host=per_host))
        try:
            pool.warm_up(documents)
            results = await asyncio.gather(*(pool.fetch(d) for d in documents))
            assert all(r.page is not None for r in results)
            fetcher = pool._fetchers["browser"]
            assert isinstance(fetcher, BrowserFetcher)
            return len(fetcher._tabs)
        finally:
            await pool.close()

    assert asyncio.run(tabs_after_run(per_host=1)) == 1
    assert asyncio.run(tabs_after_run(per_host=4)) == 4


def test_a_fetch_cancelled_while_its_tab_collects_garbage_closes_that_tab(
    server: PageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A document's budget can run out, or the run be stopped, while the fetch waits for its
    # tab's collection. The tab is then in no known state: it must be closed, not left open
    # and untracked (growing with every later document) until the browser closes.
    from monitor import fetch

    server.page("/p", policy_page(TERMS))
    document = Document("example", "p", "P", server.url("/p"))

    async def open_tabs_after_cancel() -> tuple[int, int]:
        fetcher = BrowserFetcher(Settings())
        try:
            await fetcher.fetch(document)  # the tab's first document: nothing to collect yet
            waiting = asyncio.Event()

            class HeldCollection(fetch._Collection):
                # The real collection, held at the point where the fetch waits for it.
                async def finish(self) -> bool:
                    waiting.set()
                    await asyncio.Event().wait()
                    return await super().finish()

            monkeypatch.setattr(fetch, "_Collection", HeldCollection)
            second = asyncio.ensure_future(fetcher.fetch(document))
            await asyncio.wait_for(waiting.wait(), timeout=30)
            second.cancel()
            with pytest.raises(asyncio.CancelledError):
                await second
            [context] = fetcher._contexts.values()
            idle = sum(len(tabs) for tabs in fetcher._idle.values())
            return len([p for p in context.pages if not p.is_closed()]), idle
        finally:
            await fetcher.close()

    assert asyncio.run(open_tabs_after_cancel()) == (0, 0)


def test_a_closed_fetcher_closes_again_harmlessly_and_can_fetch_again(server: PageServer) -> None:
    server.page("/p", policy_page(TERMS))
    document = Document("example", "p", "P", server.url("/p"))

    async def twice() -> list[str]:
        fetcher = BrowserFetcher(Settings())
        seen = [(await fetcher.fetch(document)).title]
        await fetcher.close()
        await fetcher.close()
        try:
            seen.append((await fetcher.fetch(document)).title)
        finally:
            await fetcher.close()
        return seen

    assert asyncio.run(twice()) == ["Terms", "Terms"]
