"""`tos-monitor serve`: the report site over HTTP, plus the one thing it may write — a review.

Read-only for everything else: a request can read files under reports/ and snapshots/ only, and
the single POST route records a decision. Bound to 127.0.0.1 by default; another address needs
`--allow-remote` and a token from the environment (HTTP basic auth, any user name). Forms carry
a CSRF token and a POST must come from the same origin.
"""

from __future__ import annotations

import base64
import hmac
import html
import mimetypes
import re
import secrets
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from monitor.review import DECISIONS, ReviewError, record_decision
from monitor.store import Store

TOKEN_ENV = "TOS_MONITOR_TOKEN"
LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost"}
MAX_FORM_BYTES = 64 * 1024
CHANGE_PAGE = re.compile(r"^/changes/(\d+)\.html$")
REVIEW_ROUTE = re.compile(r"^/changes/(\d+)/review$")


class ServeError(ValueError):
    """A configuration that must not be served (e.g. a public bind without a token)."""


def check_bind(host: str, allow_remote: bool, token: str | None) -> None:
    if host in LOCAL_HOSTS:
        return
    if not allow_remote:
        raise ServeError(f"--host {host} is not local: add --allow-remote to serve other machines")
    if not token or len(token) < 16:
        raise ServeError(
            f"--allow-remote needs an access token of at least 16 characters in {TOKEN_ENV}"
        )


def safe_path(root: Path, url_path: str) -> Path | None:
    """The file a URL path names inside `root`, or None if it would leave `root`."""
    relative = unquote(url_path).lstrip("/")
    if "\x00" in relative or "\\" in relative:
        return None
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    candidate = root.joinpath(*parts)
    try:
        resolved = candidate.resolve(strict=True)
    except (FileNotFoundError, RuntimeError, OSError):
        return None
    if not resolved.is_relative_to(root.resolve()):
        return None  # a link pointing out of the folder
    if resolved.is_dir():
        index = resolved / "index.html"
        return index if index.is_file() else None
    return resolved if resolved.is_file() else None


def review_form(change_id: int, csrf: str) -> str:
    options = "".join(
        f'<option value="{html.escape(key)}">{html.escape(label)}</option>'
        for key, label in DECISIONS.items()
    )
    return (
        '<section class="review-form" aria-labelledby="review-form-title">'
        '<h2 id="review-form-title">Record a decision</h2>'
        f'<form method="post" action="/changes/{change_id}/review">'
        f'<input type="hidden" name="csrf" value="{html.escape(csrf)}">'
        f'<p><label for="decision">Decision</label> <select id="decision" name="decision" '
        f"required>{options}</select></p>"
        '<p><label for="by">Your name</label> <input id="by" name="by" required '
        'autocomplete="name"></p>'
        '<p><label for="note">Note</label><br><textarea id="note" name="note" rows="4" '
        'cols="60"></textarea></p>'
        '<p><button type="submit">Record decision</button></p></form></section>'
    )


class ReviewServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, home: Path, host: str, port: int, token: str | None):
        self.home = home
        self.reports = home / "reports"
        self.snapshots = home / "snapshots"
        self.token = token
        self.csrf = secrets.token_urlsafe(32)
        self.write_lock = threading.Lock()
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), Handler)


class Handler(BaseHTTPRequestHandler):
    server: ReviewServer
    server_version = "tos-monitor"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's name
        pass  # requests may carry the token; nothing is logged

    # --- access ---------------------------------------------------------------------------
    def _authorised(self) -> bool:
        token = self.server.token
        if not token:
            return True
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                _, _, given = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                given = ""
            if hmac.compare_digest(given.encode(), token.encode()):
                return True
        self.send_response(HTTPStatus.UNAUTHORIZED)
        self.send_header("WWW-Authenticate", 'Basic realm="tos-monitor"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def _send(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
        self.send_header("Referrer-Policy", "same-origin")
        self.end_headers()
        self.wfile.write(body)

    # --- reading ----------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if not self._authorised():
            return
        path = urlsplit(self.path).path
        root, rest = self.server.reports, path
        if path.startswith("/snapshots/"):
            root, rest = self.server.snapshots, path[len("/snapshots") :]
        found = safe_path(root, rest)
        if found is None:
            self._send(HTTPStatus.NOT_FOUND, b"not found")
            return
        body = found.read_bytes()
        content_type = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        if found.name.endswith(".gz"):
            content_type = "application/gzip"
        elif content_type.startswith("text/"):
            content_type += "; charset=utf-8"
        match = CHANGE_PAGE.match(path)
        if match and b"</main>" in body:
            form = review_form(int(match.group(1)), self.server.csrf).encode()
            body = body.replace(b"</main>", form + b"</main>", 1)
        self._send(HTTPStatus.OK, body, content_type)

    # --- the one write ------------------------------------------------------------------------
    def do_POST(self) -> None:  # noqa: N802
        if not self._authorised():
            return
        match = REVIEW_ROUTE.match(urlsplit(self.path).path)
        if match is None:
            self._send(HTTPStatus.NOT_FOUND, b"not found")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_FORM_BYTES:
            self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"form too large")
            return
        form = parse_qs(self.rfile.read(length).decode("utf-8", errors="replace"))
        field = {key: values[0] for key, values in form.items()}
        if not self._same_origin() or not hmac.compare_digest(
            field.get("csrf", "").encode(), self.server.csrf.encode()
        ):
            self._send(HTTPStatus.FORBIDDEN, b"refused: missing or wrong form token")
            return
        change_id = int(match.group(1))
        try:
            with self.server.write_lock:
                self._record(change_id, field)
        except ReviewError as exc:
            self._send(HTTPStatus.BAD_REQUEST, str(exc).encode())
            return
        self.send_response(HTTPStatus.SEE_OTHER)
        self.send_header("Location", f"/changes/{change_id}.html#review")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _same_origin(self) -> bool:
        origin = self.headers.get("Origin") or self.headers.get("Referer")
        if not origin:
            return True  # non-browser clients send neither; the CSRF token still applies
        return urlsplit(origin).netloc == self.headers.get("Host", "")

    def _record(self, change_id: int, field: dict[str, str]) -> None:
        store = Store(self.server.home)
        try:
            record_decision(
                store, change_id, field.get("decision", ""), field.get("by", ""),
                field.get("note", ""), via="web",
            )  # fmt: skip
            from monitor.report import update_for_review

            update_for_review(store, change_id)
        finally:
            store.close()


def make_server(
    home: Path, host: str = "127.0.0.1", port: int = 8080, token: str | None = None
) -> ReviewServer:
    return ReviewServer(home, host, port, token)
