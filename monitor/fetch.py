"""Stage 2: fetch each document's page, with the browser (JavaScript runs) or a plain HTTP GET.

Fetch strategies are registered by the watchlist's `render` value. One browser serves the whole
run; a small pool of pages is reused across documents because opening a page costs more than
loading a policy into one that is already open. Nothing here raises for a failed page: a failure is
a FetchResult with an error class, so one bad document never stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from monitor import __version__
from monitor.driver import start_driver, stop_driver
from monitor.pause import pause_at
from monitor.watchlist import Document, Settings

if TYPE_CHECKING:
    import httpx

# httpx, Playwright and extraction are imported where they are first used: a run starts
# Chromium's driver as soon as it has read its watchlist, and every import before that adds to
# the run's fixed start (`monitor.run`).

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # The network service runs in the browser process instead of a process of its own: measured
    # here, ~18 MB less for the run at no cost in speed. Chromium keeps only the last
    # --enable-features, so this one repeats the two Playwright 1.65 passes itself.
    "--enable-features=NetworkServiceInProcess2,CDPScreenshotNewSurface,"
    "SkipListAccountsWithoutGaiaCookies",
]
DEFAULT_USER_AGENT = f"tos-monitor/{__version__} (public-records monitor of platform terms)"
MAX_BYTES = 20 * 1024 * 1024
# A document still downloading at the timeout with this much in is taken as too large (_SizeWatch).
STILL_ARRIVING_BYTES = 5 * 1024 * 1024
# Never the policy, often most of a page's bytes: refused before they are requested. DevTools'
# resource types, refused on each tab's own DevTools session (`_new_tab`), not through
# Playwright's request routing, which sends every request through the driver to Python and
# back and turns Chromium's HTTP cache off: a platform's documents that share script bundles
# then downloaded them again for each document. A cross-site frame runs in a renderer this
# session does not reach: its images load, as the platform's page would show them.
BLOCKED_RESOURCES = ("Image", "Media", "Font")
_BLOCK_PATTERNS = [
    {"urlPattern": "*", "resourceType": kind, "requestStage": "Request"}
    for kind in BLOCKED_RESOURCES
]
PAGE_REUSES = 25
TRANSIENT = {"timeout", "connection", "http-5xx", "http-429"}

# Error classes a FetchResult may carry; README's "Reading the results" explains each, and
# messages.HINTS must hold an admin hint for each (a test checks).
ERROR_CLASSES = (
    "dns", "connection", "tls", "timeout", "http-4xx", "http-429", "http-5xx",
    "not-html", "too-large", "redirected", "blocked", "suspect", "selector-missing", "empty",
    "browser",
)  # fmt: skip


@dataclass
class FetchResult:
    document: Document
    url: str
    started_at: str
    renderer: str
    duration_ms: int = 0
    final_url: str = ""
    http_status: int | None = None
    page: Page | None = None
    error_class: str | None = None
    message: str = ""
    attempts: int = 1
    notes: list[str] = field(default_factory=list)
    relocated: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_class is None


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FetchFailure(Exception):
    def __init__(
        self,
        error_class: str,
        message: str,
        status: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.error_class = error_class
        self.status = status
        self.retry_after = retry_after


@dataclass
class Page:
    """What a fetcher got: the page's HTML, or a PDF's bytes in `raw`."""

    html: str
    status: int | None
    final_url: str
    content_type: str
    title: str = ""
    raw: bytes | None = None
    # What extraction reads (`extract.REDUCE_JS`) and its region, when the browser made it; the
    # full `html` is still kept as the raw snapshot of a new version.
    reduced: str | None = None
    region: str = ""
    # Fingerprint of that input (`input_fingerprint`); with no html, it matched `known`.
    fingerprint: str | None = None

    @property
    def same_as_known(self) -> bool:
        return self.fingerprint is not None and not self.html and self.raw is None


def classify_status(status: int) -> str | None:
    if status == 429:
        return "http-429"
    if 400 <= status < 500:
        return "http-4xx"
    if status >= 500:
        return "http-5xx"
    return None


# What Chromium (net::ERR_NAME_NOT_RESOLVED, ..._RESOLUTION_FAILED) and the system's resolver,
# through httpx, say of a host name that does not resolve.
_DNS_ERRORS = ("name_not_resolved", "name_resolution_failed", "name or service not known",
               "getaddrinfo", "failure in name resolution", "no address associated")  # fmt: skip
# Refused, reset, unreachable, a machine without a network, and any other error Chromium names
# (net::ERR_...): asked after the classes above, so a named DNS, TLS or timeout error keeps its own.
_CONNECTION_ERRORS = ("refused", "reset", "connection", "empty_response", "unreachable",
                      "net::err_")  # fmt: skip


def classify_network_error(message: str) -> str:
    """Map Chromium's net:: codes and httpx's exception text to our small set of classes.

    A network error is never `browser`, which tells the admin that Chromium itself failed: a
    machine without a network (net::ERR_INTERNET_DISCONNECTED, or "Network is unreachable")
    or any other error Chromium names as net::ERR_... is `connection`, and the message says which.
    """
    text = message.lower()
    if any(phrase in text for phrase in _DNS_ERRORS):
        return "dns"
    if "cert" in text or "ssl" in text or "tls" in text:
        return "tls"
    if "timeout" in text or "timed out" in text or "timed_out" in text:
        return "timeout"
    if any(phrase in text for phrase in _CONNECTION_ERRORS):
        return "connection"
    return "browser"


class Fetcher(Protocol):
    async def fetch(
        self, document: Document, known: str | None = None, fresh: bool = False
    ) -> Page:
        """Return the page, or raise FetchFailure. `fresh`: nothing may come from a cache (a
        second look at a suspicious change, a retry)."""
        ...

    async def close(self) -> None: ...


def find_chromium(settings: Settings) -> str | None:
    """Settings, then TOS_MONITOR_CHROMIUM, then Playwright's own browser, then the system's."""
    for candidate in (settings.chromium, os.environ.get("TOS_MONITOR_CHROMIUM", "")):
        if candidate:
            return candidate
    own = _playwright_chromium()
    if own:
        return None  # None tells Playwright to use the browser it installed itself
    # The headless shell (Debian: chromium-headless-shell) is what Playwright itself runs
    # headless: measured here, 4 pages take 490 MB instead of 670 MB and load twice as fast.
    # Debian's /usr/bin/chromium is a shell wrapper that prints noise; the real binary is quieter.
    for path in (
        "/usr/lib/chromium/chromium-headless-shell",
        "/usr/lib/chromium/chromium",
        "/usr/lib/chromium-browser/chromium-browser",
    ):
        if Path(path).exists():
            return path
    for name in ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise FetchFailure(
        "browser",
        "no Chromium found: set settings.chromium or TOS_MONITOR_CHROMIUM, run "
        "'playwright install chromium', or install the system package (apt-get install chromium)",
    )


def _playwright_chromium() -> bool:
    root = Path(os.environ.get("PLAYWRIGHT_BROWSERS_PATH", Path.home() / ".cache/ms-playwright"))
    return any(root.glob("chromium-*/chrome-linux*/chrome")) or any(
        root.glob("chromium_headless_shell-*/chrome-linux*/*shell")
    )


# Installed in every page before its own scripts (`add_init_script`): when did the DOM last
# change, and is the page still working on something that may fill it in (a timer due within
# 10 s, a fetch or XMLHttpRequest in flight)? The wait below reads it to tell a page that is
# still filling in from one that is done and holds no policy. It only observes: every wrapped
# function calls the original with the same arguments and returns what it returns.
# The DOM is watched only once the wait asks (`watch`, on its first poll that finds too little
# text: only such a page can pass by settling), taking that moment as its last change. The
# page's earlier changes can only be earlier, so it is never taken as done sooner than if every
# change had been seen. Watched from the start, each node the parser added was a mutation record:
# ~20 ms of a renderer's time per policy page (0.8 of 10.2 CPU-seconds of a 40-document night),
# for pages that mostly pass the wait on their text alone.
SETTLE_WATCH_JS = """(() => {
  if (window.__tosMonitorWatch) return;
  const w = {changed: performance.now(), timers: new Set(), busy: 0, watching: false};
  w.watch = () => {
    if (w.watching) return;
    w.watching = true;
    w.changed = performance.now();
    new MutationObserver(() => { w.changed = performance.now(); })
      .observe(document, {subtree: true, childList: true, characterData: true});
  };
  Object.defineProperty(window, '__tosMonitorWatch', {value: w});
  const setT = window.setTimeout, clearT = window.clearTimeout;
  window.setTimeout = function (fn, delay, ...rest) {
    if (typeof fn !== 'function' || Number(delay) > 10000) {
      return setT.call(window, fn, delay, ...rest);
    }
    let id;
    id = setT.call(window, function () { w.timers.delete(id); return fn.apply(this, arguments); },
                   delay, ...rest);
    w.timers.add(id);
    return id;
  };
  window.clearTimeout = function (id) { w.timers.delete(id); return clearT.call(window, id); };
  if (window.fetch) {
    const f = window.fetch;
    window.fetch = function () {
      w.busy++;
      const done = () => { w.busy--; };
      const p = f.apply(this, arguments);
      p.then(done, done);
      return p;
    };
  }
  const send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.send = function () {
    w.busy++;
    this.addEventListener('loadend', () => { w.busy--; }, {once: true});
    return send.apply(this, arguments);
  };
})()"""
# How long a loaded page's DOM must stay still, with nothing pending, before it is taken as done.
SETTLE_MS = 1500

# The page is ready when the policy element holds text that stopped growing between two polls:
# pages that fill their text in by script pass as soon as the text is there, not after a sleep.
# A page that finished loading, whose DOM stopped changing and that waits for nothing is done
# too, with or without policy text: extraction then says what it is (empty, a wall, a missing
# selector) within seconds instead of after the whole timeout.
WAIT_FOR_TEXT = """([selectors, minChars, settleMs]) => {
  const pick = () => {
    if (selectors.length) {
      const found = selectors.flatMap(s => Array.from(document.querySelectorAll(s)));
      return found.length ? found : null;
    }
    const main = document.querySelector('main, [role=main], article');
    return main ? [main] : (document.body ? [document.body] : null);
  };
  const els = pick();
  const length = els ? els.reduce((n, e) => n + (e.innerText || e.textContent || '').length, 0) : 0;
  const previous = window.__tosMonitorLength;
  window.__tosMonitorLength = length;
  if (length >= minChars && length === previous) return true;
  const w = window.__tosMonitorWatch;
  // Only a page short of text can pass by settling (above, the rest pass or wait on their text).
  if (w && length < minChars) w.watch();
  return Boolean(w) && document.readyState === 'complete' && w.timers.size === 0 &&
    w.busy === 0 && performance.now() - w.changed >= settleMs && length === previous;
}"""


# The regions of a page whose extraction input is complete (`extract.REDUCE_JS`, `reduce_html`):
# only these get a fingerprint; "missing" / "unsupported" pages are extracted whole every night.
FINGERPRINTED_REGIONS = ("select", "main", "page")


def input_fingerprint(document: Document, region: str, title: str, reduced: str) -> str:
    """Fingerprint of everything tonight's extraction and checks would read: the extraction input
    (`extract.REDUCE_JS`), its region, the page title (the wall check reads it), and the
    document's settings that shape the outcome (selectors, ignore patterns, minimum length) and
    the tool version. Equal to the fingerprint of the fetch that gave the current version, it
    means extraction would give the same text again, so an unchanged night skips it: the
    shortcut is the work done, not an approximation of it."""
    key = "\0".join(
        [__version__, *document.select, "\0", *document.remove, "\0", *document.ignore, "\0",
         str(document.min_chars), region, title, reduced]
    )  # fmt: skip
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]  # 128 bits: plenty to compare


class BrowserFetcher:
    """One Chromium for the run; pages pooled per (locale, time zone) browser context."""

    def __init__(self, settings: Settings, driver: asyncio.Future[Any] | None = None):
        self.settings = settings
        self._start_lock = asyncio.Lock()
        self._driver = driver  # a driver already starting (`start_driver`), else started here
        self._playwright: Any = None
        self._browser: Any = None
        self._contexts: dict[tuple[str, str], Any] = {}
        # (locale, time zone) -> idle tabs, oldest first
        self._idle: dict[tuple[str, str], list[Any]] = {}
        # page -> (its DevTools session, to collect garbage; documents it has served)
        self._tabs: dict[Any, tuple[Any, int]] = {}
        self._context_lock = asyncio.Lock()  # one context per key, however many ask at once
        self._opening: asyncio.Future[None] | None = None  # tabs opened ahead (`open_ahead`)
        self._refusals: set[asyncio.Future[Any]] = set()  # blocked requests being refused
        self.launch_seconds = 0.0

    async def _ensure_browser(self) -> Any:
        async with self._start_lock:
            if self._browser is None:
                started = time.perf_counter()
                executable = find_chromium(self.settings)
                driver, self._driver = self._driver, None
                if driver is not None:
                    self._playwright = await driver
                else:
                    self._playwright = await start_driver()
                try:
                    self._browser = await self._playwright.chromium.launch(
                        executable_path=executable,
                        args=[*CHROMIUM_FLAGS, *self.settings.chromium_args],
                        headless=True,
                    )
                except Exception as exc:
                    raise FetchFailure("browser", f"cannot start Chromium: {exc}") from exc
                self.launch_seconds = time.perf_counter() - started
            return self._browser

    async def browser(self) -> Any:
        """The run's Chromium, started on first use, for a stage that drives browser contexts of
        its own (the site audit): one browser process per run, whatever needs it."""
        return await self._ensure_browser()

    def open_ahead(self, documents: Iterable[Document]) -> asyncio.Future[None]:
        """Start Chromium and open the tabs that `documents` (a run's first ones, as many as it
        fetches at once) will take, before they ask: opening them (a context, then a page and
        its DevTools session each) then overlaps the rest of the run's start instead of
        following it. A failure is left to the fetches, which meet it again and record it as
        they always did; the tabs that did open are kept."""

        async def open_all() -> None:
            await self._ensure_browser()
            tabs = await asyncio.gather(
                *(self._new_tab(d) for d in documents), return_exceptions=True
            )
            for document, page in zip(documents, tabs, strict=True):
                if not isinstance(page, BaseException):
                    self._idle.setdefault((document.locale, document.timezone), []).append(page)

        documents = list(documents)
        self._opening = asyncio.ensure_future(open_all())
        return self._opening

    async def _page(self, document: Document) -> Any:
        if self._opening is not None:
            # The tabs opened ahead are this document's to take: opening more beside them
            # would only leave some idle.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._opening)
        idle = self._idle.setdefault((document.locale, document.timezone), [])
        if idle:
            return idle.pop(0)
        return await self._new_tab(document)

    async def _context(self, document: Document) -> Any:
        key = (document.locale, document.timezone)
        async with self._context_lock:
            if key not in self._contexts:
                browser = await self._ensure_browser()
                context = await browser.new_context(
                    locale=document.locale,
                    timezone_id=document.timezone,
                    user_agent=self.settings.user_agent or None,
                    extra_http_headers={"Accept-Language": document.locale},
                    accept_downloads=False,
                )
                await context.add_init_script(SETTLE_WATCH_JS)
                self._contexts[key] = context
        return self._contexts[key]

    async def _new_tab(self, document: Document) -> Any:
        context = await self._context(document)
        page = await context.new_page()
        session = await context.new_cdp_session(page)
        # Network events on this session let `_SizeWatch` count a document's bytes as they arrive.
        await session.send("Network.enable")
        # Only the requests it refuses pause; the page and its scripts never wait on Python.
        session.on("Fetch.requestPaused", lambda event: self._refuse(session, event))
        await session.send("Fetch.enable", {"patterns": _BLOCK_PATTERNS})
        self._tabs[page] = (session, 0)
        return page

    def _refuse(self, session: Any, event: dict[str, Any]) -> None:
        refusal = asyncio.ensure_future(
            session.send(
                "Fetch.failRequest",
                {"requestId": event["requestId"], "errorReason": "BlockedByClient"},
            )
        )
        # Held until done (the loop keeps only weak references to tasks); a tab closing under
        # it fails the refusal, which matters no more than the request did.
        self._refusals.add(refusal)
        refusal.add_done_callback(self._refusals.discard)
        refusal.add_done_callback(_retrieved)

    async def fetch(
        self, document: Document, known: str | None = None, fresh: bool = False
    ) -> Page:
        page = await self._page(document)
        reusable = False
        session, uses = self._tabs.get(page, (None, 0))
        collection = _Collection(session if uses else None)
        try:
            # Fresh: the page and everything it loads come from the server, not from what the
            # night's earlier documents (or this document's first look) left in the cache.
            if fresh and not await _set_cache(session, disabled=True):
                raise FetchFailure("browser", "the tab could not turn its HTTP cache off")
            async with _SizeWatch(session) as size:
                result = await size.guard(self._load(page, document, known, collection.start))
            pause_at("fetch")
            reusable = True
            return result
        except FetchFailure as failure:
            # An HTTP error page leaves the tab healthy; a network error or a hung script may not.
            reusable = failure.error_class.startswith("http-") or failure.error_class == "not-html"
            raise
        finally:
            try:
                # A tab that cannot even collect its garbage is closed rather than reused.
                if not reusable:
                    collection.discard()
                elif not await collection.finish():
                    reusable = False
                elif fresh and not await _set_cache(session, disabled=False):
                    reusable = False  # its next document must be able to use the cache
            except BaseException:
                # Cancelled (the document's budget ran out, or the run is stopping) while the
                # tab was being readied for its next document: the tab is in no known state,
                # so it is closed, not left open and untracked until the browser closes.
                reusable = False
                raise
            finally:
                await self._release(document, page, reusable)

    async def _load(
        self, page: Any, document: Document, known: str | None, collect: Callable[[], None]
    ) -> Page:
        from playwright.async_api import Error as PlaywrightError

        from monitor.extract import REDUCE_JS, reduce_arguments

        timeout_ms = document.timeout * 1000

        def committed(frame: Any) -> None:
            # The tab's previous document became garbage as this one committed, and this one is
            # still nearly empty: collected now, the collector has little to mark (`_Collection`).
            if frame == page.main_frame:
                collect()

        page.on("framenavigated", committed)
        try:
            response = await page.goto(
                document.url, wait_until="domcontentloaded", timeout=timeout_ms
            )
        except PlaywrightError as exc:
            message = str(exc).splitlines()[0]
            if "download is starting" in message.lower():
                # Chromium downloads PDFs instead of showing them: ask for the bytes directly.
                return await _request_document(page, document)
            raise FetchFailure(classify_network_error(message), message) from None
        finally:
            page.remove_listener("framenavigated", committed)
        status = response.status if response is not None else None
        if status is not None and classify_status(status):
            retry_after = await response.header_value("retry-after") if response else None
            raise FetchFailure(
                classify_status(status) or "",
                f"HTTP {status} {response.status_text}",
                status,
                retry_after=parse_retry_after(retry_after),
            )
        # The headers Chromium reported with the response: enough for the type, no round trip.
        content_type = response.headers.get("content-type", "") if response else ""
        if is_pdf(content_type, document.url):
            return await _request_document(page, document)
        check_content_type(content_type, status)
        collect()  # if no commit started it (it starts once, whoever asks first)
        # On a timeout, extraction decides: the selector may be missing or the text short.
        with contextlib.suppress(PlaywrightError):
            await page.wait_for_function(
                WAIT_FOR_TEXT,
                arg=[list(document.select), document.min_chars, SETTLE_MS],
                polling=50,
                timeout=timeout_ms,
            )
        seen = await page.evaluate(REDUCE_JS, reduce_arguments(document.select, document.remove))
        title, region = str(seen.get("title") or ""), str(seen["region"])
        reduced: str | None = None
        fingerprint: str | None = None
        if region in FINGERPRINTED_REGIONS:
            reduced = str(seen["html"])
            fingerprint = input_fingerprint(document, region, title, reduced)
            if fingerprint == known:
                return Page("", status, page.url, "text/html", title, fingerprint=known)
        # Otherwise ("missing", "unsupported") extraction reads the whole page and says why;
        # such a page has no fingerprint, so it is extracted every night.
        html = await page.content()
        if len(html) > MAX_BYTES:
            raise FetchFailure("too-large", f"page is {len(html):,} characters", status)
        return Page(
            html, status, page.url, "text/html", title,
            reduced=reduced, region=region, fingerprint=fingerprint,
        )  # fmt: skip

    async def _release(self, document: Document, page: Any, reusable: bool) -> None:
        session, uses = self._tabs.pop(page, (None, 0))
        uses += 1
        if reusable and uses < PAGE_REUSES and not page.is_closed() and session is not None:
            self._tabs[page] = (session, uses)
            self._idle.setdefault((document.locale, document.timezone), []).append(page)
            return
        await _close_page(page)

    async def close(self) -> None:
        if self._opening is not None:
            with contextlib.suppress(BaseException):  # settled (and its error retrieved) first
                await self._opening
        self._opening = None
        self._idle.clear()
        self._tabs.clear()
        self._contexts.clear()
        # Forgotten before they are stopped: closing twice, or after a failed close, stops
        # nothing twice, and a fetch after a close starts a browser of its own.
        browser, self._browser = self._browser, None
        playwright, self._playwright = self._playwright, None
        if browser is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(browser.close(), timeout=15)
        if playwright is not None:
            await playwright.stop()
        if self._driver is not None:  # started for a browser that was never needed
            await stop_driver(self._driver)
            self._driver = None


class _Collection:
    """The garbage collection of a reused tab's earlier documents, run during its next one.

    Chromium leaves the pages a tab has shown to a garbage collector that rarely runs: measured,
    a tab grew by ~10 MB a policy (55 MB to 172 MB over 12), and collecting once a document holds
    it near 90 MB (a tab is still retired after `PAGE_REUSES`). A collection takes a renderer
    ~17 ms alone, several times that on a busy night. Run after a document, before the tab's
    next one, it sat on the tab's path: the next document waited for it (a median 53 ms on a
    warm 40-document night). It is started as the next document commits (`start`, on the main
    frame's navigation): the previous document is garbage from that moment, and the new one is
    still nearly empty, so the collector, whose work is marking what is still alive, has little
    to mark. Started once the new page had loaded (its whole DOM alive), the collections cost a
    warm 40-document night ~0.4 s; at the commit about half that (8 alternated nights: 4.82 s
    against 4.98 s, 4.69 s collecting nothing), with the same peak at 120 documents (544-554 MB
    against 545-561 MB). The document is not done before its collection is (`finish`). Garbage
    a page's own scripts leave waits for the next document; on the real pages that cost nothing
    measurable (peak 572 MB against 568 MB collecting right after each document, 4 nights, before
    the first tabs were bounded). A tab's first document has nothing before it to collect."""

    def __init__(self, session: Any | None) -> None:
        self._session = session
        self._running: asyncio.Future[Any] | None = None

    def start(self) -> None:
        if self._session is not None and self._running is None:
            self._running = asyncio.ensure_future(
                asyncio.wait_for(self._session.send("HeapProfiler.collectGarbage"), timeout=5)
            )

    async def finish(self) -> bool:
        """Start it if the document never got that far (an error page), wait for it: whether
        it succeeded."""
        self.start()
        if self._running is None:
            return True
        try:
            await self._running
            return True
        except Exception:
            return False

    def discard(self) -> None:
        """The tab is closing: its collection's outcome does not matter (nor is it left
        unretrieved)."""
        if self._running is not None:
            self._running.add_done_callback(_retrieved)


def _retrieved(done: asyncio.Future[Any]) -> None:
    """A done-callback for work whose failure matters to no one (a refusal, a discarded
    collection, tabs opened ahead): its error is retrieved, so asyncio does not log it."""
    if not done.cancelled():
        done.exception()


async def _set_cache(session: Any | None, disabled: bool) -> bool:
    """Turn a tab's HTTP cache off or back on (DevTools `Network.setCacheDisabled`, which covers
    the page's own request too): whether it was done."""
    if session is None:
        return False
    try:
        await session.send("Network.setCacheDisabled", {"cacheDisabled": disabled})
        return True
    except Exception:
        return False


async def _close_page(page: Any) -> None:
    # A page whose script never settles may not even close politely: bound the wait.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(page.close(run_before_unload=False), timeout=5)


class _SizeWatch:
    """Fails a page load as `too-large` as soon as a document (the page or one of its frames)
    announces more than MAX_BYTES in its Content-Length, or has sent more than that, counted as
    the bytes arrive (DevTools `Network` events): a 30 MB page fails in a second or two instead
    of timing out while Chromium parses it. Only `Document` requests count: a page's scripts and
    styles are not the policy, and images, media and fonts are never loaded."""

    def __init__(self, session: Any):
        self.session = session
        self.documents: set[str] = set()
        self.received: dict[str, int] = {}
        self.tripped: asyncio.Future[FetchFailure] = asyncio.get_running_loop().create_future()

    def _trip(self, message: str) -> None:
        if not self.tripped.done():
            self.tripped.set_result(FetchFailure("too-large", message))

    def _response(self, event: dict[str, Any]) -> None:
        if event.get("type") != "Document":
            return
        self.documents.add(event["requestId"])
        sent = event.get("response", {}).get("headers") or {}
        headers = {key.lower(): value for key, value in sent.items()}
        length = str(headers.get("content-length", "")).strip()
        if length.isdigit() and int(length) > MAX_BYTES:
            self._trip(f"the page announces {int(length):,} bytes (more than {MAX_BYTES:,})")

    def _data(self, event: dict[str, Any]) -> None:
        request = event["requestId"]
        if request not in self.documents:
            return
        self.received[request] = self.received.get(request, 0) + int(event.get("dataLength", 0))
        if self.received[request] > MAX_BYTES:
            self._trip(f"the page is larger than {MAX_BYTES:,} bytes")

    def _finished(self, event: dict[str, Any]) -> None:
        self.documents.discard(event["requestId"])

    _EVENTS = (
        ("Network.responseReceived", "_response"),
        ("Network.dataReceived", "_data"),
        ("Network.loadingFinished", "_finished"),
        ("Network.loadingFailed", "_finished"),
    )

    async def __aenter__(self) -> _SizeWatch:
        if self.session is not None:
            for event, handler in self._EVENTS:
                self.session.on(event, getattr(self, handler))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            for event, handler in self._EVENTS:
                self.session.remove_listener(event, getattr(self, handler))

    def still_arriving(self) -> int:
        """Bytes received so far of the biggest document that is still downloading."""
        return max((self.received.get(r, 0) for r in self.documents), default=0)

    async def guard(self, load: Any) -> Page:
        """Run the load; if the size limit trips first, stop it and raise `too-large` (the tab
        is then closed, not reused)."""
        task = asyncio.ensure_future(load)
        await asyncio.wait([task, self.tripped], return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            failure = task.exception()
            arriving = self.still_arriving()
            if (
                isinstance(failure, FetchFailure)
                and failure.error_class == "timeout"
                and arriving > STILL_ARRIVING_BYTES
            ):
                # Chromium reads a document only as fast as it parses it: a page sent without a
                # Content-Length and far bigger than a policy may still be arriving when the time
                # is up. That is a page too large to read in time, not a slow server to retry.
                raise FetchFailure(
                    "too-large",
                    f"the page was still arriving when the time was up, {arriving:,} bytes in "
                    f"(a policy page is rarely over {STILL_ARRIVING_BYTES:,})",
                    failure.status,
                ) from None
            return task.result()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise self.tripped.result()


async def _request_document(page: Any, document: Document) -> Page:
    """Fetch a non-page document (a PDF policy) with the browser context's own HTTP client, so
    cookies and headers match what the page would have had."""
    from playwright.async_api import Error as PlaywrightError

    try:
        response = await page.context.request.get(
            document.url, timeout=document.timeout * 1000, max_redirects=10
        )
    except PlaywrightError as exc:
        message = str(exc).splitlines()[0]
        raise FetchFailure(classify_network_error(message), message) from None
    status = response.status
    if classify_status(status):
        raise FetchFailure(classify_status(status) or "", f"HTTP {status}", status)
    body = await response.body()
    if len(body) > MAX_BYTES:
        raise FetchFailure("too-large", f"document is {len(body):,} bytes", status)
    content_type = response.headers.get("content-type", "")
    if not is_pdf(content_type, document.url):
        check_content_type(content_type, status)
        return Page(_decode(body, None), status, response.url, "text/html")
    return Page("", status, response.url, "application/pdf", raw=body)


class HttpFetcher:
    """Plain GET for `render: http` documents: no browser is started for them.

    Each page is reduced to extraction's input and fingerprinted (`reduced_input`) in a worker
    thread, or, once `start_workers` was called (a run with many http documents), in worker
    processes: that work is mostly Python walking lxml's tree, which threads of one process
    cannot share between cores.
    """

    def __init__(self, settings: Settings):
        import httpx

        self.client = httpx.AsyncClient(
            follow_redirects=True,
            headers={"User-Agent": settings.user_agent or DEFAULT_USER_AGENT},
        )
        self._processes: ProcessPoolExecutor | None = None

    def start_workers(self, workers: int) -> None:
        """Reduce pages in `workers` spawned processes from now on (each re-imports the calling
        program's main module: see `monitor.run.run_nightly`)."""
        if workers > 1 and self._processes is None:
            self._processes = ProcessPoolExecutor(workers, mp_context=get_context("spawn"))

    async def fetch(
        self, document: Document, known: str | None = None, fresh: bool = False
    ) -> Page:
        # httpx keeps no HTTP cache: every fetch is fresh.
        import httpx

        headers = {"Accept-Language": document.locale}
        try:
            async with self.client.stream(
                "GET", document.url, headers=headers, timeout=document.timeout
            ) as response:
                status = response.status_code
                error = classify_status(status)
                if error:
                    raise FetchFailure(
                        error,
                        f"HTTP {status} {response.reason_phrase}",
                        status,
                        retry_after=parse_retry_after(response.headers.get("retry-after")),
                    )
                content_type = response.headers.get("content-type", "")
                pdf = is_pdf(content_type, document.url)
                if not pdf:
                    check_content_type(content_type, status)
                body = await _read_capped(response)
                final_url = str(response.url)
                encoding = response.encoding
        except httpx.HTTPError as exc:
            message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise FetchFailure(classify_network_error(message), message) from None
        if pdf:
            return Page("", status, final_url, "application/pdf", raw=body)
        html = _decode(body, encoding)
        region, fingerprint, reduced = await self._reduce(html, document, known)
        if fingerprint is None:
            # "missing" / "unsupported": extraction reads the whole page and says why; no
            # fingerprint, so such a page is extracted every night.
            return Page(html, status, final_url, "text/html", region=region)
        if fingerprint == known:
            return Page("", status, final_url, "text/html", fingerprint=known)
        return Page(
            html, status, final_url, "text/html",
            reduced=reduced, region=region, fingerprint=fingerprint,
        )  # fmt: skip

    async def _reduce(
        self, html: str, document: Document, known: str | None
    ) -> tuple[str, str | None, str | None]:
        if self._processes is not None:
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(
                    self._processes, reduced_input, html, document, known
                )
            except BrokenProcessPool:
                # A worker died (killed, out of memory): the rest of the night reduces in
                # threads, as without workers, rather than failing documents.
                self._processes = None
        return await asyncio.to_thread(reduced_input, html, document, known)

    async def close(self) -> None:
        await self.client.aclose()
        if self._processes is not None:
            self._processes.shutdown(cancel_futures=True)


def reduced_input(
    html: str, document: Document, known: str | None = None
) -> tuple[str, str | None, str | None]:
    """What the browser's REDUCE_JS would hand extraction, made by lxml from an http page: its
    region, its fingerprint (`input_fingerprint`; None for "missing" / "unsupported") and the
    reduced HTML, left out (None) when the fingerprint is `known`, so that a worker process
    sends back a few bytes on an unchanged night. The page title is not read for http
    documents, as before."""
    from monitor.extract import reduce_html

    reduced = reduce_html(html, document.select, document.remove)
    if reduced.region not in FINGERPRINTED_REGIONS:
        return reduced.region, None, None
    fingerprint = input_fingerprint(document, reduced.region, "", reduced.html)
    return reduced.region, fingerprint, None if fingerprint == known else reduced.html


async def _read_capped(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BYTES:
            raise FetchFailure("too-large", f"page is larger than {MAX_BYTES:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(body: bytes, encoding: str | None) -> str:
    # Invalid bytes become U+FFFD rather than failing the fetch: the text is still comparable.
    return body.decode(encoding or "utf-8", errors="replace")


def is_pdf(content_type: str, url: str) -> bool:
    return "pdf" in content_type.lower() or (
        not content_type and urlsplit(url).path.lower().endswith(".pdf")
    )


def check_content_type(content_type: str, status: int | None) -> None:
    lowered = content_type.lower()
    if lowered and "html" not in lowered and "xml" not in lowered and "text/plain" not in lowered:
        raise FetchFailure("not-html", f"the server sent {content_type}, not a page", status)


def parse_retry_after(value: str | None, cap: float = 60.0) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), capped so one
    rate-limited host cannot stall the night."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), cap)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, min((when - datetime.now(UTC)).total_seconds(), cap))


# Below this many http documents a run reduces their pages in threads: starting worker processes
# (~0.4 s each, spawned) costs more than a few pages' reduction (~10 ms each).
HTTP_WORKERS_MIN = 40

FETCHERS: dict[str, Callable[[Settings], Fetcher]] = {
    "browser": BrowserFetcher,
    "http": HttpFetcher,
}


def host_of(url: str) -> str:
    """The host that `per_host` bounds: host and port as the URL gives them (two ports of one
    address are two servers). `FetchPool.turn` and the tabs opened ahead (`_first_wave`) must
    count by the same key, or tabs are opened for documents that wait."""
    return urlsplit(url).netloc


class FetchPool:
    """Runs fetches with a global concurrency bound and a per-host politeness bound."""

    def __init__(
        self,
        settings: Settings,
        retries: int = 1,
        backoff: float = 1.0,
        workers: int = 1,
        driver: asyncio.Future[Any] | None = None,
    ):
        self.settings = settings
        self.retries = retries
        self.backoff = backoff
        self.workers = workers  # processes http pages may be reduced in (`HttpFetcher`)
        self._fetchers: dict[str, Fetcher] = {}
        if driver is not None:  # Playwright's driver, already starting (`start_driver`)
            self._fetchers["browser"] = BrowserFetcher(settings, driver)
        self._stopping: asyncio.Future[Any] | None = None  # a browser fetcher no one needs
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        # Hosts on which a document already timed out this run. A host that lets one page run out
        # its whole budget is slow or down tonight: retrying each of its documents as well would
        # double a night that is already waiting out a timeout per document (ten documents on one
        # silent host took over 10 minutes). The first timeout is retried, later ones are not.
        self._timed_out: set[str] = set()
        self._warming: asyncio.Future[Any] | None = None

    def _fetcher(self, render: str) -> Fetcher:
        if render not in self._fetchers:
            self._fetchers[render] = FETCHERS[render](self.settings)
        return self._fetchers[render]

    def warm_up(self, documents: Iterable[Document], audit: bool = False) -> None:
        """Start the run's Chromium now, in the background, if a document (or the site audit)
        will need it: the first page then finds it started instead of waiting for it. A failed
        start is left to the fetches, which try again and record it as they always did. With
        `workers` > 1 and many http documents, their pages are reduced in worker processes."""
        documents = list(documents)
        http = sum(1 for d in documents if d.render == "http")
        if self.workers > 1 and http >= HTTP_WORKERS_MIN:
            fetcher = self._fetcher("http")
            assert isinstance(fetcher, HttpFetcher)
            fetcher.start_workers(self.workers)
        if not audit and not any(d.render == "browser" for d in documents):
            browser = self._fetchers.pop("browser", None)
            if browser is not None:  # its driver started before the watchlist said: not needed
                self._stopping = asyncio.ensure_future(browser.close())
            return
        browser = self._fetcher("browser")
        assert isinstance(browser, BrowserFetcher)
        task = browser.open_ahead(self._first_wave(documents))
        task.add_done_callback(_retrieved)
        self._warming = task

    def _first_wave(self, documents: list[Document]) -> list[Document]:
        """The browser documents that can load at once when the run starts, in order: at most
        `concurrency`, and at most `per_host` of one host. Opening a tab for more would leave it
        idle, and idle tabs are taken in turn, so every one of them would grow to a tab's full
        size (measured on the real pages, one host: 572 MB against 456 MB)."""
        first: list[Document] = []
        per_host: dict[str, int] = {}
        for document in documents:
            host = host_of(document.url)
            if document.render == "browser" and per_host.get(host, 0) < self.settings.per_host:
                per_host[host] = per_host.get(host, 0) + 1
                first.append(document)
                if len(first) == self.settings.concurrency:
                    break
        return first

    async def browser(self) -> Any:
        """The run's one Chromium (see `BrowserFetcher.browser`); raises FetchFailure("browser")
        when it cannot start."""
        fetcher = self._fetcher("browser")
        assert isinstance(fetcher, BrowserFetcher)
        return await fetcher.browser()

    @property
    def uses_browser(self) -> bool:
        """Whether this run has (or is starting) a Chromium."""
        return self._warming is not None or "browser" in self._fetchers

    @property
    def launch_seconds(self) -> float:
        browser = self._fetchers.get("browser")
        return getattr(browser, "launch_seconds", 0.0)

    @contextlib.asynccontextmanager
    async def turn(self, url: str) -> AsyncIterator[None]:
        """A turn to load `url` within the run's bounds: `per_host` requests at once to its host,
        `concurrency` in all (the site audit's pages take theirs here too). The host's turn comes
        first, then a slot: a document waiting for its host holds no slot that another host's
        document could use. Taken the other way round, a watchlist that lists a platform's
        documents together (the shipped one does) ran at about half its concurrency
        (`benchmarks/bench_hosts.py`: 4.22 s against 3.38 s a warm night)."""
        host = self._hosts.setdefault(host_of(url), asyncio.Semaphore(self.settings.per_host))
        async with host, self._slots:
            yield

    async def fetch(
        self, document: Document, known: str | None = None, fresh: bool = False
    ) -> FetchResult:
        """Fetch with retries; `known` is last night's visible-text fingerprint, if any.
        `fresh`: the page, and what it loads, from the server only (a retry always is)."""
        host = host_of(document.url)
        result = FetchResult(document, document.url, now_utc(), document.render)
        busy = 0.0  # time spent fetching, not queueing for a slot: the figure benchmarks sum
        for attempt in range(1, self.retries + 2):
            result.attempts = attempt
            async with self.turn(document.url):
                started = time.perf_counter()
                if attempt == 1:
                    result.started_at = now_utc()
                failure = await self._attempt(document, result, known, fresh or attempt > 1)
                busy += time.perf_counter() - started
            if failure is None or failure.error_class not in TRANSIENT or attempt > self.retries:
                break
            if failure.error_class == "timeout":
                if host in self._timed_out:
                    break
                self._timed_out.add(host)
            # Honour the server's Retry-After, but never beyond this document's own budget.
            wait = (
                failure.retry_after if failure.retry_after is not None else self.backoff * attempt
            )
            await asyncio.sleep(min(wait, document.timeout))
            busy += min(wait, document.timeout)
        result.duration_ms = round(busy * 1000)
        return result

    async def _attempt(
        self, document: Document, result: FetchResult, known: str | None, fresh: bool
    ) -> FetchFailure | None:
        fetcher = self._fetcher(document.render)
        try:
            # The document's own budget bounds everything, navigation and waiting together.
            page = await asyncio.wait_for(
                fetcher.fetch(document, known, fresh), timeout=document.timeout + 5
            )
            check_redirect(document.url, page.final_url, page.status)
        except FetchFailure as failure:
            result.error_class, result.message = failure.error_class, str(failure)
            result.http_status = failure.status
            return failure
        except TimeoutError:
            budget = FetchFailure("timeout", f"no answer within {document.timeout:g} s")
            result.error_class, result.message = budget.error_class, str(budget)
            return budget
        result.page, result.http_status, result.final_url = page, page.status, page.final_url
        result.error_class, result.message = None, ""
        return None

    async def close(self) -> None:
        if self._warming is not None and not self._warming.done():
            # A run with nothing to fetch: let the start finish, so that closing stops it.
            with contextlib.suppress(Exception):
                await self._warming
        if self._stopping is not None:
            await self._stopping
        for fetcher in self._fetchers.values():
            await fetcher.close()


LOGIN_PATH = re.compile(r"/(login|log-in|signin|sign-in|sign_in|auth|checkpoint|accounts/login)\b")


def site_of(url: str) -> str:
    """The last two labels of the host: www.facebook.com and m.facebook.com are one site.
    (Without a public-suffix list, example.co.uk counts as co.uk; the check only warns on
    a move between sites, so that errs towards silence, never towards a false version.)"""
    host = (urlsplit(url).hostname or "").lower()
    return ".".join(host.split(".")[-2:])


def check_redirect(url: str, final_url: str, status: int | None) -> None:
    """A redirect to a login page or to another site is not the policy: refuse it."""
    if not final_url or final_url == url:
        return
    if LOGIN_PATH.search(urlsplit(final_url).path.lower()):
        raise FetchFailure("blocked", f"redirected to a login page: {final_url}", status)
    if site_of(final_url) != site_of(url):
        raise FetchFailure("redirected", f"redirected to another site: {final_url}", status)
