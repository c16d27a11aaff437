"""Local web sites for the tests: a real HTTP server on 127.0.0.1 whose pages the test rewrites
night by night, and a generator of realistic policy pages (real text plus the noise real platform
pages carry: timestamps, request ids, CSRF tokens, rotating banners)."""

from __future__ import annotations

import gzip
import html
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import markdown

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Route:
    body: bytes | Callable[[], bytes]
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    delay: float = 0.0
    # A list of pairs may repeat a header (several Set-Cookie lines).
    headers: dict[str, str] | list[tuple[str, str]] = field(default_factory=dict)
    # Streamed: sent in 64 KB chunks with no Content-Length (the body ends when the connection
    # closes), so only counting the bytes as they arrive tells how big the page is.
    stream: bool = False
    # (n, wait): the first n bytes of the body are sent, then `wait()` is called before the rest
    # (a page whose end is late, held until the test says so).
    hold: tuple[int, Callable[[], object]] | None = None


class PageServer:
    """Serves `routes[path]`; unknown paths are 404. A list of routes is served in turn, its last
    one from then on (a page that fails first and recovers). Counts hits per path. `host` is a
    loopback address (127.0.0.2 plays a third party to pages on 127.0.0.1)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.routes: dict[str, Route | list[Route]] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = self.path.split("?")[0]
                server.hits[path] = server.hits.get(path, 0) + 1
                route = server.routes.get(path)
                if isinstance(route, list):
                    route = route.pop(0) if len(route) > 1 else route[0]
                if route is None:
                    self.send_error(404, "Not Found")
                    return
                if route.delay:
                    time.sleep(route.delay)
                body = route.body() if callable(route.body) else route.body
                try:
                    self.send_response(route.status)
                    self.send_header("Content-Type", route.content_type)
                    if not route.stream:
                        self.send_header("Content-Length", str(len(body)))
                    pairs = route.headers
                    for key, value in pairs.items() if isinstance(pairs, dict) else pairs:
                        self.send_header(key, value)
                    self.end_headers()
                    if route.hold is not None:
                        size, wait = route.hold
                        self.wfile.write(body[:size])
                        self.wfile.flush()
                        wait()
                        body = body[size:]
                    if route.stream:
                        for start in range(0, len(body), 65536):
                            self.wfile.write(body[start : start + 65536])
                            self.wfile.flush()
                    else:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def page(self, path: str, body: str, **kwargs: object) -> None:
        self.routes[path] = Route(body.encode("utf-8"), **kwargs)  # type: ignore[arg-type]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def read_fixture_md(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8")


def policy_page(markdown_text: str, rng: random.Random | None = None, js: bool = False) -> str:
    """A page like a platform's: navigation, cookie banner, scripts and a footer around the policy.

    Every call varies the noise (time stamps, tokens, banner text, attribute order) unless the same
    seeded `rng` is given, so back-to-back fetches differ in HTML but not in policy text. With
    `js`, the policy is put into the page by script after 300 ms, as on JavaScript-rendered sites.
    """
    rng = rng or random.Random()
    token = f"{rng.getrandbits(128):032x}"
    stamp = f"2026-11-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
    promo = rng.choice(["Try our new app!", "Join millions of creators", "Download for iOS"])
    policy = markdown.markdown(markdown_text)
    if js:
        escaped = policy.replace("\\", "\\\\").replace("`", "\\`").replace("${", "\\${")
        main = (
            '<main id="policy"></main>'
            f"<script>setTimeout(() => {{ document.getElementById('policy').innerHTML = "
            f"`{escaped}`; }}, 300);</script>"
        )
    else:
        main = f'<main id="policy">{policy}</main>'
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Terms</title>
<meta name="csrf-token" content="{token}">
<script>window.__REQUEST_ID__ = "{token[:16]}"; window.__RENDERED_AT__ = "{stamp}";</script>
<style>.hidden {{ display: none }}</style></head>
<body data-build="{rng.randint(1000, 9999)}">
<header><nav><a href="/">Home</a> <a href="/help">Help</a> <a href="/login?t={token}">Log in</a>
</nav></header>
<div id="cookie-banner" class="cookie-consent">We use cookies. {html.escape(promo)}
<button>Accept all</button></div>
<aside class="promo">{html.escape(promo)} Rendered {stamp}</aside>
{main}
<form action="/search"><input type="hidden" name="csrf" value="{token}"><input name="q"></form>
<footer>Page generated {stamp} - request {token[:8]}</footer>
</body></html>"""


def make_pdf(lines: list[str]) -> bytes:
    """A small valid PDF whose page shows `lines` (Helvetica), with a correct xref table."""

    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    ops = ["BT /F1 11 Tf 14 TL 50 780 Td"]
    for line in lines:
        ops.append(f"({esc(line)}) Tj T*" if line else "T*")
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
