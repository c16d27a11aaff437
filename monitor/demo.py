"""`tos-monitor demo`: the whole flow on this machine in about a minute, offline.

Real published versions of three platforms' documents (monitor/data/demo, from Open Terms Archive,
ODC-BY 1.0) are served from 127.0.0.1 by a server inside this process, and the ordinary nightly
run fetches them with Chromium night after night: a baseline, a night where only the pages' noise
differs (no change), a night of real amendments, a flip to another variant and back. Then the
report is built and one reviewer's digest is written to DIR/outbox/ as the e-mail (.eml) and its
HTML body (.html). Nothing is sent and nothing leaves the machine: Chromium resolves no name but
127.0.0.1.
"""

from __future__ import annotations

import gzip
import html
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import markdown
import yaml

from monitor.resources import data_dir

REVIEWER = "privacy-team"
DEFAULT_HOME = "tos-monitor-demo"
WATCHLIST_MARK = "# Written by `tos-monitor demo`"
# The demo's pages are on 127.0.0.1; any other name fails inside Chromium, never on the network.
RESOLVER_RULES = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"


@dataclass(frozen=True)
class DemoDocument:
    platform: str
    platform_name: str
    document: str
    name: str

    @property
    def path(self) -> str:
        return f"/{self.platform}/{self.document}"


YOUTUBE = DemoDocument("youtube", "YouTube", "terms-of-service", "Terms of Service")
LINKEDIN = DemoDocument("linkedin", "LinkedIn", "privacy-policy", "Privacy Policy")
INSTAGRAM = DemoDocument("instagram", "Instagram", "terms-of-service", "Terms of Use")
DOCUMENTS = (YOUTUBE, LINKEDIN, INSTAGRAM)

# Each night: what it shows, and which bundled version each page serves.
NIGHTS: list[tuple[str, dict[DemoDocument, str]]] = [
    ("baseline: every document's first version is recorded",
     {YOUTUBE: "2021-05-18", LINKEDIN: "2025-04-01", INSTAGRAM: "2026-08-17-A"}),
    ("noise: the pages' time stamps, tokens and banners differ, the texts do not (no change)",
     {YOUTUBE: "2021-05-18", LINKEDIN: "2025-04-01", INSTAGRAM: "2026-08-17-A"}),
    ("amendments: YouTube's and LinkedIn's real next versions",
     {YOUTUBE: "2023-04-08", LINKEDIN: "2026-02-20", INSTAGRAM: "2026-08-17-A"}),
    ("flip: Instagram serves its other variant",
     {YOUTUBE: "2023-04-08", LINKEDIN: "2026-02-20", INSTAGRAM: "2026-08-17-B"}),
    ("flip back: Instagram returns to the first variant (a revert, not a new text)",
     {YOUTUBE: "2023-04-08", LINKEDIN: "2026-02-20", INSTAGRAM: "2026-08-17-A"}),
]  # fmt: skip


def version_text(document: DemoDocument, version: str) -> str:
    name = f"{document.platform}-{document.document}-{version}.md.gz"
    return gzip.decompress((data_dir() / "demo" / name).read_bytes()).decode("utf-8")


def page_html(document: DemoDocument, version: str, night: int) -> bytes:
    """A platform-like page: the policy in <main>, and around it what changes on every load of
    a real page (a request id, a time stamp, a rotating banner)."""
    policy = markdown.markdown(version_text(document, version))
    token = f"{(night + 1) * 7919 * 104729:016x}"
    banner = ["Try our new app!", "Join millions of creators", "Download for iOS"][night % 3]
    title = html.escape(f"{document.platform_name} {document.name}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="csrf-token" content="{token}">
<script>window.__REQUEST_ID__ = "{token}";</script></head>
<body data-build="{1000 + night}">
<header><nav><a href="/">Home</a> <a href="/help">Help</a></nav></header>
<div id="cookie-banner" class="cookie-consent">We use cookies. {banner}
<button>Accept all</button></div>
<main id="policy">{policy}</main>
<footer>Page generated on night {night + 1} - request {token[:8]}</footer>
</body></html>""".encode()


class DemoSite:
    """The demo's pages, served from 127.0.0.1 on a free port by a thread of this process."""

    def __init__(self) -> None:
        self.pages: dict[str, bytes] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                body = site.pages.get(self.path.split("?")[0])
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # the demo's output is the run's summary, not an access log

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, document: DemoDocument) -> str:
        return f"http://127.0.0.1:{self.port}{document.path}"

    def show(self, night: int) -> None:
        for document, version in NIGHTS[night][1].items():
            self.pages[document.path] = page_html(document, version, night)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def demo_site() -> Iterator[DemoSite]:
    site = DemoSite()
    try:
        yield site
    finally:
        site.close()


