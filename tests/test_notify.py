"""Notifications end to end: the real pipeline against a local site, then real receivers on
127.0.0.1 — an SMTP server (aiosmtpd), an HTTPS "Teams workflows" endpoint with a self-signed
certificate, and a plain json:// webhook — that can be made to fail and recover."""

from __future__ import annotations

import email
import ipaddress
import json
import re
import socket
import sqlite3
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage, MIMEPart
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import apprise
import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from monitor import review
from monitor.notify import deliver as notify
from monitor.notify import messages
from monitor.notify.site import SiteNotice
from monitor.run import run_nightly
from monitor.store import Store
from monitor.watchlist import load
from tests.conftest import run_cli
from tests.sites import PageServer, policy_page

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

REPORT_URL = "https://reports.example.gov/tos/"
PRIVACY_V1 = """# Privacy Policy

## Data we collect
We collect the information you give us when you create an account and when you use the service.

## Sharing
We do not sell your personal information to third parties.

## Governing law
These terms are governed by the laws of the State of California.
"""
# The page shows hostile markup as text (entities in the HTML), so the extracted clause holds it.
PRIVACY_V2 = PRIVACY_V1.replace(
    "We do not sell your personal information to third parties.",
    "We may sell your personal information to our advertising partners. "
    "&lt;script&gt;alert(1)&lt;/script&gt;\n\n"
    "&lt;img src=x onerror=alert(1)&gt; We use cookies to show you interest-based advertising "
    "across sites.",
).replace("California", "Delaware")
TERMS_V1 = """# Terms of Service

## Your account
You are responsible for keeping your password secret and for all activity on your account.

## Changes
We will tell you thirty days before these terms change.
"""
TERMS_V2 = TERMS_V1.replace(
    "We will tell you thirty days before these terms change.",
    "We may change these terms at any time. Continued use means you accept the changes.",
)


