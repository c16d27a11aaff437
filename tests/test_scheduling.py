"""How the fetch pool shares its slots between hosts (`FetchPool.turn`)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from monitor.fetch import FetchPool
from monitor.watchlist import Document, Settings
from tests.sites import PageServer, Route, policy_page

TEXT = "# Terms\n\n" + "These terms govern your use of the service. " * 30


@pytest.fixture
def third_party() -> Iterator[PageServer]:
    site = PageServer("127.0.0.2")
    yield site
    site.close()


def test_a_document_waiting_for_its_host_leaves_its_slot_to_another_host(
    server: PageServer, third_party: PageServer
) -> None:
    """A watchlist lists a platform's documents together, and `per_host` lets one of them load
    at a time: the second document of a host waits for the first. While it waits it must not
    hold one of the run's `concurrency` slots, or a night of two-document platforms runs at half
    its concurrency. Here two slots, one request at a time per host, and the order a1, a2, b1:
    b1 must load while a1 is still being answered (a1's answer waits for b1's request)."""
    b1_asked = threading.Event()
    b1_first: list[bool] = []
    page = policy_page(TEXT).encode("utf-8")

    def a1() -> bytes:
        # Answered as soon as b1 is asked for; if b1 cannot be, after 20 s.
        b1_first.append(b1_asked.wait(timeout=20))
        return page

    def b1() -> bytes:
        b1_asked.set()
        return page

    server.routes["/a1"] = Route(a1)
    server.page("/a2", policy_page(TEXT))
    third_party.routes["/b1"] = Route(b1)
    documents = [
        Document("a", "a1", "A1", server.url("/a1"), render="http"),
        Document("a", "a2", "A2", server.url("/a2"), render="http"),
        Document("b", "b1", "B1", third_party.url("/b1"), render="http"),
    ]

    async def night() -> list[str | None]:
        pool = FetchPool(Settings(concurrency=2, per_host=1))
        try:
            results = await asyncio.gather(*(pool.fetch(d) for d in documents))
            return [r.error_class for r in results]
        finally:
            await pool.close()

    assert asyncio.run(night()) == [None, None, None]
    assert b1_first == [True], "b1 waited for a slot held by a document waiting for its host"
