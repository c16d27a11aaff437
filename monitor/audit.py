"""Stage 2b: the site audit — the agency's own pages as a first-time visitor's browser sees them.

Wisconsin's best practices ask an agency that uses persistent cookies on its own site to review that
decision with its Public Information Officer, against the agency's own privacy policy. Widgets,
pixels and analytics embedded on agency pages set such cookies and call third parties without
anyone deciding it, so every night each page of `agency_site.pages` is opened:

* in a **fresh browser context** of the run's one Chromium (`FetchPool.browser`): no cookie, cache
  or storage carried over, so every night is a first visit;
* with **nothing blocked** (the document fetcher drops images, media and fonts; trackers are often
  exactly those);
* and left to **settle**: the load event, then the network quiet for 500 ms (Playwright's
  `networkidle`), at most `SETTLE_SECONDS`, all within the watchlist's `timeout`.

Then the browser's cookie jar is read (`context.cookies()`: name, domain, path, expiry as the
browser stores it, so a lifetime beyond Chromium's 400-day cap shows capped; Secure, HttpOnly,
SameSite), with the localStorage and sessionStorage keys of every frame and every third-party host
the page requested, with the resource types. The result is compared with the page's last
*successful* audit (`compare`); a page that failed records its failure class, like a document, and
never reads as cookies or hosts gone.

Who set a cookie:

* **an HTTP response** — every response's raw `Set-Cookie` headers (Playwright's
  `headers_array()`, which, unlike `headers`, includes them), for the document, subresources,
  redirects and frames alike, with the response's host;
* **a script** — an init script, run in every frame before the page's own scripts, wraps the
  `document.cookie` setter and `cookieStore.set`, and reports the cookie's name and domain and the
  host of the calling script (the innermost http(s) frame of the call stack; an inline script is
  the page's own host) through a binding. Chromium's DevTools protocol has no event for a cookie
  written by script, and looking at the jar afterwards cannot tell who wrote it; a stack frame
  names the script that actually made the call, including a third party's script running in the
  agency's page (a first-party cookie set by an ad script is the case the PIO must hear about).

When a cookie was written several times, the last write seen names its setter. A cookie no write
was seen for (e.g. one written by a service worker) is "unknown".

First- or third-party: a cookie's domain, or a request's host, compared with the page's site, its
registrable domain by the Public Suffix List (the `publicsuffixlist` package ships the list; no
network): www.agency.gov and cdn.agency.gov are one site, agency.co.uk and other.co.uk are two. An
IP address is a site of its own. (`fetch.site_of` keeps the last two host labels, which is enough
for its redirect warning but would make every *.co.uk one site and 127.0.0.1 and 10.0.0.1 one.)

Values are never stored: the init script sends names only, a Set-Cookie header is cut to its name
and Domain attribute as soon as it is read, the jar's values are dropped as each cookie is read, and
storage is read with `Object.keys`. Nothing here logs, records or raises with a value.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from monitor.fetch import (
    TRANSIENT,
    FetchFailure,
    FetchPool,
    check_content_type,
    check_redirect,
    classify_network_error,
    classify_status,
    now_utc,
)
from monitor.store import Store
from monitor.watchlist import AGENCY_ID, AgencySite, Settings, Watchlist

CHANGE_KINDS = (
    "new-cookie",
    "cookie-gone",
    "cookie-lifetime-changed",
    "new-third-party",
    "third-party-gone",
)
# After the load event, wait for the network to be quiet (500 ms without a request) this long at
# most: a page that polls forever is audited as it stands then, not failed.
SETTLE_SECONDS = 10.0
# A page whose transient failure (timeout, connection, 5xx, 429) persists is tried once more.
RETRIES = 1
RETRY_PAUSE = 1.0
DAY = 86400.0
# The same change recorded again within this many days is kept quiet (recorded, listed in
# `run --json` and the report, not sent again): a sampled script whose cookie comes and goes
# night after night alerts twice, not every night.
QUIET_DAYS = 30
BINDING = "__tosMonitorCookieWrite"
NAME_MAX = 256  # longer names (or hosts) are cut: a page must not fill the records
MAX_WRITES = 10_000  # cookie writes noted per visit; a real page makes a few dozen

# Runs in every frame before the page's scripts. Sends the name, the domain the cookie will have
# and the calling script's host; never the value.
INIT_SCRIPT = r"""(() => {
  const BINDING = "__tosMonitorCookieWrite";
  const callerHost = () => {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 50;
    const stack = String(new Error().stack || "");
    Error.stackTraceLimit = limit;
    const found = stack.match(/https?:\/\/(\[[^\]\/]+\]|[^\/\s:)]+)/);
    return found ? found[1] : location.hostname;
  };
  const note = (name, domain) => {
    try {
      const send = globalThis[BINDING];
      if (typeof send === "function") {
        send(String(name), String(domain || location.hostname), callerHost());
      }
    } catch (e) {}
  };
  const parse = (text) => {
    const parts = String(text).split(";");
    const eq = parts[0].indexOf("=");
    const name = eq < 0 ? "" : parts[0].slice(0, eq).trim();
    let domain = "";
    for (const part of parts.slice(1)) {
      const i = part.indexOf("=");
      if (i > 0 && part.slice(0, i).trim().toLowerCase() === "domain") {
        domain = part.slice(i + 1).trim().replace(/^\./, "").toLowerCase();
      }
    }
    return [name, domain];
  };
  const desc = Object.getOwnPropertyDescriptor(Document.prototype, "cookie");
  if (desc && desc.set) {
    Object.defineProperty(Document.prototype, "cookie", {
      configurable: true,
      enumerable: desc.enumerable,
      get() { return desc.get.call(this); },
      set(value) {
        try { note(...parse(value)); } catch (e) {}
        return desc.set.call(this, value);
      },
    });
  }
  if (self.CookieStore && CookieStore.prototype.set) {
    const set = CookieStore.prototype.set;
    CookieStore.prototype.set = function (first) {
      try {
        const o = first && typeof first === "object" ? first : {name: first};
        note(o.name == null ? "" : o.name,
             o.domain ? String(o.domain).replace(/^\./, "").toLowerCase() : "");
      } catch (e) {}
      return set.apply(this, arguments);
    };
  }
})();"""

# Key names only: Object.keys never reads a value. A sandboxed frame may refuse storage at all.
STORAGE_KEYS = """() => {
  const keys = (area) => { try { return Object.keys(area()); } catch (e) { return []; } };
  return {local: keys(() => localStorage), session: keys(() => sessionStorage)};
}"""


# --------------------------------------------------------------------------------------------
# What one audit found


@dataclass(frozen=True)
class Cookie:
    name: str
    domain: str  # as the browser stores it: ".agency.gov" for a domain cookie
    path: str
    party: str  # "first-party" or "third-party" to the page's site
    persistent: bool
    expires: float | None  # seconds since 1970, as the browser stores it; None: a session cookie
    lifetime_days: float | None  # from when the jar was read
    secure: bool
    http_only: bool
    same_site: str
    set_by: str  # "response", "script" or "" (no write seen)
    set_by_host: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.name, self.domain, self.path)

    @property
    def setter(self) -> str:
        """`response from 127.0.0.2`, `script from cdn.example.com`, or `unknown`."""
        return f"{self.set_by} from {self.set_by_host}" if self.set_by else "unknown"

    def row(self) -> dict[str, Any]:
        return {
            "name": self.name, "domain": self.domain, "path": self.path, "party": self.party,
            "persistent": int(self.persistent), "expires": self.expires,
            "lifetime_days": self.lifetime_days, "secure": int(self.secure),
            "http_only": int(self.http_only), "same_site": self.same_site,
            "set_by": self.set_by, "set_by_host": self.set_by_host,
        }  # fmt: skip

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Cookie:
        return cls(
            name=row["name"] or "", domain=row["domain"] or "", path=row["path"] or "",
            party=row["party"] or "", persistent=bool(row["persistent"]),
            expires=row["expires"], lifetime_days=row["lifetime_days"],
            secure=bool(row["secure"]), http_only=bool(row["http_only"]),
            same_site=row["same_site"] or "", set_by=row["set_by"] or "",
            set_by_host=row["set_by_host"] or "",
        )  # fmt: skip


@dataclass(frozen=True)
class ThirdParty:
    host: str
    types: tuple[str, ...]  # resource types requested from it: script, image, xhr, ...
    requests: int

    def row(self) -> dict[str, Any]:
        return {"host": self.host, "types": ",".join(self.types), "requests": self.requests}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ThirdParty:
        types = tuple(t for t in (row["types"] or "").split(",") if t)
        return cls(row["host"] or "", types, row["requests"] or 0)


@dataclass(frozen=True)
class StorageKey:
    area: str  # "local" or "session"
    origin: str  # host of the frame whose storage holds it
    key: str

    def row(self) -> dict[str, Any]:
        return {"area": self.area, "origin": self.origin, "key": self.key}


@dataclass
class PageAudit:
    page: str
    started_at: str
    duration_ms: int = 0
    final_url: str = ""
    http_status: int | None = None
    error_class: str | None = None
    message: str = ""
    attempts: int = 1
    cookies: list[Cookie] = field(default_factory=list)
    storage: list[StorageKey] = field(default_factory=list)
    third_parties: list[ThirdParty] = field(default_factory=list)
    audit_id: int | None = None
    baseline: bool = False  # the page's first successful audit: nothing to compare with

    @property
    def ok(self) -> bool:
        return self.error_class is None


@dataclass(frozen=True)
class SiteChange:
    page: str
    kind: str  # one of CHANGE_KINDS
    name: str  # the cookie's name, or the third party's host
    details: dict[str, Any]
    quiet: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"page": self.page, "kind": self.kind, "name": self.name, **self.details,
                "quiet": self.quiet}  # fmt: skip


@dataclass
class SiteAudit:
    """What the run's audit of the agency site found (empty without an `agency_site`)."""

    audits: list[PageAudit] = field(default_factory=list)
    changes: list[SiteChange] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failures(self) -> list[PageAudit]:
        return [a for a in self.audits if not a.ok]