# --------------------------------------------------------------------------------------------
# Receivers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpSink:
    """aiosmtpd on 127.0.0.1; can be stopped and started again on the same port ("SMTP down").
    With `password`, AUTH is offered (over plain SMTP, for the test) and checked."""

    def __init__(self, password: str | None = None) -> None:
        self.port = free_port()
        self.password = password
        self.envelopes: list[Any] = []
        self.logins: list[tuple[str, str]] = []
        self.controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.envelopes.append(envelope)
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                     auth_data: Any) -> AuthResult:  # fmt: skip
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((login, password))
        return AuthResult(success=password == self.password)

    def start(self) -> None:
        extra: dict[str, Any] = {}
        if self.password is not None:
            extra = {"authenticator": self.authenticate, "auth_require_tls": False}
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **extra)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        return [email.message_from_bytes(e.content, policy=email_policy) for e in self.envelopes]


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, made at test time (nothing secret is kept in the repo)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class Receiver:
    """A webhook endpoint recording every POST; answers `fail_status` while it is set."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        self.posts: list[dict[str, Any]] = []
        self.fail_status: int | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver.fail_status or 200
                parts = urlsplit(self.path)
                receiver.posts.append({
                    "path": parts.path, "query": parse_qs(parts.query), "status": status,
                    "json": json.loads(body or b"null"),
                })  # fmt: skip
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def accepted(self) -> list[dict[str, Any]]:
        return [p for p in self.posts if p["status"] == 200]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def teams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    receiver = Receiver(self_signed_certificate(tmp_path_factory.mktemp("tls")))
    yield receiver
    receiver.close()


@pytest.fixture
def webhook() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture(autouse=True)
def quick_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notify, "BACKOFF_SECONDS", 0.05)


# --------------------------------------------------------------------------------------------
# Watchlist and nights


def mailto(sink: SmtpSink, to: str = "privacy@agency.example.gov") -> str:
    return f"mailto://127.0.0.1:{sink.port}?from=monitor@agency.example.gov&to={to}"


def workflows(receiver: Receiver, wid: str = "wf0123", sig: str = "sigABC") -> str:
    return f"workflows://127.0.0.1:{receiver.port}/{wid}/{sig}?verify=no&image=no"


def write_watchlist(
    home: Path,
    server: PageServer,
    reviewers: dict[str, list[str]],
    documents: tuple[str, ...] = ("privacy-policy",),
    **settings: Any,
) -> None:
    data = {
        "settings": {"admin": "web", "report_url": REPORT_URL, "timeout": 10, "min_chars": 40,
                     **settings},
        "reviewers": {
            "web": {"name": "Web Team", "notify": reviewers.pop("web", [])},
            **{rid: {"name": rid.title(), "notify": urls} for rid, urls in reviewers.items()},
        },
        "platforms": {"example": {
            "name": "Example", "reviewer": [r for r in reviewers if r != "web"] or "web",
            "documents": {d: {"url": server.url(f"/{d}"), "render": "http"} for d in documents},
        }},
    }  # fmt: skip
    (home / "watchlist.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def night(home: Path) -> dict[str, Any]:
    return run_nightly(load(home / "watchlist.yaml"), home).as_json()


def publish(server: PageServer, privacy: str, terms: str = TERMS_V1) -> None:
    server.page("/privacy-policy", policy_page(privacy))
    server.page("/terms-of-service", policy_page(terms))
    server.page("/gone", "gone", status=404)


def rows(home: Path, sql: str, *args: Any) -> list[dict[str, Any]]:
    with sqlite3.connect(home / "monitor.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(sql, args)]


def database_text(home: Path) -> str:
    with sqlite3.connect(home / "monitor.db") as db:
        return "\n".join(db.iterdump())


def plain_text(message: MIMEPart) -> str:
    """The text/plain body of a message the test expects to have one."""
    body = message.get_body(("plain",))
    assert body is not None, "the message has no text/plain body"
    return body.get_content()


def filename(part: MIMEPart) -> str:
    """The file name of an attachment the test expects to be named."""
    name = part.get_filename()
    assert name is not None, "an attachment without a file name"
    return name


# --------------------------------------------------------------------------------------------
# E-mail


def test_email_digest_one_per_reviewer_html_text_attachment_and_escaped_page_text(
    server: PageServer, smtp: SmtpSink, tmp_path: Path
) -> None:
    publish(server, PRIVACY_V1)
    write_watchlist(tmp_path, server, {"privacy": [mailto(smtp)]},
                    documents=("privacy-policy", "terms-of-service"),
                    attach_change_pages=True)  # fmt: skip
    assert night(tmp_path)["changes"] == []
    assert smtp.envelopes == [], "baselines are not news"

    publish(server, PRIVACY_V2, TERMS_V2)
    assert len(night(tmp_path)["changes"]) == 2

    [envelope] = smtp.envelopes
    assert envelope.rcpt_tos == ["privacy@agency.example.gov"]
    assert envelope.mail_from == "monitor@agency.example.gov"
    [mail] = smtp.messages
    assert mail["Subject"].startswith("[TOS monitor] 2 documents changed: ")
    assert "governing-law" in mail["Subject"] and "terms-changes" in mail["Subject"]
    assert mail.get_content_type() == "multipart/mixed"
    alternative, *attachments = mail.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    text_part, html_part = alternative.iter_parts()
    assert (text_part.get_content_type(), html_part.get_content_type()) == (
        "text/plain", "text/html")  # fmt: skip
    assert sorted(filename(a) for a in attachments) == ["change-1.html", "change-2.html"]
    # The run writes the report (reports/changes/<id>.html) before it notifies.
    for attached in attachments:
        change_id = filename(attached).removeprefix("change-").removesuffix(".html")
        page = tmp_path / "reports" / "changes" / f"{change_id}.html"
        assert attached.get_payload(decode=True) == page.read_bytes()

    body = html_part.get_content()
    for hostile in ("<script>alert(1)", "<img src=x"):
        assert hostile not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body
    assert "<style" not in body and "<ins" not in body and "<del" not in body
    assert 'style="' in body, "inline styles only"
    assert body.index("Deal breakers") < body.index("Review")
    assert f'href="{REPORT_URL}changes/1.html"' in body

    text = text_part.get_content()
    assert "Example — Privacy Policy" in text and "Example — Terms Of Service" in text
    assert f"{REPORT_URL}changes/1.html" in text and f"{REPORT_URL}changes/2.html" in text
    assert "Before: These terms are governed by the laws of the State of California." in text
    assert "After: These terms are governed by the laws of the State of Delaware." in text

    [message] = rows(tmp_path, "select * from notify_messages")
    assert (message["recipient"], message["channel"], message["kind"], message["status"],
            message["attempts"]) == ("privacy", "mailto", "digest", "sent", 1)  # fmt: skip
    assert sorted(json.loads(message["change_ids"])) == [1, 2]
    assert message["attachments"] == 2

    publish(server, PRIVACY_V2, TERMS_V2)
    night(tmp_path)
    assert len(smtp.envelopes) == 1, "nothing new, nothing sent"


# --------------------------------------------------------------------------------------------
# Teams and other services


def test_teams_card_over_https_and_a_json_webhook_get_markdown_with_the_link(
    server: PageServer, teams: Receiver, webhook: Receiver, tmp_path: Path
) -> None:
    publish(server, PRIVACY_V1)
    json_url = f"json://127.0.0.1:{webhook.port}/hook"
    write_watchlist(tmp_path, server, {"privacy": [workflows(teams), json_url]})
    night(tmp_path)
    assert teams.posts == [] and webhook.posts == []
    publish(server, PRIVACY_V2)
    night(tmp_path)

    [post] = teams.posts
    assert post["path"] == "/workflows/wf0123/triggers/manual/paths/invoke"
    assert post["query"]["sig"] == ["sigABC"]
    card = post["json"]
    assert card["type"] == "message" and len(json.dumps(card)) < 28_000
    [attachment] = card["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    blocks = {b.get("id"): b["text"] for b in attachment["content"]["body"]}
    assert blocks["title"].startswith("[TOS monitor] Example Privacy Policy changed — ")
    text = blocks["body"]
    assert "**Example — Privacy Policy**: new text" in text
    assert f"[Open the change page]({REPORT_URL}changes/1.html)" in text
    assert "**Deal breakers:** Governing law" in text
    assert "<script>" not in text and "<img" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text or "&lt;img src=x" in text

    [hook] = webhook.posts
    assert hook["json"]["title"] == blocks["title"]
    assert f"[Open the change page]({REPORT_URL}changes/1.html)" in hook["json"]["message"]
    assert "<script>" not in hook["json"]["message"]
    channels = rows(tmp_path, "select channel, service, format, status from notify_messages")
    assert {(c["channel"], c["format"], c["status"]) for c in channels} == {
        ("workflows", "markdown", "sent"), ("json", "markdown", "sent")}  # fmt: skip


def test_teams_body_is_cut_to_fit_the_card_limit() -> None:
    clause = "We may share your information with partners for advertising purposes. " * 8
    flags = {
        "added": [{"text": clause, "categories": ["ad-tracking"], "heading": "Sharing"}],
        "removed": [], "modified": [],
        "by_category": {"ad-tracking": {"added": 1, "removed": 0, "modified": 0}},
    }  # fmt: skip
    changes = tuple(
        messages.change_notice(
            {"id": n, "kind": "new", "detected_at": "2026-11-24T03:00:00Z",
             "summary": json.dumps({"blocks_added": 1, "words_added": 90}),
             "flags": json.dumps(flags)},
            {"platform_name": f"Platform {n}", "name": "Privacy Policy",
             "url": f"https://example.com/{n}"},
            REPORT_URL,
        )
        for n in range(400)
    )  # fmt: skip
    content = messages.Content("digest", "Privacy", changes=changes, report_url=REPORT_URL)
    profile = notify.PROFILES_BY_SCHEME["workflows"]
    rendered = messages.render(
        messages.FORMATS[profile.format], content, profile.budget, profile.measure
    )
    assert rendered.truncated and 0 < rendered.omitted < 400
    assert messages.json_length(rendered.body) <= notify.TEAMS_BODY_BUDGET
    assert f"…and {rendered.omitted} more" in rendered.body and REPORT_URL in rendered.body
    html = messages.render(messages.FORMATS["html"], content)
    assert not html.truncated, "e-mail is not cut"


def test_markdown_and_html_escaping_of_page_text() -> None:
    hostile = "**bold** [x](javascript:alert(1)) <at>Boss</at> `code` # _i_ \u202eevil"
    md = messages.md_escape(hostile)
    assert "<at>" not in md and "&lt;at&gt;Boss&lt;/at&gt;" in md
    assert "\\*\\*bold\\*\\*" in md and "\\[x\\]" in md and "\\`code\\`" in md
    assert "\u202e" not in md, "no bidirectional override"
    html = messages.FORMATS["html"].esc('<b onclick="x">&</b>')
    assert html == "&lt;b onclick=&quot;x&quot;&gt;&amp;&lt;/b&gt;"


# Markup, Markdown, a Teams mention, a link, a bidirectional override and a bell, as page text.
HOSTILE = ('<img src=x onerror=alert(1)> **bold** [click](https://evil.example/) <at>Boss</at> '
           '`code` \u202eevil\x07')  # fmt: skip


def _hostile_contents() -> list[messages.Content]:
    """Digests and an alert with hostile page text in every field that can hold it."""
    flags = {
        "added": [{"text": f"Added {HOSTILE}", "categories": ["ad-tracking"],
                   "heading": f"Heading {HOSTILE}"}],
        "removed": [{"text": f"Removed {HOSTILE}", "categories": [], "heading": ""}],
        "modified": [{"old": {"text": "We keep data for one year."},
                      "new": {"text": f"We keep data {HOSTILE} for ten years."},
                      "categories": ["data-location"], "heading": HOSTILE}],
        "by_category": {"ad-tracking": {"added": 1}, "data-location": {"modified": 1}},
    }  # fmt: skip
    change = messages.change_notice(
        {"id": 7, "kind": "new", "detected_at": "2026-11-24T03:00:00Z", "note": HOSTILE,
         "suspect": 1, "summary": json.dumps({"blocks_added": 1}), "flags": json.dumps(flags)},
        {"platform_name": HOSTILE, "name": HOSTILE, "url": "https://example.com/p"},
        REPORT_URL,
    )  # fmt: skip
    awaiting = messages.AwaitingNotice(8, HOSTILE, HOSTILE, "2026-11-01T03:00:00Z",
                                       messages.change_link(REPORT_URL, 8))  # fmt: skip
    failing = messages.FailureNotice(
        "p/d", HOSTILE, HOSTILE, "https://example.com/d?a=*b*", "2026-11-20T03:00:00Z", 3,
        "blocked", f"HTTP 403 {HOSTILE}", messages.failure_hint("blocked", ""),
    )  # fmt: skip
    moved = messages.FailureNotice(
        "p/e", "Example", "Terms", "https://example.com/e", "", 0, "relocated", "",
        messages.HINTS["relocated"], proposed_selector=f"main {HOSTILE}",
        old_selectors=(HOSTILE,), relocated_at="2026-11-24T03:00:00Z",
    )  # fmt: skip
    # The agency site's section: cookie names, hosts and what set a cookie come from the pages.
    cookie = SiteNotice(
        HOSTILE, "https://agency.example.gov/", "new-cookie", HOSTILE,
        {"persistent": True, "lifetime_days": 395, "party": "third-party",
         "set_by": f"response from {HOSTILE}"}, "2026-11-24T03:00:00Z", f"{REPORT_URL}agency.html",
    )  # fmt: skip
    host = SiteNotice(
        HOSTILE, "https://agency.example.gov/services", "new-third-party", HOSTILE,
        {"types": [HOSTILE]}, "2026-11-24T03:00:00Z", f"{REPORT_URL}agency.html",
    )  # fmt: skip
    return [
        messages.Content("digest", HOSTILE, changes=(change,), report_url=REPORT_URL,
                         awaiting=(awaiting,), site=(cookie, host)),
        messages.Content("digest", HOSTILE, report_url=REPORT_URL, site=(cookie, host)),
        messages.Content("alert", HOSTILE, failures=(failing, moved)),
        messages.Content("test", HOSTILE, channel=HOSTILE),
    ]  # fmt: skip


@pytest.mark.parametrize("fmt", sorted(messages.FORMATS))
def test_every_format_escapes_page_text_in_every_field(fmt: str) -> None:
    for content in _hostile_contents():
        body = messages.render(messages.FORMATS[fmt], content).body
        assert "\u202e" not in body and "\x07" not in body, "control characters are dropped"
        assert "evil.example" in body, "the hostile text is shown"
        if fmt == "html":
            assert "<img" not in body and "<at>" not in body
            assert body.count("&lt;img src=x onerror=alert(1)&gt;") >= 2
            assert 'href="https://evil.example' not in body
        elif fmt == "text":
            assert body.count("[click](https://evil.example/)") >= 2, "plain text, as written"
        else:
            # Nothing the page wrote is markup: its < > & are entities, and every character
            # that could start bold, code or a link is backslash-escaped.
            assert "<img" not in body and "<at>" not in body
            assert body.count("&lt;img src=x onerror=alert(1)&gt;") >= 2
            assert "**bold**" not in body
            assert body.count(r"\[click\](https://evil.example/)") >= 2
            assert body.count(r"\*\*bold\*\* ") >= 2 and "`code`" not in body
            links = re.findall(r"(?<!\\)\[[^\]]*\]\(([^)]*)\)", body)
            assert all(url.startswith(("https://example.com/", REPORT_URL)) for url in links)
            if content.kind == "alert":  # a link's text is escaped too (here, the address)
                assert "[https://example.com/d?a=\\*b\\*](https://example.com/d?a=*b*)" in body
        for notice in content.site:  # each cookie name and host is shown, escaped, set apart
            name = messages.FORMATS[fmt].esc(notice.name)
            assert {"html": f"<code>{name}</code>", "text": f" {name} "}.get(fmt, f"**{name}**") \
                in body  # fmt: skip


def test_email_css_is_inlined_from_the_template_style_block() -> None:
    digest = _hostile_contents()[0]
    body = messages.render(messages.FORMATS["html"], digest).body
    assert "<style" not in body, "mail clients drop <style>: the rules are inlined"
    # The rules reach the elements by their class: the edit marks and the quote boxes.
    assert re.search(r'<span class="del" style="[^"]*line-through', body)
    assert re.search(r'<span class="ins" style="[^"]*font-weight: ?bold', body)
    assert re.search(r'<div class="quote quote-added" style="[^"]*border-left: ?4px solid #1a7f37',
                     body)  # fmt: skip


# --------------------------------------------------------------------------------------------
# Delivery that loses nothing and repeats nothing


def test_failed_channel_is_retried_next_run_once_and_the_other_channel_is_not(
    server: PageServer, smtp: SmtpSink, teams: Receiver, tmp_path: Path
) -> None:
    publish(server, PRIVACY_V1)
    write_watchlist(tmp_path, server, {"privacy": [mailto(smtp), workflows(teams)]})
    night(tmp_path)
    teams.fail_status = 500
    publish(server, PRIVACY_V2)
    night(tmp_path)

    assert len(smtp.envelopes) == 1
    assert len(teams.posts) == notify.TRIES == 2, "retried within the run"
    failed = rows(tmp_path, "select * from notify_messages where channel = 'workflows'")
    assert [(m["status"], m["attempts"]) for m in failed] == [("failed", 2)]
    assert "500" in failed[0]["last_error"]
    found, _ = notify.pending(Store(tmp_path), load(tmp_path / "watchlist.yaml"))
    waiting = {p.channel: [i["change_id"] for i in p.items] for p in found}
    assert waiting == {"mailto": [], "workflows": [1]}

    teams.fail_status = None
    night(tmp_path)  # no new change: only the pending card goes out
    assert len(teams.accepted) == 1 and len(smtp.envelopes) == 1
    assert "Example — Privacy Policy" in json.dumps(teams.accepted[0]["json"], ensure_ascii=False)

    night(tmp_path)
    assert len(teams.posts) == 3 and len(smtp.envelopes) == 1, "a third run sends nothing"
    deliveries = rows(tmp_path, "select item_id, channel from notify_deliveries order by channel")
    assert deliveries == [{"item_id": 1, "channel": "mailto"},
                          {"item_id": 1, "channel": "workflows"}]  # fmt: skip


def test_smtp_down_then_up_delivers_once_and_secrets_stay_out_of_db_logs_and_errors(
    server: PageServer, teams: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    password, signature = "Sm7p-pa55-w0rd", "Tsig-9f8e7d6c5b"
    sink = SmtpSink(password=password)
    monkeypatch.setenv("SMTP_PASS", password)
    monkeypatch.setenv("TEAMS_SIG", signature)
    caplog.set_level(1)  # everything, Apprise's TRACE output included
    publish(server, PRIVACY_V1)
    url = (f"mailto://tos:${{SMTP_PASS}}@127.0.0.1:{sink.port}"
           "?from=monitor@agency.example.gov&to=privacy@agency.example.gov")  # fmt: skip
    write_watchlist(tmp_path, server, {"privacy": [url, workflows(teams, sig="${TEAMS_SIG}")]})
    night(tmp_path)
    teams.fail_status = 503
    publish(server, PRIVACY_V2)
    night(tmp_path)  # SMTP server down, Teams failing
    errors = [m["last_error"] for m in rows(tmp_path, "select * from notify_messages")]
    assert len(errors) == 2 and all(errors)

    sink.start()
    teams.fail_status = None
    try:
        night(tmp_path)
        night(tmp_path)
    finally:
        sink.stop()
    assert len(sink.envelopes) == 1, "delivered on the next run, exactly once"
    assert "Example Privacy Policy changed" in sink.messages[0]["Subject"]
    assert sink.logins == [("tos", password)], "the variable was filled at send time"
    assert teams.accepted[0]["query"]["sig"] == [signature]

    found, problems = notify.pending(Store(tmp_path), load(tmp_path / "watchlist.yaml"))
    shown = notify.format_pending(found, problems)
    for secret in (password, signature):
        assert secret not in database_text(tmp_path)
        assert secret not in caplog.text
        assert all(secret not in e for e in errors)
        assert secret not in shown
    assert "apprise" not in {r.name for r in caplog.records}, "Apprise's own output is held back"
    # The check above means something: unguarded, Apprise logs the password itself.
    caplog.clear()
    apprise.Apprise.instantiate(url.replace("${SMTP_PASS}", password))
    assert password in caplog.text


def test_fetch_failure_alerts_the_admin_once_per_streak_then_says_it_recovered(
    server: PageServer, smtp: SmtpSink, tmp_path: Path
) -> None:
    publish(server, PRIVACY_V1)
    write_watchlist(tmp_path, server, {"web": [mailto(smtp, "web@agency.example.gov")]})
    data = yaml.safe_load((tmp_path / "watchlist.yaml").read_text())
    data["platforms"]["example"]["documents"]["moved"] = {"url": server.url("/gone"),
                                                          "render": "http"}  # fmt: skip
    (tmp_path / "watchlist.yaml").write_text(yaml.safe_dump(data))

    night(tmp_path)
    assert smtp.envelopes == [], "one failed run is not yet an alert (failure_alert_after: 2)"
    night(tmp_path)
    [alert] = smtp.messages
    assert alert["Subject"] == "[TOS monitor] Fetch failing: Example Moved (http-4xx)"
    text = plain_text(alert)
    assert "2 runs in a row" in text and "404" in text
    assert "gone or has moved" in text and server.url("/gone") in text
    night(tmp_path)
    assert len(smtp.envelopes) == 1, "once per streak, not every night"

    server.page("/gone", policy_page(PRIVACY_V1))
    night(tmp_path)
    assert len(smtp.envelopes) == 2
    assert smtp.messages[1]["Subject"] == "[TOS monitor] Fetched again: Example Moved"
    assert "Fetched again on" in plain_text(smtp.messages[1])
    night(tmp_path)
    assert len(smtp.envelopes) == 2


def test_hints_name_the_fix_for_each_failure_class() -> None:
    assert "gone or has moved" in messages.failure_hint("http-4xx", "HTTP 404 Not Found")
    assert "removed" in messages.failure_hint("http-4xx", "", http_status=410)
    assert "`select`" in messages.failure_hint("selector-missing", "#terms matched nothing")
    assert "bot wall" in messages.failure_hint("blocked", "captcha")
    assert "bot wall" in messages.failure_hint("timeout", "Timeout 30000ms exceeded")


def test_relocated_policy_block_tells_the_admin_once_with_the_proposed_selector(
    server: PageServer, smtp: SmtpSink, tmp_path: Path
) -> None:
    publish(server, PRIVACY_V1)
    write_watchlist(tmp_path, server, {"web": [mailto(smtp, "web@agency.example.gov")]})
    data = yaml.safe_load((tmp_path / "watchlist.yaml").read_text())
    data["platforms"]["example"]["documents"]["privacy-policy"]["select"] = ["#policy"]
    (tmp_path / "watchlist.yaml").write_text(yaml.safe_dump(data))
    night(tmp_path)
    assert smtp.envelopes == []

    redesigned = policy_page(PRIVACY_V1).replace('<main id="policy">', '<main class="legal-text">')
    server.page("/privacy-policy", redesigned)
    summary = night(tmp_path)
    assert summary["failures"] == [] and summary["changes"] == []
    [fetch] = rows(tmp_path, "select relocated from fetches where relocated is not null")
    assert fetch["relocated"] == "main.legal-text"
    [mail] = smtp.messages
    assert mail["Subject"] == "[TOS monitor] Update the watchlist's select: Example Privacy Policy"
    text = plain_text(mail)
    assert "Old select: #policy" in text and "Proposed select: main.legal-text" in text
    assert "update the watchlist's select" in text and server.url("/privacy-policy") in text
    [item] = rows(tmp_path, "select recipient, kind, ref from notify_items")
    assert item == {"recipient": "web", "kind": "relocated",
                    "ref": "relocated:example/privacy-policy@main.legal-text"}  # fmt: skip

    server.page("/privacy-policy", redesigned)
    night(tmp_path)
    assert len(smtp.envelopes) == 1, "once per document and proposed selector, not every night"

    # The selector is page-derived text: escaped like the rest.
    hostile = messages.FailureNotice(
        "example/p", "Example", "Privacy", "https://example.com/p", "", 0, "relocated", "",
        messages.HINTS["relocated"], proposed_selector="main.<img src=x onerror=alert(1)>",
        old_selectors=("#policy",), relocated_at="2026-11-24T03:00:00.000000Z",
    )  # fmt: skip
    content = messages.Content("alert", "Web Team", failures=(hostile,))
    for fmt in ("html", "markdown"):
        body = messages.render(messages.FORMATS[fmt], content).body
        assert "<img" not in body and "&lt;img src=x onerror=alert(1)&gt;" in body


def _days_ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _backdate(home: Path, sql: str, days: int) -> None:
    with sqlite3.connect(home / "monitor.db") as db:
        db.execute(sql, [_days_ago(days)])


def test_changes_awaiting_review_are_reminded_once_per_period_until_decided(
    server: PageServer, smtp: SmtpSink, tmp_path: Path
) -> None:
    publish(server, PRIVACY_V1)
    write_watchlist(tmp_path, server, {"privacy": [mailto(smtp)]},
                    documents=("privacy-policy", "terms-of-service"))  # fmt: skip
    night(tmp_path)
    publish(server, PRIVACY_V2, TERMS_V2)
    assert len(night(tmp_path)["changes"]) == 2
    night(tmp_path)
    assert len(smtp.envelopes) == 1, "a fresh change is not yet a reminder"

    _backdate(tmp_path, "update changes set detected_at = ?", 10)
    night(tmp_path)
    assert len(smtp.envelopes) == 2, "a reminder on its own, with nothing new"
    reminder = smtp.messages[1]
    assert reminder["Subject"] == "[TOS monitor] 2 changes awaiting your review"
    text = plain_text(reminder)
    assert "Awaiting your review" in text and _days_ago(10)[:10] in text
    assert "Example — Privacy Policy" in text and "Example — Terms Of Service" in text
    assert f"{REPORT_URL}changes/1.html" in text and f"{REPORT_URL}changes/2.html" in text
    [message] = rows(tmp_path, "select * from notify_messages where id = 2")
    assert (message["kind"], message["status"]) == ("digest", "sent")
    night(tmp_path)
    assert len(smtp.envelopes) == 2, "at most once per review_reminder_days"

    review.record_decision(Store(tmp_path), 1, "acceptable", "Privacy Officer")
    _backdate(tmp_path, "update notify_items set created_at = ? where kind = 'reminder'", 8)
    night(tmp_path)
    assert len(smtp.envelopes) == 3
    assert smtp.messages[2]["Subject"] == "[TOS monitor] 1 change awaiting your review"
    text = plain_text(smtp.messages[2])
    assert f"{REPORT_URL}changes/2.html" in text and f"{REPORT_URL}changes/1.html" not in text

    review.record_decision(Store(tmp_path), 2, "needs-pio", "Privacy Officer")
    _backdate(tmp_path, "update notify_items set created_at = ? where kind = 'reminder'", 8)
    night(tmp_path)
    assert len(smtp.envelopes) == 3, "every change decided: no reminder"
    found, _ = notify.pending(Store(tmp_path), load(tmp_path / "watchlist.yaml"))
    assert all(not p.items for p in found)


# --------------------------------------------------------------------------------------------
# Commands


def test_notify_command_pending_send_and_test(
    server: PageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = SmtpSink()
    monkeypatch.setenv("SMTP_PORT", str(sink.port))
    url = ("mailto://127.0.0.1:${SMTP_PORT}?from=monitor@agency.example.gov"
           "&to=privacy@agency.example.gov")  # fmt: skip
    publish(server, PRIVACY_V1)
    write_watchlist(tmp_path, server, {"privacy": [url]})
    night(tmp_path)
    publish(server, PRIVACY_V2)
    night(tmp_path)  # the SMTP server is down

    shown = run_cli(tmp_path, "notify", "--pending")
    assert shown.returncode == 0, shown.stderr
    assert "privacy via mailto: 1 pending: change #1 (example/privacy-policy)" in shown.stdout
    assert "failed" in shown.stdout and str(sink.port) not in shown.stdout

    sink.start()
    try:
        sent = run_cli(tmp_path, "notify")
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "sent digest to privacy via mailto" in sent.stdout
        again = run_cli(tmp_path, "notify")
        assert again.returncode == 0 and "nothing to send" in again.stdout
        tested = run_cli(tmp_path, "notify", "--test", "--reviewer", "privacy")
        assert tested.returncode == 0, tested.stdout + tested.stderr
    finally:
        sink.stop()
    subjects = [m["Subject"] for m in sink.messages]
    assert subjects[0].startswith("[TOS monitor] Example Privacy Policy changed")
    assert subjects[1:] == ["[TOS monitor] Test message"]
    night(tmp_path)
    assert len(sink.envelopes) == 2

    unknown = run_cli(tmp_path, "notify", "--test", "--reviewer", "nobody")
    assert unknown.returncode == 2 and "no such reviewer" in unknown.stderr


def test_validate_checks_urls_and_names_missing_variables_without_values(
    server: PageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "tok-0123456789")
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    publish(server, PRIVACY_V1)
    write_watchlist(tmp_path, server, {
        "privacy": ["json://127.0.0.1:9/${HOOK_TOKEN}", "mailto://${NOT_SET_ANYWHERE}/"],
        "pio": ["bogus://${HOOK_TOKEN}@example.gov"],
    })  # fmt: skip
    result = run_cli(tmp_path, "validate")
    # Warnings: `validate` fails only where `run` would refuse, and a run must not stop over a
    # notification channel.
    assert result.returncode == 0 and "ok — 1 platforms" in result.stdout
    assert "reviewers.privacy.notify[1]: ${NOT_SET_ANYWHERE} is not set" in result.stderr
    assert "reviewers.pio.notify[0]: Apprise cannot use this URL: bogus://…" in result.stderr
    assert "watchlist.yaml:" in result.stderr and "tok-0123456789" not in result.stderr
    assert "reviewers.privacy.notify[0]" not in result.stderr, "a set variable, a usable URL"

    # A run with an unusable channel still records its data; the problem is only logged.
    night(tmp_path)
    publish(server, PRIVACY_V2)
    assert len(night(tmp_path)["changes"]) == 1


def test_apprise_yaml_config_with_tags(
    server: PageServer, smtp: SmtpSink, webhook: Receiver, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("HOOK_PORT", str(webhook.port))
    (tmp_path / "apprise.yml").write_text(yaml.safe_dump({"urls": [
        {mailto(smtp): [{"tag": "privacy"}]},
        {"json://127.0.0.1:${HOOK_PORT}/privacy": [{"tag": "privacy, chat"}]},
        {"json://127.0.0.1:${HOOK_PORT}/other": [{"tag": "other"}]},
    ]}))  # fmt: skip
    publish(server, PRIVACY_V1)
    write_watchlist(tmp_path, server, {"privacy": []})
    data = yaml.safe_load((tmp_path / "watchlist.yaml").read_text())
    data["reviewers"]["privacy"]["notify"] = {"config": "apprise.yml", "tags": ["privacy"]}
    (tmp_path / "watchlist.yaml").write_text(yaml.safe_dump(data))
    assert run_cli(tmp_path, "validate").returncode == 0
    night(tmp_path)
    publish(server, PRIVACY_V2)
    night(tmp_path)
    assert len(smtp.envelopes) == 1
    assert [p["path"] for p in webhook.posts] == ["/privacy"]