def watchlist_data(site: DemoSite, home: Path) -> dict[str, Any]:
    platforms: dict[str, Any] = {}
    for document in DOCUMENTS:
        platform = platforms.setdefault(
            document.platform, {"name": document.platform_name, "documents": {}}
        )
        platform["documents"][document.document] = {
            "name": document.name,
            "url": site.url(document),
        }
    return {
        "settings": {
            # The digest links to the report's change pages in this folder.
            "report_url": (home / "reports").resolve().as_uri() + "/",
            "admin": REVIEWER,
            "default_reviewer": REVIEWER,
            "concurrency": 3,
            "per_host": 3,
            "timeout": 30,
            "chromium_args": [RESOLVER_RULES],
        },
        # No channel: the digest goes to the outbox folder, never to a mail server.
        "reviewers": {REVIEWER: {"name": "Agency Privacy Officer", "notify": []}},
        "platforms": platforms,
    }


class DemoError(Exception):
    """The demo cannot run in this folder."""


def run_demo(home: Path, say: Callable[[str], None] = print) -> dict[str, Any]:
    """The demo's nights, report and outbox in `home`; returns what it made."""
    from monitor.notify.outbox import write_outbox
    from monitor.report import REPORT_DIR, build_site
    from monitor.run import run_nightly
    from monitor.store import Store
    from monitor.watchlist import load

    if (home / "monitor.db").exists():
        # Demo nights added to real records would be a lie in them.
        raise DemoError(f"{home} already holds records (monitor.db); give the demo a new folder")
    watchlist_path = home / "watchlist.yaml"
    if watchlist_path.exists() and not watchlist_path.read_text().startswith(WATCHLIST_MARK):
        raise DemoError(f"{home} has a watchlist.yaml of its own; give the demo a new folder")
    home.mkdir(parents=True, exist_ok=True)
    changes = 0
    with demo_site() as site:
        watchlist_path.write_text(
            f"{WATCHLIST_MARK}: its pages were served from this machine.\n"
            + yaml.safe_dump(watchlist_data(site, home), sort_keys=False)
        )
        watchlist = load(watchlist_path)
        for night, (what, _) in enumerate(NIGHTS):
            site.show(night)
            summary = run_nightly(watchlist, home)
            if summary.failed:
                failures = "; ".join(f"{o.document.key}: {o.fetch.message}"
                                     for o in summary.failures)  # fmt: skip
                raise DemoError(f"night {night + 1} could not fetch its pages: {failures}")
            found = [
                f"{o.document.key} ({o.recorded.outcome})" for o in summary.changes if o.recorded
            ]
            changes += len(found)
            say(f"night {night + 1}: {what}")
            say(f"  changes recorded: {', '.join(found) if found else 'none'}")
    store = Store(home)
    try:
        build_site(store)
        outbox = write_outbox(store, watchlist, REVIEWER, home / "outbox")
    finally:
        store.close()
    report = home / REPORT_DIR / "index.html"
    say("")
    say(f"{changes} changes recorded over {len(NIGHTS)} nights. Open:")
    say(f"  the report:   {report}")
    for file in outbox:
        label = "the digest:  " if file.suffix == ".html" else "as e-mail:   "
        say(f"  {label} {file}")
    say(f"  and list the changes: tos-monitor --home {home} changes")
    return {"report": report, "outbox": outbox, "changes": changes}