# --------------------------------------------------------------------------------------------
# Sites and parties


@cache
def _suffix_list() -> Any:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()  # the list the package ships: nothing is downloaded


def site_key(host: str) -> str:
    """The registrable domain of a host (`www.agency.wi.gov` -> `wi.gov`... see the module doc),
    an IP address itself, or the host when it has no registrable part (`localhost`)."""
    host = (host or "").lower().strip().strip(".").strip("[]")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    return str(_suffix_list().privatesuffix(host) or host)


def party_of(host: str, page_site: str) -> str:
    return "first-party" if site_key(host) == page_site else "third-party"


def _short(text: Any) -> str:
    return str(text)[:NAME_MAX]


def parse_set_cookie(header: str, response_host: str) -> tuple[str, str]:
    """(name, domain) of a Set-Cookie header value; the value itself is never kept. A header
    without '=' is a cookie with an empty name, as browsers read it."""
    first, _, attributes = header.partition(";")
    name = first.partition("=")[0].strip() if "=" in first else ""
    domain = ""
    for attribute in attributes.split(";"):
        key, eq, value = attribute.partition("=")
        if eq and key.strip().lower() == "domain":
            domain = value.strip().lstrip(".").lower()
    return _short(name), domain or response_host


# --------------------------------------------------------------------------------------------
# Visiting a page


