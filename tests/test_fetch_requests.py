"""What a night asks the platforms for: never a page's images, fonts or media (not the policy,
often most of its bytes), and a script or style that several of a platform's documents share
once, from Chromium's HTTP cache, not once per document."""

from __future__ import annotations

import asyncio

from monitor.fetch import BrowserFetcher, FetchPool, FetchResult
from monitor.watchlist import Document, Settings
from tests.sites import PageServer, Route

CLAUSES = "".join(f"<p>Clause {n} of the terms of service applies to you.</p>" for n in range(30))


def _page(title: str) -> str:
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="/site.css"><script src="/bundle.js"></script>
<style>@font-face {{ font-family: Brand; src: url(/brand.woff2) format("woff2"); }}
body {{ font-family: Brand, sans-serif; }}</style></head>
<body><main id="policy"><h1>{title}</h1>{CLAUSES}<img src="/banner.png" alt="">
<video src="/intro.mp4" preload="auto" autoplay muted></video></main></body></html>"""


def _site(server: PageServer) -> list[Document]:
    cached = {"Cache-Control": "public, max-age=3600"}
    server.routes["/bundle.js"] = Route(
        b"window.bundleLoaded = true;", content_type="text/javascript", headers=cached
    )
    server.routes["/site.css"] = Route(
        b"main { margin: 1em; }", content_type="text/css", headers=cached
    )
    heavy = {"/banner.png": "image/png", "/brand.woff2": "font/woff2", "/intro.mp4": "video/mp4"}
    for path, kind in heavy.items():
        server.routes[path] = Route(b"\0" * 2048, content_type=kind, headers=cached)
    documents = []
    for name in ("terms", "privacy"):
        server.page(f"/{name}", _page(name.title()))
        documents.append(
            Document("example", name, name.title(), server.url(f"/{name}"), select=("#policy",))
        )
    return documents


def _fetch_all(documents: list[Document]) -> list[str]:
    async def night() -> list[str]:
        fetcher = BrowserFetcher(Settings())
        try:
            return [(await fetcher.fetch(document)).html for document in documents]
        finally:
            await fetcher.close()

    return asyncio.run(night())


def test_images_fonts_and_media_are_never_requested(server: PageServer) -> None:
    pages = _fetch_all(_site(server))
    assert all("Clause 29 of the terms" in html for html in pages)  # the pages loaded whole
    assert server.hits.get("/site.css") and server.hits.get("/bundle.js")
    blocked = ("/banner.png", "/brand.woff2", "/intro.mp4")
    assert [server.hits.get(path, 0) for path in blocked] == [0, 0, 0]


def test_a_script_and_a_style_two_documents_share_are_downloaded_once_a_night(
    server: PageServer,
) -> None:
    documents = _site(server)
    _fetch_all(documents)
    assert server.hits["/terms"] == server.hits["/privacy"] == 1
    assert (server.hits["/bundle.js"], server.hits["/site.css"]) == (1, 1)
    # The cache lives with the run's browser: the next night asks again.
    _fetch_all(documents)
    assert (server.hits["/bundle.js"], server.hits["/site.css"]) == (2, 2)


def test_a_fresh_fetch_asks_the_server_again_then_the_tab_uses_the_cache_again(
    server: PageServer,
) -> None:
    # A second look at a suspicious change, or a retry, must see what the server says now, not
    # the first look's copy, even of a page and a script the server marked cacheable.
    terms, privacy = _site(server)
    server.page("/terms", _page("Terms"), headers={"Cache-Control": "public, max-age=3600"})

    async def night() -> None:
        fetcher = BrowserFetcher(Settings())
        try:
            await fetcher.fetch(terms)
            await fetcher.fetch(terms)  # the page itself from the cache: the server not asked
            assert (server.hits["/terms"], server.hits["/bundle.js"]) == (1, 1)
            await fetcher.fetch(terms, fresh=True)
            assert (server.hits["/terms"], server.hits["/bundle.js"]) == (2, 2)
            await fetcher.fetch(privacy)  # the same tab, its cache back on
            assert (server.hits["/privacy"], server.hits["/bundle.js"]) == (1, 2)
        finally:
            await fetcher.close()

    asyncio.run(night())


def test_a_retry_asks_the_server_again_even_after_a_cacheable_error(server: PageServer) -> None:
    # A 503 the server marks cacheable (a CDN's error page) must not answer the retry too.
    [terms, _] = _site(server)
    server.routes["/terms"] = [
        Route(b"<html><body>Busy</body></html>", status=503,
              headers={"Cache-Control": "public, max-age=3600"}),
        Route(_page("Terms").encode()),
    ]  # fmt: skip

    async def night() -> FetchResult:
        pool = FetchPool(Settings(), retries=1, backoff=0)
        try:
            return await pool.fetch(terms)
        finally:
            await pool.close()

    result = asyncio.run(night())
    assert (result.error_class, result.attempts, server.hits["/terms"]) == (None, 2, 2)