class _Observer:
    """Everything a visit's browser context reports while the page loads and settles."""

    def __init__(self) -> None:
        self.writes: dict[tuple[str, str], tuple[int, str, str]] = {}  # -> (order, how, host)
        self.by_name: dict[str, list[tuple[int, str, str]]] = {}
        self.hosts: dict[str, dict[str, int]] = {}
        self.pending: set[asyncio.Task[None]] = set()
        self.order = 0

    def _note(self, name: str, domain: str, how: str, host: str, order: int) -> None:
        if order > MAX_WRITES:
            return  # a script writing cookies in a loop must not exhaust the run's memory
        entry = (order, how, _short(host))
        key = (name, domain.lstrip(".").lower())
        if key not in self.writes or self.writes[key][0] < order:
            self.writes[key] = entry
        self.by_name.setdefault(name, []).append(entry)

    def request(self, request: Any) -> None:
        self._host(request.url, request.resource_type)

    def websocket(self, socket: Any) -> None:
        self._host(socket.url, "websocket")

    def _host(self, url: str, kind: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
            return
        types = self.hosts.setdefault(_short(parts.hostname.lower()), {})
        types[kind] = types.get(kind, 0) + 1

    def response(self, response: Any) -> None:
        self.order += 1  # the order the browser reported it in, before the headers are read
        task = asyncio.ensure_future(self._set_cookies(response, self.order))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _set_cookies(self, response: Any, order: int) -> None:
        with contextlib.suppress(Exception):  # a response gone with its page has no headers
            host = (urlsplit(response.url).hostname or "").lower()
            for header in await response.headers_array():
                if header["name"].lower() == "set-cookie":
                    # One header per cookie; the value is cut off here and never kept.
                    for line in str(header["value"]).split("\n"):
                        name, domain = parse_set_cookie(line, host)
                        self._note(name, domain, "response", host, order)

    async def script_write(self, source: Any, name: Any, domain: Any, host: Any) -> None:
        self.order += 1
        self._note(_short(name), str(domain)[:NAME_MAX], "script", str(host).lower(), self.order)

    async def settled(self, timeout: float = 5.0) -> None:
        """Wait for the Set-Cookie headers still being read (responses keep arriving a while)."""
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            await asyncio.wait(set(self.pending), timeout=max(deadline - time.monotonic(), 0))

    def setter(self, name: str, domain: str) -> tuple[str, str]:
        found = self.writes.get((name, domain.lstrip(".").lower()))
        if found is None and len({(h, w) for _, h, w in self.by_name.get(name, [])}) == 1:
            found = self.by_name[name][-1]  # one setter wrote that name: the jar's domain differs
        return (found[1], found[2]) if found else ("", "")


async def _visit(browser: Any, url: str, settings: Settings, result: PageAudit) -> None:
    from playwright.async_api import Error as PlaywrightError

    timeout = settings.timeout
    deadline = time.monotonic() + timeout
    context = await browser.new_context(
        locale=settings.locale,
        timezone_id=settings.timezone,
        user_agent=settings.user_agent or None,
        extra_http_headers={"Accept-Language": settings.locale},
        accept_downloads=False,
    )
    try:
        observer = _Observer()
        await context.expose_binding(BINDING, observer.script_write)
        await context.add_init_script(INIT_SCRIPT)
        context.on("request", observer.request)
        context.on("response", observer.response)
        page = await context.new_page()
        page.on("websocket", observer.websocket)
        try:
            response = await page.goto(url, wait_until="domcontentloaded", timeout=timeout * 1000)
        except PlaywrightError as exc:
            message = str(exc).splitlines()[0]
            raise FetchFailure(classify_network_error(message), message) from None
        status = response.status if response is not None else None
        error = classify_status(status) if status is not None else None
        if error and response is not None:
            raise FetchFailure(error, f"HTTP {status} {response.status_text}", status)
        check_content_type(response.headers.get("content-type", "") if response else "", status)
        check_redirect(url, page.url, status)
        result.http_status = status
        # A slow pixel or a script that polls must not fail the audit: what loaded is audited.
        with contextlib.suppress(PlaywrightError):
            await page.wait_for_load_state("load", timeout=_ms_left(deadline))
        with contextlib.suppress(PlaywrightError):
            settle = min(_ms_left(deadline), SETTLE_SECONDS * 1000)
            await page.wait_for_load_state("networkidle", timeout=settle)
        await observer.settled()
        jar = await context.cookies()
        read_at = time.time()
        storage = await _storage_keys(page)
        final_url = page.url
    finally:
        # A page whose script never settles may not even close politely: bound the wait.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(context.close(), timeout=10)
    page_site = site_key(urlsplit(final_url).hostname or "")
    result.final_url = final_url if final_url != url else ""
    result.cookies = sorted(
        (_cookie(raw, page_site, observer, read_at) for raw in jar),
        key=lambda c: (not c.persistent, c.name, c.domain, c.path),
    )
    result.storage = storage
    result.third_parties = [
        ThirdParty(host, tuple(sorted(types)), sum(types.values()))
        for host, types in sorted(observer.hosts.items())
        if site_key(host) != page_site
    ]


def _ms_left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.001) * 1000


def _cookie(raw: dict[str, Any], page_site: str, observer: _Observer, read_at: float) -> Cookie:
    # Everything but the value: `raw["value"]` is never read.
    name, domain = _short(raw.get("name", "")), _short(raw.get("domain", "")).lower()
    expires = raw.get("expires")
    # -1 is the jar's "session cookie": gone when the browser closes.
    expiry = float(expires) if isinstance(expires, (int, float)) and expires > 0 else None
    set_by, host = observer.setter(name, domain)
    return Cookie(
        name=name,
        domain=domain,
        path=_short(raw.get("path", "/")),
        party=party_of(domain, page_site),
        persistent=expiry is not None,
        expires=expiry,
        lifetime_days=round((expiry - read_at) / DAY, 2) if expiry is not None else None,
        secure=bool(raw.get("secure")),
        http_only=bool(raw.get("httpOnly")),
        same_site=str(raw.get("sameSite") or ""),
        set_by=set_by,
        set_by_host=host,
    )


async def _storage_keys(page: Any) -> list[StorageKey]:
    found: set[StorageKey] = set()
    for frame in page.frames:
        origin = urlsplit(frame.url)
        if origin.scheme not in ("http", "https") or not origin.hostname:
            continue  # about:blank and srcdoc frames share their parent's storage
        try:
            keys = await asyncio.wait_for(frame.evaluate(STORAGE_KEYS), timeout=5)
        except Exception:  # a frame detached meanwhile, or one that never answers
            continue
        for area in ("local", "session"):
            for key in keys.get(area, []) if isinstance(keys, dict) else []:
                found.add(StorageKey(area, origin.hostname.lower(), _short(key)))
    return sorted(found, key=lambda s: (s.area, s.origin, s.key))


async def audit_page(browser: Any, url: str, settings: Settings) -> PageAudit:
    """Visit one page in a fresh context; a failure is a PageAudit with its class (fetch's
    classes), never an exception. Transient failures are tried again once, like documents."""
    result = PageAudit(url, now_utc())
    started = time.perf_counter()
    for attempt in range(1, RETRIES + 2):
        result = PageAudit(url, result.started_at, attempts=attempt)
        try:
            # The page's own budget bounds everything, loading, settling and reading.
            await asyncio.wait_for(
                _visit(browser, url, settings, result),
                timeout=settings.timeout + SETTLE_SECONDS + 15,
            )
        except FetchFailure as failure:
            result.error_class, result.message = failure.error_class, str(failure)
            result.http_status = failure.status
        except TimeoutError:
            result.error_class = "timeout"
            result.message = f"the page did not settle within {settings.timeout:g} s"
        except Exception as exc:  # the browser crashed or closed: a failure of this page only
            result.error_class = "browser"
            result.message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if result.ok or result.error_class not in TRANSIENT or attempt > RETRIES:
            break
        await asyncio.sleep(RETRY_PAUSE)
    result.duration_ms = round((time.perf_counter() - started) * 1000)
    return result


# --------------------------------------------------------------------------------------------
# Comparing with the last audit


def lifetime_changed(old: Cookie, new: Cookie) -> bool:
    """A session cookie became persistent (or back), or the lifetime moved by a day or more in a
    way the passing of time does not explain: a cookie set for "a year from now" keeps its
    lifetime, one set to expire on a fixed date keeps its expiry; either is unchanged."""
    if old.persistent != new.persistent:
        return True
    if not new.persistent or old.expires is None or new.expires is None:
        return False
    lifetime_moved = abs((new.lifetime_days or 0) - (old.lifetime_days or 0)) >= 1
    return lifetime_moved and abs(new.expires - old.expires) >= DAY


def _cookie_details(cookie: Cookie) -> dict[str, Any]:
    return {
        "domain": cookie.domain, "path": cookie.path, "party": cookie.party,
        "persistent": cookie.persistent, "lifetime_days": cookie.lifetime_days,
        "secure": cookie.secure, "http_only": cookie.http_only, "same_site": cookie.same_site,
        "set_by": cookie.setter,
    }  # fmt: skip


def compare(
    page: str,
    before_cookies: Iterable[Cookie],
    before_hosts: Iterable[ThirdParty],
    audit: PageAudit,
) -> list[SiteChange]:
    """What changed on a page since its previous successful audit."""
    old = {c.key: c for c in before_cookies}
    new = {c.key: c for c in audit.cookies}
    changes = [SiteChange(page, "new-cookie", k[0], _cookie_details(new[k])) for k in new
               if k not in old]  # fmt: skip
    changes += [SiteChange(page, "cookie-gone", k[0], _cookie_details(old[k])) for k in old
                if k not in new]  # fmt: skip
    for key in new.keys() & old.keys():
        if lifetime_changed(old[key], new[key]):
            details = _cookie_details(new[key])
            details.update(was_persistent=old[key].persistent,
                           was_lifetime_days=old[key].lifetime_days)  # fmt: skip
            changes.append(SiteChange(page, "cookie-lifetime-changed", key[0], details))
    old_hosts = {h.host: h for h in before_hosts}
    new_hosts = {h.host: h for h in audit.third_parties}
    changes += [SiteChange(page, "new-third-party", h, {"types": list(new_hosts[h].types)})
                for h in new_hosts if h not in old_hosts]  # fmt: skip
    changes += [SiteChange(page, "third-party-gone", h, {"types": list(old_hosts[h].types)})
                for h in old_hosts if h not in new_hosts]  # fmt: skip
    order = {kind: n for n, kind in enumerate(CHANGE_KINDS)}
    return sorted(changes, key=lambda c: (order[c.kind], c.name, str(c.details.get("domain"))))


def _identity(change: SiteChange) -> tuple[Any, ...]:
    """What makes two changes "the same change" for the quiet rule."""
    d = change.details
    return (change.kind, change.name, d.get("domain"), d.get("path"), d.get("persistent"),
            _days(d.get("lifetime_days")), d.get("was_persistent"),
            _days(d.get("was_lifetime_days")))  # fmt: skip


def _days(value: Any) -> int | None:
    return round(value) if isinstance(value, (int, float)) else None


def _stamp_minus(stamp: str, days: int) -> str:
    moment = datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return (moment - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S")


def _is_repeat(store: Store, change: SiteChange, detected_at: str) -> bool:
    since = _stamp_minus(detected_at, QUIET_DAYS)
    for row in store.db.query(
        "select kind, name, details from site_changes where page = ? and kind = ? and name = ? "
        "and detected_at >= ?",
        [change.page, change.kind, change.name, since],
    ):
        earlier = SiteChange(change.page, row["kind"], row["name"], json.loads(row["details"]))
        if _identity(earlier) == _identity(change):
            return True
    return False


def record(store: Store, run_id: int, audit: PageAudit) -> list[SiteChange]:
    """Record one page's audit and what changed since its last successful one (nothing on its
    first, the baseline, and nothing for a failure)."""
    with store.transaction():
        previous = store.last_site_audit(audit.page) if audit.ok else None
        audit.baseline = audit.ok and previous is None
        audit.audit_id = store.add_site_audit(
            {
                "run_id": run_id, "page": audit.page, "started_at": audit.started_at,
                "duration_ms": audit.duration_ms, "final_url": audit.final_url or None,
                "http_status": audit.http_status, "status": "ok" if audit.ok else "failed",
                "error_class": audit.error_class, "message": audit.message or None,
                "attempts": audit.attempts, "cookies": len(audit.cookies),
                "persistent": sum(1 for c in audit.cookies if c.persistent),
                "third_parties": len(audit.third_parties),
            },
            [c.row() for c in audit.cookies],
            [s.row() for s in audit.storage],
            [h.row() for h in audit.third_parties],
        )  # fmt: skip
        if previous is None:
            return []
        before = [Cookie.from_row(r) for r in store.site_rows("site_cookies", [previous["id"]])]
        hosts = [ThirdParty.from_row(r) for r in store.site_rows("site_hosts", [previous["id"]])]
        found = compare(audit.page, before, hosts, audit)
        changes = []
        for change in found:
            quiet = _is_repeat(store, change, audit.started_at)
            change = SiteChange(change.page, change.kind, change.name, change.details, quiet)
            store.insert_row("site_changes", {
                "run_id": run_id, "audit_id": audit.audit_id, "page": audit.page,
                "kind": change.kind, "name": change.name, "detected_at": audit.started_at,
                "details": json.dumps(change.details), "quiet": int(quiet),
            })  # fmt: skip
            changes.append(change)
        return changes


# --------------------------------------------------------------------------------------------
# The run's stage


async def audit_site(
    watchlist: Watchlist, store: Store, run_id: int, pool: FetchPool, only: str | None = None
) -> SiteAudit:
    """Audit every page of the watchlist's `agency_site` (when the run covers it: no `--only`,
    or `--only agency`), record each, and return what was found and what changed."""
    site = watchlist.agency_site
    if site is None or only not in (None, AGENCY_ID):
        return SiteAudit()
    started = time.perf_counter()
    audits = await _audit_pages(site, watchlist.settings, pool)
    changes = [change for audit in audits for change in record(store, run_id, audit)]
    return SiteAudit(audits, changes, round(time.perf_counter() - started, 3))


async def _audit_pages(site: AgencySite, settings: Settings, pool: FetchPool) -> list[PageAudit]:
    try:
        browser = await pool.browser()
    except FetchFailure as failure:
        return [PageAudit(p, now_utc(), error_class="browser", message=str(failure))
                for p in site.pages]  # fmt: skip

    async def one(url: str) -> PageAudit:
        async with pool.turn(url):  # the documents' bounds: pages at once, and per host
            return await audit_page(browser, url, settings)

    return list(await asyncio.gather(*(one(url) for url in site.pages)))


# --------------------------------------------------------------------------------------------
# The records: what each page sets now, and since when


@dataclass
class Period:
    appeared: str
    disappeared: str | None = None  # None: still there at the page's last successful audit


@dataclass
class PageState:
    """A page as its audits tell it: the last attempt, the last successful audit's findings, and
    when each cookie and host appeared and disappeared."""

    page: str
    last: dict[str, Any]  # the latest audit row, ok or failed
    latest: dict[str, Any] | None  # the latest successful audit row
    cookies: list[Cookie]
    third_parties: list[ThirdParty]
    storage: list[StorageKey]
    cookie_periods: dict[tuple[str, str, str], list[Period]]
    host_periods: dict[str, list[Period]]
    gone_cookies: list[tuple[Cookie, Period]]  # no longer set: as last seen, and when
    gone_hosts: list[tuple[ThirdParty, Period]]
    changes: list[dict[str, Any]]  # site_changes rows, newest first

    @property
    def failing(self) -> bool:
        return self.last.get("status") != "ok"

    def since(self, key: Any, periods: dict[Any, list[Period]]) -> str:
        found = periods.get(key) or []
        return found[-1].appeared if found else ""


def _periods(audits: list[dict[str, Any]], present: dict[int, set[Any]]) -> dict[Any, list[Period]]:
    """Appearance and disappearance of every key over a page's successful audits, in order."""
    periods: dict[Any, list[Period]] = {}
    open_keys: set[Any] = set()
    for audit in audits:
        here = present.get(audit["id"], set())
        for key in here - open_keys:
            periods.setdefault(key, []).append(Period(audit["started_at"]))
        for key in open_keys - here:
            periods[key][-1].disappeared = audit["started_at"]
        open_keys = set(here)
    return periods


def page_state(store: Store, page: str) -> PageState | None:
    audits = store.site_audits(page)
    if not audits:
        return None
    ok = [a for a in audits if a["status"] == "ok"]
    ids = [a["id"] for a in ok]
    cookie_rows = store.site_rows("site_cookies", ids)
    host_rows = store.site_rows("site_hosts", ids)
    present_cookies: dict[int, set[Any]] = {}
    last_cookie: dict[Any, Cookie] = {}
    for row in cookie_rows:
        cookie = Cookie.from_row(row)
        present_cookies.setdefault(row["audit_id"], set()).add(cookie.key)
        last_cookie[cookie.key] = cookie
    present_hosts: dict[int, set[Any]] = {}
    last_host: dict[str, ThirdParty] = {}
    for row in host_rows:
        host = ThirdParty.from_row(row)
        present_hosts.setdefault(row["audit_id"], set()).add(host.host)
        last_host[host.host] = host
    cookie_periods = _periods(ok, present_cookies)
    host_periods = _periods(ok, present_hosts)
    latest = ok[-1] if ok else None
    latest_id = latest["id"] if latest else None
    cookies = [Cookie.from_row(r) for r in cookie_rows if r["audit_id"] == latest_id]
    cookies.sort(key=lambda c: (not c.persistent, c.name, c.domain, c.path))
    storage = [
        StorageKey(r["area"], r["origin"], r["key"])
        for r in store.site_rows("site_storage", [latest_id] if latest_id else [])
    ]
    gone_cookies = sorted(
        ((last_cookie[k], p[-1]) for k, p in cookie_periods.items() if p[-1].disappeared),
        key=lambda g: (not g[0].persistent, g[1].disappeared or "", g[0].name),
    )
    gone_hosts = sorted(
        ((last_host[h], p[-1]) for h, p in host_periods.items() if p[-1].disappeared),
        key=lambda g: (g[1].disappeared or "", g[0].host),
    )
    changes = list(
        store.db.table("site_changes").rows_where("page = ?", [page], order_by="id desc")
    )
    return PageState(
        page=page, last=audits[-1], latest=latest, cookies=cookies,
        third_parties=[ThirdParty.from_row(r) for r in host_rows if r["audit_id"] == latest_id],
        storage=storage, cookie_periods=cookie_periods, host_periods=host_periods,
        gone_cookies=gone_cookies, gone_hosts=gone_hosts, changes=changes,
    )  # fmt: skip


def site_state(store: Store) -> list[PageState]:
    """The pages of the latest run that audited the site, in their watchlist order."""
    row = store.db.execute("select max(run_id) from site_audits").fetchone()
    if row is None or row[0] is None:
        return []
    pages = [
        r["page"]
        for r in store.db.query(
            "select page, min(id) as first from site_audits where run_id = ? group by page "
            "order by first",
            [row[0]],
        )
    ]
    return [state for page in pages if (state := page_state(store, page)) is not None]


def latest_json(store: Store) -> dict[str, Any]:
    """`tos-monitor cookies --json`: each page's latest successful audit."""
    cookies, hosts = [], []
    for state in site_state(store):
        for c in state.cookies:
            cookies.append({
                "page": state.page, "name": c.name, "domain": c.domain, "party": c.party,
                "persistent": c.persistent, "lifetime_days": c.lifetime_days,
                "secure": c.secure, "http_only": c.http_only, "same_site": c.same_site,
                "set_by": c.setter, "first_seen": state.since(c.key, state.cookie_periods),
            })  # fmt: skip
        for h in state.third_parties:
            hosts.append({"page": state.page, "host": h.host, "types": list(h.types),
                          "first_seen": state.since(h.host, state.host_periods)})  # fmt: skip
    return {"cookies": cookies, "third_party_hosts": hosts}


# --------------------------------------------------------------------------------------------
# Text for a terminal


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: Any) -> str:
    """A name or host from a page, safe for a terminal (no escape sequences, no reordering)."""
    return _UNPRINTABLE.sub("?", str(text))


def lifetime_text(cookie: Cookie) -> str:
    if not cookie.persistent or cookie.lifetime_days is None:
        return "session"
    days = cookie.lifetime_days
    if days >= 1:
        return f"{days:g} days" if round(days) != 1 else "1 day"
    return f"{max(round(days * 24), 1)} hours" if days * 24 >= 1 else "under an hour"


def _day(stamp: str | None) -> str:
    return stamp[:10] if stamp else "-"


def _table(rows: list[list[str]], indent: str = "    ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]  # fmt: skip


def format_state(states: list[PageState]) -> str:
    """`tos-monitor cookies` without --json."""
    if not states:
        return "no audit of the agency site yet (add agency_site to the watchlist and run)"
    lines: list[str] = []
    for state in states:
        lines.append(printable(state.page))
        if state.failing:
            last = state.last
            lines.append(f"  FAILED at its last audit ({_day(last['started_at'])}): "
                         f"{last['error_class']}: {printable(last['message'] or '')}")  # fmt: skip
        if state.latest is None:
            lines.append("  never audited successfully")
            continue
        persistent = sum(1 for c in state.cookies if c.persistent)
        lines.append(f"  audited {state.latest['started_at'][:16].replace('T', ' ')} UTC: "
                     f"{len(state.cookies)} cookies ({persistent} persistent), "
                     f"{len(state.third_parties)} third-party hosts")  # fmt: skip
        if state.cookies:
            rows = [["cookie", "domain", "party", "lifetime", "flags", "set by", "since"]]
            for c in state.cookies:
                flags = ",".join(f for f, on in (("Secure", c.secure), ("HttpOnly", c.http_only))
                                 if on) or "-"  # fmt: skip
                rows.append([printable(c.name) or '""', printable(c.domain), c.party,
                             lifetime_text(c), f"{flags} SameSite={c.same_site or '-'}",
                             printable(c.setter),
                             _day(state.since(c.key, state.cookie_periods))])  # fmt: skip
            lines.extend(_table(rows))
        if state.third_parties:
            rows = [["third-party host", "types", "requests", "since"]]
            rows += [[printable(h.host), ", ".join(h.types), str(h.requests),
                      _day(state.since(h.host, state.host_periods))]
                     for h in state.third_parties]  # fmt: skip
            lines.extend(_table(rows))
        if state.storage:
            keys = ", ".join(f"{s.area}:{printable(s.origin)}:{printable(s.key)}"
                             for s in state.storage)  # fmt: skip
            lines.append(f"    storage keys: {keys}")
        for cookie, period in state.gone_cookies:
            lines.append(f"    gone: cookie {printable(cookie.name)} ({printable(cookie.domain)}),"
                         f" {_day(period.appeared)} to {_day(period.disappeared)}")  # fmt: skip
        for host, period in state.gone_hosts:
            lines.append(f"    gone: host {printable(host.host)}, {_day(period.appeared)} to "
                         f"{_day(period.disappeared)}")  # fmt: skip
    return "\n".join(lines)
