"""What the reviewers read: digests of changed documents and fetch-failure alerts, rendered for
each kind of channel (HTML e-mail, Markdown chat, plain text).

Everything here is pure: plain data in (rows from `monitor.db`), strings out. Delivery, retries
and secrets live in `monitor.notify`.

Text that comes from fetched pages (clauses, headings, error messages that quote a page) is
hostile by assumption: a platform, or whoever controls its page, could put markup in a policy.
Each format escapes it for its own syntax at the last moment (`Format.esc`), and control and
bidirectional-override characters are removed for every format (`clean`), so a clause can neither
inject markup nor visually reorder the text around it.
"""

from __future__ import annotations

import difflib
import html
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.categories import CATEGORIES, SEVERITY_ORDER
from monitor.notify.site import HEADING as SITE_HEADING
from monitor.notify.site import REMINDER as SITE_REMINDER
from monitor.notify.site import SiteNotice, sentence, subject_text

SUBJECT_PREFIX = "[TOS monitor]"
SUBJECT_MAX = 200
SUBJECT_CATEGORIES = 5

# --------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class CategoryHit:
    id: str
    title: str
    severity: str
    added: int = 0
    removed: int = 0
    modified: int = 0


@dataclass(frozen=True)
class Quote:
    """One changed clause. `segments` ([(-1|0|1, text)]) is set for modified clauses only."""

    kind: str  # "added", "removed" or "modified"
    text: str  # the clause as it reads now (as it read, for a removed one)
    categories: tuple[str, ...] = ()
    heading: str = ""
    segments: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class ChangeNotice:
    change_id: int
    platform: str
    document: str
    url: str
    kind: str  # "new" or "revert"
    detected_at: str
    counts: dict[str, Any]
    categories: tuple[CategoryHit, ...]
    quotes: tuple[Quote, ...]  # most important first
    link: str = ""  # the change page, or "" when settings.report_url is not set
    note: str = ""
    suspect: bool = False
    reverted_to: str = ""  # first-seen date of the earlier text, for a revert

    @property
    def title(self) -> str:
        return f"{self.platform} {self.document}"


@dataclass(frozen=True)
class FailureNotice:
    document_key: str
    platform: str
    document: str
    url: str
    failing_since: str
    failures: int
    error_class: str
    message: str
    hint: str
    recovered_at: str = ""  # set: this is the "fetched again" note for an earlier alert
    # Set: this is a relocation notice (`select` matched nothing, the text was found there).
    proposed_selector: str = ""
    old_selectors: tuple[str, ...] = ()
    relocated_at: str = ""

    @property
    def title(self) -> str:
        return f"{self.platform} {self.document}"

    @property
    def failing(self) -> bool:
        return not self.recovered_at and not self.proposed_selector


@dataclass(frozen=True)
class AwaitingNotice:
    """A change detected long ago that still has no review decision (a reminder)."""

    change_id: int
    platform: str
    document: str
    detected_at: str
    link: str = ""

    @property
    def title(self) -> str:
        return f"{self.platform} {self.document}"


@dataclass(frozen=True)
class Content:
    """What one message says, before it is rendered for a channel."""

    kind: str  # "digest", "alert" or "test"
    recipient: str  # display name
    changes: tuple[ChangeNotice, ...] = ()
    failures: tuple[FailureNotice, ...] = ()
    report_url: str = ""
    awaiting: tuple[AwaitingNotice, ...] = ()  # digest: changes still awaiting review
    channel: str = ""  # for test messages: which channel this is
    site: tuple[SiteNotice, ...] = ()  # digest: the agency site's cookie and third-party changes


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    format: str  # "html", "markdown" or "text" (Apprise's NotifyFormat values)
    truncated: bool = False
    omitted: int = 0  # sections left out to fit the channel's size limit


# --------------------------------------------------------------------------------------------
# From database rows to notices


def change_link(report_url: str, change_id: int) -> str:
    """The change page the report writes at reports/changes/<id>.html, under report_url."""
    if not report_url:
        return ""
    return f"{report_url.rstrip('/')}/changes/{change_id}.html"


def _loads(value: str | None, default: Any) -> Any:
    try:
        return json.loads(value) if value else default
    except ValueError:
        return default


def category_hits(flags: dict[str, Any]) -> tuple[CategoryHit, ...]:
    """Categories the change touches, deal breakers first (registry order)."""
    by_category = flags.get("by_category") or {}
    hits = [
        CategoryHit(cid, cat.title, cat.severity, **{k: int(v) for k, v in by_category[cid].items()
                                                       if k in ("added", "removed", "modified")})
        for cid, cat in CATEGORIES.items()
        if cid in by_category
    ]  # fmt: skip
    return tuple(sorted(hits, key=lambda h: SEVERITY_ORDER[h.severity]))


def _severity_rank(categories: Sequence[str]) -> int:
    ranks = [SEVERITY_ORDER[CATEGORIES[c].severity] for c in categories if c in CATEGORIES]
    return min(ranks, default=len(SEVERITY_ORDER))


_KIND_ORDER = {"modified": 0, "added": 1, "removed": 2}


def select_quotes(flags: dict[str, Any]) -> tuple[Quote, ...]:
    """Changed clauses, most important first: flagged ones by severity, then the rest.

    Among equals, modified clauses come before added and removed ones (an edit of an existing
    obligation is what reviewers miss most), then longer before shorter: "Learn more." is rarely
    what a reviewer needs to see.
    """
    quotes: list[Quote] = []
    for kind in ("added", "removed"):
        for entry in flags.get(kind) or []:
            quotes.append(
                Quote(kind, entry.get("text", ""), tuple(entry.get("categories") or ()),
                      entry.get("heading", ""))
            )  # fmt: skip
    for entry in flags.get("modified") or []:
        old, new = entry.get("old", {}).get("text", ""), entry.get("new", {}).get("text", "")
        quotes.append(
            Quote("modified", new, tuple(entry.get("categories") or ()), entry.get("heading", ""),
                  word_diff(old, new))
        )  # fmt: skip
    quotes.sort(key=lambda q: (_severity_rank(q.categories), _KIND_ORDER[q.kind], -len(q.text)))
    return tuple(quotes)


def change_notice(
    change: dict[str, Any],
    document: dict[str, Any],
    report_url: str,
    reverted_to: str = "",
) -> ChangeNotice:
    flags = _loads(change.get("flags"), {})
    return ChangeNotice(
        change_id=change["id"],
        platform=document.get("platform_name") or document.get("platform") or "",
        document=document.get("name") or document.get("document") or "",
        url=document.get("url") or "",
        kind=change.get("kind") or "new",
        detected_at=change.get("detected_at") or "",
        counts=_loads(change.get("summary"), {}),
        categories=category_hits(flags),
        quotes=select_quotes(flags),
        link=change_link(report_url, change["id"]),
        note=change.get("note") or "",
        suspect=bool(change.get("suspect")),
        reverted_to=reverted_to,
    )


# Advice per failure class; "class:status" entries refine a class by the HTTP status.
HINTS: dict[str, str] = {
    "selector-missing": "The watchlist's `select` no longer matches anything on the page: the site "
    "was probably redesigned. Open the page, find the element that holds the policy and update "
    "`select` in watchlist.yaml.",
    "http-4xx:404": "The page is gone or has moved (404). Find the document's new address on the "
    "platform's site and update `url` in watchlist.yaml.",
    "http-4xx:410": "The page was removed (410 Gone). Find the document's new address on the "
    "platform's site and update `url` in watchlist.yaml.",
    "http-4xx:401": "The page asks for a login (401): the platform may have put the document "
    "behind an account, or the address changed.",
    "http-4xx:403": "The server refused the request (403): usually a bot wall or a block of the "
    "monitor's address. Check that the page opens in a normal browser from the same network.",
    "http-4xx": "The server answered with a client error: check the document's address.",
    "http-429": "The platform is rate-limiting the monitor (429). It usually passes; if it "
    "persists, lower `per_host` or `concurrency`.",
    "http-5xx": "The platform's server is failing (5xx). Usually an outage that passes by itself.",
    "timeout": "No policy text appeared in time: a slow site, or a bot wall or consent page that "
    "never shows the text. Open the page from the monitor's machine; raise `timeout` if it is "
    "just slow.",
    "empty": "The page had almost no text: a login wall, a consent page, a bot check, or a script "
    "that never ran. Open the page from the monitor's machine to see what it serves.",
    "blocked": "The platform served a bot wall, login page or error page instead of the policy. "
    "Open the page from the monitor's machine; it may need a different `url` or `render`.",
    "suspect": "The text changed so drastically that it was not believed: maybe a substituted "
    "page. Compare the page in a browser with the last version.",
    "redirected": "The address now redirects to another site: the document has probably moved. "
    "Update `url` in watchlist.yaml.",
    "dns": "The host name does not resolve: a typo in `url`, or the domain is gone.",
    "connection": "The connection was refused or reset: the server is down or a firewall blocks "
    "the monitor.",
    "tls": "The TLS handshake or certificate check failed: an intercepting proxy or a "
    "misconfigured site.",
    "not-html": "The address serves something other than a page (a download?): check `url`.",
    "too-large": "The page is larger than 20 MB: the address probably points at the wrong thing.",
    "browser": "Chromium could not start or crashed: check the monitor's machine and the message.",
    "relocated": "The page was redesigned: the watchlist's `select` matched nothing, and the "
    "policy text was found at the proposed selector, which the monitor uses meanwhile. Check it "
    "on the page and update the watchlist's select in watchlist.yaml.",
}
_STATUS = re.compile(r"\b([1-5]\d\d)\b")


def failure_hint(error_class: str, message: str, http_status: int | None = None) -> str:
    status = http_status or next(iter(_STATUS.findall(message or "")), None)
    for key in (f"{error_class}:{status}", error_class):
        if key in HINTS:
            return HINTS[key]
    return "See the message; `tos-monitor history` shows the document's fetches."


# --------------------------------------------------------------------------------------------
# Text helpers shared by every format

# C0/C1 controls and the bidirectional overrides/isolates that could reorder surrounding text.
_UNSAFE_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """One line of displayable text: unsafe characters dropped, whitespace folded."""
    return " ".join(_UNSAFE_CHARS.sub("", text or "").split())


def shorten(text: str, limit: int) -> str:
    text = clean(text)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0] if " " in text[: limit - 1] else text[: limit - 1]
    return cut.rstrip(" ,;:") + "…"


_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")


def word_diff(old: str, new: str) -> tuple[tuple[int, str], ...]:
    """Word-level edit of one clause, as (-1 deleted / 0 kept / 1 inserted, text) segments."""
    a, b = _TOKEN.findall(clean(old)), _TOKEN.findall(clean(new))
    segments: list[tuple[int, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            segments.append((0, "".join(a[i1:i2])))
            continue
        if i2 > i1:
            segments.append((-1, "".join(a[i1:i2])))
        if j2 > j1:
            segments.append((1, "".join(b[j1:j2])))
    return tuple(segments)


def side(segments: Sequence[tuple[int, str]], sign: int, limit: int) -> list[tuple[int, str]]:
    """One side of a word diff (before: sign -1, after: +1), long unchanged runs elided so the
    edit stays visible within `limit` characters."""
    keep = [(op, text) for op, text in segments if op in (0, sign)]
    out: list[tuple[int, str]] = []
    for n, (op, text) in enumerate(keep):
        if op == 0 and len(text) > 120:
            head = "" if n == 0 else text[:50].rsplit(" ", 1)[0] + " "
            tail = "" if n == len(keep) - 1 else " " + text[-50:].split(" ", 1)[-1]
            text = f"{head}…{tail}"
        out.append((op, text))
    total = 0
    for n, (op, text) in enumerate(out):
        if total + len(text) > limit:
            out[n] = (op, text[: max(limit - total, 0)] + "…")
            return out[: n + 1]
        total += len(text)
    return out


def when(timestamp: str) -> str:
    """`2026-11-24T03:00:01.123Z` -> `2026-11-24 03:00 UTC`."""
    if len(timestamp) >= 16 and timestamp[10] == "T":
        return f"{timestamp[:10]} {timestamp[11:16]} UTC"
    return timestamp


def counts_text(counts: dict[str, Any]) -> str:
    """`3 paragraphs added, 1 modified; +120 / −40 words (6% of the text)`."""
    parts = [
        f"{counts[key]} {label}"
        for key, label in (
            ("blocks_added", "added"),
            ("blocks_removed", "removed"),
            ("blocks_modified", "modified"),
            ("blocks_moved", "moved"),
        )
        if counts.get(key)
    ]
    if not parts:
        return "only formatting changed"
    first, rest = parts[0].split(" ", 1)
    noun = "paragraph" if first == "1" else "paragraphs"
    blocks = ", ".join([f"{first} {noun} {rest}", *parts[1:]])
    words = f"+{counts.get('words_added', 0)} / −{counts.get('words_removed', 0)} words"
    share = counts.get("share_changed")
    share_text = f" ({share:.0%} of the text)" if isinstance(share, (int, float)) and share else ""
    return f"{blocks}; {words}{share_text}"


def kind_text(change: ChangeNotice) -> str:
    if change.kind == "revert":
        since = f" (first seen {change.reverted_to[:10]})" if change.reverted_to else ""
        return f"reverted to an earlier text{since}"
    return "new text"


SEVERITY_LABELS = {"deal-breaker": "Deal breakers", "review": "Review", "info": "Info"}


def hit_text(hit: CategoryHit) -> str:
    parts = [f"{n} {k}" for k, n in (("added", hit.added), ("removed", hit.removed),
                                      ("modified", hit.modified)) if n]  # fmt: skip
    return f"{hit.title} ({', '.join(parts)})" if parts else hit.title


def grouped_hits(hits: Sequence[CategoryHit]) -> list[tuple[str, list[CategoryHit]]]:
    groups: dict[str, list[CategoryHit]] = {}
    for hit in hits:
        groups.setdefault(hit.severity, []).append(hit)
    return [(sev, groups[sev]) for sev in SEVERITY_ORDER if sev in groups]


def quote_label(quote: Quote) -> str:
    label = {"added": "Added", "removed": "Removed", "modified": "Changed"}[quote.kind]
    return f"{label} ({', '.join(quote.categories)})" if quote.categories else label


# --------------------------------------------------------------------------------------------
# Subjects


def subject(content: Content) -> str:
    return shorten(_SUBJECTS[content.kind](content), SUBJECT_MAX)


def _digest_subject(content: Content) -> str:
    changes = content.changes
    if content.site:
        site = subject_text(content.site)
        if not changes:
            return f"{SUBJECT_PREFIX} {site}"
        return f"{_digest_subject(Content(**{**content.__dict__, 'site': ()}))}; {site}"
    if not changes:
        n = len(content.awaiting)
        return f"{SUBJECT_PREFIX} {n} change{'' if n == 1 else 's'} awaiting your review"
    cats: list[str] = []
    for hit in sorted((h for c in changes for h in c.categories),
                      key=lambda h: SEVERITY_ORDER[h.severity]):  # fmt: skip
        if hit.id not in cats:
            cats.append(hit.id)
    if len(cats) > SUBJECT_CATEGORIES:
        cats = [*cats[:SUBJECT_CATEGORIES], "…"]
    tail = f" — {', '.join(cats)}" if cats else ""
    if len(changes) == 1:
        verb = "reverted" if changes[0].kind == "revert" else "changed"
        return f"{SUBJECT_PREFIX} {clean(changes[0].title)} {verb}{tail}"
    names = ", ".join(clean(c.title) for c in changes[:2])
    more = f" and {len(changes) - 2} more" if len(changes) > 2 else ""
    return f"{SUBJECT_PREFIX} {len(changes)} documents changed: {names}{more}{tail}"


def _alert_subject(content: Content) -> str:
    failing = [f for f in content.failures if f.failing]
    moved = [f for f in content.failures if f.proposed_selector]
    if moved and not failing:
        names = ", ".join(clean(f.title) for f in moved[:2])
        more = f" and {len(moved) - 2} more" if len(moved) > 2 else ""
        return f"{SUBJECT_PREFIX} Update the watchlist's select: {names}{more}"
    if not failing:
        names = ", ".join(clean(f.title) for f in content.failures[:2])
        return f"{SUBJECT_PREFIX} Fetched again: {names}"
    if len(failing) == 1:
        f = failing[0]
        return f"{SUBJECT_PREFIX} Fetch failing: {clean(f.title)} ({f.error_class})"
    return f"{SUBJECT_PREFIX} {len(failing)} documents failing to fetch"


def _test_subject(content: Content) -> str:
    return f"{SUBJECT_PREFIX} Test message"


_SUBJECTS: dict[str, Callable[[Content], str]] = {
    "digest": _digest_subject,
    "alert": _alert_subject,
    "test": _test_subject,
}


# --------------------------------------------------------------------------------------------
# Formats: each renders the same pieces in its own syntax; `render` assembles and fits them.


@dataclass(frozen=True)
class Format:
    """Base of the renderers. Subclasses escape (`esc`) and mark up; limits are per channel."""

    name: str  # the Apprise body format this produces
    quotes: int = 3  # clauses quoted per change
    clause_chars: int = 300
    joiner: str = "\n\n"

    def esc(self, text: str) -> str:
        return clean(text)

    def esc_inline(self, text: str) -> str:
        """`esc` for a piece of a sentence: its edge spaces are kept (`clean` strips them)."""
        lead = " " if text[:1].isspace() else ""
        trail = " " if text[-1:].isspace() and text.strip() else ""
        return f"{lead}{self.esc(text)}{trail}"

    # pieces -------------------------------------------------------------------------------
    def header(self, content: Content) -> str:
        raise NotImplementedError

    def change(self, change: ChangeNotice) -> str:
        raise NotImplementedError

    def failure(self, failure: FailureNotice) -> str:
        raise NotImplementedError

    def awaiting(self, content: Content) -> str:
        raise NotImplementedError

    def site(self, content: Content) -> str:
        """The agency site's changes (`content.site`) and the best-practice reminder."""
        raise NotImplementedError

    def test(self, content: Content) -> str:
        raise NotImplementedError

    def more(self, omitted: int, report_url: str) -> str:
        raise NotImplementedError

    def footer(self, content: Content) -> str:
        raise NotImplementedError

    def wrap(self, title: str, body: str) -> str:
        return body

    # shared wording ----------------------------------------------------------------------
    def intro(self, content: Content) -> str:
        if content.kind == "digest" and content.site and not content.changes:
            return f"The nightly audit of {content.site[0].site}'s own pages found changes to " \
                "the cookies they set and the third parties they call."  # fmt: skip
        if content.kind == "digest" and not content.changes:
            n = len(content.awaiting)
            docs = "1 change" if n == 1 else f"{n} changes"
            verb = "awaits" if n == 1 else "await"
            return f"{docs} to documents you review still {verb} your decision."
        if content.kind == "digest":
            n = len(content.changes)
            docs = "1 document" if n == 1 else f"{n} documents"
            return f"tos-monitor recorded changes to {docs} you review. Deal breakers come first."
        if content.kind == "alert" and all(f.recovered_at for f in content.failures):
            return "tos-monitor fetches these documents again: their changes are watched again."
        if content.kind == "alert" and all(f.proposed_selector for f in content.failures):
            return "The watchlist's select of these documents no longer matches their page; " \
                "tos-monitor found the text at another selector and watches it there."  # fmt: skip
        if content.kind == "alert" and any(f.proposed_selector for f in content.failures):
            return "These documents need attention: some failed to fetch on consecutive " \
                "runs, some need their watchlist select updated."  # fmt: skip
        if content.kind == "alert":
            return "tos-monitor could not fetch these documents on consecutive runs, so their " \
                "changes are not being watched until this is fixed."  # fmt: skip
        return "This is a test message from tos-monitor."

    def awaiting_text(self) -> str:
        return "Detected a while ago and still without a decision " \
            "('tos-monitor review' records one):"  # fmt: skip

    def footer_text(self) -> str:
        return "Sent by tos-monitor. Each change is reported once per channel; " \
            "'tos-monitor history PLATFORM DOCUMENT' lists every version."  # fmt: skip

    def test_text(self, content: Content) -> str:
        return f"If you can read this, the channel {content.channel or ''} of "\
            f"{content.recipient} works: change digests and alerts will arrive here."  # fmt: skip


# -- HTML e-mail -------------------------------------------------------------------------------
# Inline styles only: mail clients strip <style> blocks, and Gmail drops <ins>/<del>, so edits
# are styled <span>s. No lists or tables: Apprise derives the plain-text alternative from this
# HTML, and divs/paragraphs read best there.

_S = {
    "body": "margin:0;padding:16px;background:#f6f8fa;color:#1f2328;"
    "font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:14px;"
    "line-height:1.5",
    "box": "max-width:760px;margin:0 auto;background:#ffffff;border:1px solid #d0d7de;"
    "border-radius:6px;padding:20px",
    "h1": "font-size:20px;margin:0 0 8px 0",
    "h2": "font-size:17px;margin:0 0 4px 0",
    "meta": "margin:0 0 6px 0;color:#57606a;font-size:13px",
    "p": "margin:0 0 8px 0",
    "section": "border-top:1px solid #d0d7de;margin-top:16px;padding-top:12px",
    "label": "font-size:12px;color:#57606a;margin:0 0 2px 0",
    "del": "background:#ffebe9;color:#82071e;text-decoration:line-through",
    "ins": "background:#dafbe1;color:#116329;font-weight:bold",
    "a": "color:#0969da",
    "warn": "margin:0 0 8px 0;padding:6px 10px;background:#fff8c5;border:1px solid #d4a72c",
    "foot": "margin-top:20px;color:#57606a;font-size:12px",
}
_BADGE = {"deal-breaker": "color:#cf222e", "review": "color:#9a6700", "info": "color:#57606a"}
_QUOTE_BORDER = {"added": "#1a7f37", "removed": "#cf222e", "modified": "#bf8700"}


@dataclass(frozen=True)
class HtmlFormat(Format):
    name: str = "html"
    quotes: int = 5
    clause_chars: int = 600
    joiner: str = "\n"

    def esc(self, text: str) -> str:
        return html.escape(clean(text), quote=True)

    def link(self, url: str, text: str | None = None) -> str:
        # The address is shown as the link text so the plain-text alternative keeps it.
        return f'<a href="{self.esc(url)}" style="{_S["a"]}">{self.esc(text or url)}</a>'

    def header(self, content: Content) -> str:
        title = {"digest": "Policy changes", "alert": "Documents failing to fetch",
                 "test": "Test message"}[content.kind]  # fmt: skip
        if content.kind == "digest" and content.site and not content.changes:
            title = "Agency site changes"
        elif content.kind == "digest" and not content.changes:
            title = "Awaiting your review"
        elif (
            content.kind == "alert"
            and not any(f.failing for f in content.failures)
            and any(f.proposed_selector for f in content.failures)
        ):
            title = "Watchlist selectors to update"
        return (
            f'<h1 style="{_S["h1"]}">{title} for {self.esc(content.recipient)}</h1>'
            f'<p style="{_S["p"]}">{self.esc(self.intro(content))}</p>'
        )

    def change(self, change: ChangeNotice) -> str:
        parts = [
            f'<div style="{_S["section"]}">',
            f'<h2 style="{_S["h2"]}">{self.esc(change.platform)} — {self.esc(change.document)}'
            "</h2>",
            f'<p style="{_S["meta"]}">{self.esc(kind_text(change).capitalize())} · detected '
            f"{self.esc(when(change.detected_at))} · {self.link(change.url)}</p>",
        ]
        if change.suspect:
            parts.append(f'<p style="{_S["warn"]}">Drastic change, confirmed by a second fetch: '
                         "check that the page is really the policy.</p>")  # fmt: skip
        if change.note:
            parts.append(f'<p style="{_S["meta"]}">{self.esc(change.note)}</p>')
        parts.append(f'<p style="{_S["p"]}">Changes: {self.esc(counts_text(change.counts))}</p>')
        parts.extend(self.categories(change.categories))
        parts.extend(self.quote(q) for q in change.quotes[: self.quotes])
        if len(change.quotes) > self.quotes:
            parts.append(f'<p style="{_S["meta"]}">…and {len(change.quotes) - self.quotes} '
                         "more changed clauses on the change page.</p>")  # fmt: skip
        if change.link:
            parts.append(f'<p style="{_S["p"]}">Change page: {self.link(change.link)}</p>')
        parts.append("</div>")
        return "".join(parts)

    def categories(self, hits: Sequence[CategoryHit]) -> list[str]:
        if not hits:
            return [f'<p style="{_S["p"]}">Flagged categories: none.</p>']
        lines = []
        for severity, group in grouped_hits(hits):
            badge = f'<b style="{_BADGE[severity]}">{SEVERITY_LABELS[severity]}:</b>'
            names = "; ".join(self.esc(hit_text(h)) for h in group)
            lines.append(f'<p style="{_S["p"]}">{badge} {names}</p>')
        return lines

    def quote(self, quote: Quote) -> str:
        box = (
            f"margin:8px 0;padding:6px 10px;border-left:4px solid {_QUOTE_BORDER[quote.kind]};"
            "background:#f6f8fa"
        )
        under = f" · under “{self.esc(shorten(quote.heading, 120))}”" if quote.heading else ""
        label = f'<p style="{_S["label"]}">{self.esc(quote_label(quote))}{under}</p>'
        if quote.kind != "modified" or not quote.segments:
            style = _S["del"] if quote.kind == "removed" else ""
            text = self.esc(shorten(quote.text, self.clause_chars))
            body = f'<p style="{_S["p"]}"><span style="{style}">{text}</span></p>'
        else:
            body = (
                f'<p style="{_S["p"]}">Before: {self.segments(quote.segments, -1)}</p>'
                f'<p style="{_S["p"]}">After: {self.segments(quote.segments, 1)}</p>'
            )
        return f'<div style="{box}">{label}{body}</div>'

    def segments(self, segments: Sequence[tuple[int, str]], sign: int) -> str:
        style = _S["del"] if sign < 0 else _S["ins"]
        return "".join(
            self.esc_inline(text) if op == 0
            else f'<span style="{style}">{self.esc_inline(text)}</span>'
            for op, text in side(segments, sign, self.clause_chars)
        )  # fmt: skip

    def failure(self, failure: FailureNotice) -> str:
        head = (
            f'<div style="{_S["section"]}">'
            f'<h2 style="{_S["h2"]}">{self.esc(failure.platform)} — {self.esc(failure.document)}'
            f'</h2><p style="{_S["meta"]}">{self.link(failure.url)}</p>'
        )
        if failure.recovered_at:
            return head + (
                f'<p style="{_S["p"]}">Fetched again on {self.esc(when(failure.recovered_at))}, '
                f"after failing since {self.esc(when(failure.failing_since))}.</p></div>"
            )
        if failure.proposed_selector:
            return head + (
                f'<p style="{_S["p"]}">The policy text moved on the page '
                f"({self.esc(when(failure.relocated_at))}).</p>"
                f'<p style="{_S["p"]}">Old select: '
                f"<b>{self.esc(', '.join(failure.old_selectors))}</b> — matches nothing</p>"
                f'<p style="{_S["p"]}">Proposed select: '
                f"<b>{self.esc(failure.proposed_selector)}</b></p>"
                f'<p style="{_S["p"]}">What to do: {self.esc(failure.hint)}</p></div>'
            )
        return head + (
            f'<p style="{_S["p"]}">Failing since {self.esc(when(failure.failing_since))} '
            f"({failure.failures} runs in a row).</p>"
            f'<p style="{_S["p"]}">Error: <b>{self.esc(failure.error_class)}</b> — '
            f"{self.esc(shorten(failure.message, self.clause_chars))}</p>"
            f'<p style="{_S["p"]}">What to do: {self.esc(failure.hint)}</p></div>'
        )

    def awaiting(self, content: Content) -> str:
        items = []
        for a in content.awaiting:
            link = f" · {self.link(a.link)}" if a.link else ""
            items.append(
                f'<p style="{_S["p"]}">{self.esc(a.platform)} — {self.esc(a.document)} · '
                f"detected {self.esc(when(a.detected_at))}{link}</p>"
            )
        return (
            f'<div style="{_S["section"]}"><h2 style="{_S["h2"]}">Awaiting your review</h2>'
            f'<p style="{_S["meta"]}">{self.esc(self.awaiting_text())}</p>{"".join(items)}</div>'
        )

    def site(self, content: Content) -> str:
        items = []
        for notice in content.site:
            before, name, after = sentence(notice)
            items.append(
                f'<p style="{_S["p"]}">{self.esc(before[:1].upper() + before[1:])} '
                f"<code>{self.esc(name)}</code> {self.esc(after)}"
                f' <span style="{_S["meta"]}">({self.esc(notice.page)})</span></p>'
            )
        link = content.site[0].link
        more = f'<p style="{_S["p"]}">Agency site page: {self.link(link)}</p>' if link else ""
        return (
            f'<div style="{_S["section"]}"><h2 style="{_S["h2"]}">{self.esc(SITE_HEADING)}</h2>'
            f'{"".join(items)}<p style="{_S["warn"]}">{self.esc(SITE_REMINDER)}</p>{more}</div>'
        )

    def test(self, content: Content) -> str:
        return f'<p style="{_S["p"]}">{self.esc(self.test_text(content))}</p>'

    def more(self, omitted: int, report_url: str) -> str:
        where = f" See {self.link(report_url)}." if report_url else ""
        return f'<p style="{_S["p"]}">…and {omitted} more, left out to keep this short.{where}</p>'

    def footer(self, content: Content) -> str:
        return f'<p style="{_S["foot"]}">{self.esc(self.footer_text())}</p>'

    def wrap(self, title: str, body: str) -> str:
        return (
            '<!DOCTYPE html><html><head><meta charset="utf-8">'
            f"<title>{self.esc(title)}</title></head>"
            f'<body style="{_S["body"]}"><div style="{_S["box"]}">{body}</div></body></html>'
        )


# -- Markdown (Teams, Slack, ntfy, json:// ...) ------------------------------------------------
# Only the subset every target renders: bold, lists, links, paragraphs. Teams' Adaptive Card
# TextBlock has no headings, tables or block quotes, and needs a blank line for a line break.

# Markdown punctuation that can start emphasis, code, links, tables or headings. With "[" and "]"
# escaped, "(", ")" and "!" cannot form a link or an image, so they stay readable.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]#|~])")


def md_escape(text: str) -> str:
    """Page text as literal Markdown: HTML (and Teams' <at> mentions) defused as entities,
    then every Markdown control character backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(clean(text), quote=False))


def md_url(url: str) -> str:
    return clean(url).replace(" ", "%20").replace("(", "%28").replace(")", "%29") \
        .replace("<", "%3C").replace(">", "%3E")  # fmt: skip


@dataclass(frozen=True)
class MarkdownFormat(Format):
    name: str = "markdown"

    def esc(self, text: str) -> str:
        return md_escape(text)

    def bold(self, text: str) -> str:
        return f"**{text}**"

    def italic(self, text: str) -> str:
        return f"_{text}_"

    def link(self, url: str, text: str) -> str:
        return f"[{self.esc(text)}]({md_url(url)})"

    def header(self, content: Content) -> str:
        return self.esc(self.intro(content))

    def change(self, change: ChangeNotice) -> str:
        lines = [
            f"{self.bold(f'{self.esc(change.platform)} — {self.esc(change.document)}')}: "
            f"{self.esc(kind_text(change))}, detected {self.esc(when(change.detected_at))}"
        ]
        if change.suspect:
            lines.append("⚠ Drastic change, confirmed by a second fetch: check the page.")
        if change.note:
            lines.append(self.italic(self.esc(change.note)))
        lines.append(f"Changes: {self.esc(counts_text(change.counts))}")
        for severity, group in grouped_hits(change.categories):
            names = "; ".join(self.esc(hit_text(h)) for h in group)
            lines.append(f"{self.bold(SEVERITY_LABELS[severity] + ':')} {names}")
        quotes = [self.quote(q) for q in change.quotes[: self.quotes]]
        if quotes:
            lines.append("\n".join(quotes))
        if change.link:
            lines.append(self.link(change.link, "Open the change page"))
        return "\n\n".join(lines)

    def quote(self, quote: Quote) -> str:
        label = self.bold(f"{self.esc(quote_label(quote))}:")
        if quote.kind == "modified" and quote.segments:
            before = self.side_text(quote.segments, -1)
            after = self.side_text(quote.segments, 1)
            return f"- {label} “{before}” → “{after}”"
        return f"- {label} “{self.esc(shorten(quote.text, self.clause_chars))}”"

    def side_text(self, segments: Sequence[tuple[int, str]], sign: int) -> str:
        return "".join(
            self.esc_inline(text) if op == 0 else self.changed(self.esc(text), sign)
            for op, text in _spaced(side(segments, sign, self.clause_chars // 2))
        )

    def changed(self, text: str, sign: int) -> str:
        # Markdown has no portable "deleted"/"inserted" style: changed words are in bold.
        return self.bold(text)

    def failure(self, failure: FailureNotice) -> str:
        title = self.bold(f"{self.esc(failure.platform)} — {self.esc(failure.document)}")
        if failure.recovered_at:
            return (
                f"{title}: fetched again on {self.esc(when(failure.recovered_at))}, after "
                f"failing since {self.esc(when(failure.failing_since))}."
            )
        if failure.proposed_selector:
            return "\n\n".join([
                f"{title}: the policy text moved on the page "
                f"({self.esc(when(failure.relocated_at))})",
                f"Old select: {self.bold(self.esc(', '.join(failure.old_selectors)))} — "
                "matches nothing",
                f"Proposed select: {self.bold(self.esc(failure.proposed_selector))}",
                f"What to do: {self.esc(failure.hint)}",
                self.link(failure.url, failure.url),
            ])  # fmt: skip
        return "\n\n".join([
            f"{title}: failing since {self.esc(when(failure.failing_since))} "
            f"({failure.failures} runs in a row)",
            f"Error: {self.bold(self.esc(failure.error_class))} — "
            f"{self.esc(shorten(failure.message, self.clause_chars))}",
            f"What to do: {self.esc(failure.hint)}",
            self.link(failure.url, failure.url),
        ])  # fmt: skip

    def awaiting(self, content: Content) -> str:
        lines = [f"{self.bold('Awaiting your review')}: {self.esc(self.awaiting_text())}"]
        for a in content.awaiting:
            link = f" — {self.link(a.link, 'change page')}" if a.link else ""
            lines.append(f"- {self.esc(a.platform)} — {self.esc(a.document)}, detected "
                         f"{self.esc(when(a.detected_at))}{link}")  # fmt: skip
        return "\n".join(lines)

    def site(self, content: Content) -> str:
        items = []
        for notice in content.site:
            before, name, after = sentence(notice)
            items.append(f"- {self.esc(before[:1].upper() + before[1:])} {self.code(name)} "
                         f"{self.esc(after)}")  # fmt: skip
        parts = ["\n".join([self.bold(self.esc(SITE_HEADING)), *items]), self.esc(SITE_REMINDER)]
        if content.site[0].link:
            parts.append(self.link(content.site[0].link, "Open the Agency site page"))
        return "\n\n".join(parts)

    def code(self, name: str) -> str:
        # Bold, not a code span: backslash escapes do not work inside one, so a name with a
        # backtick could end it early.
        return self.bold(self.esc(name))

    def test(self, content: Content) -> str:
        return self.esc(self.test_text(content))

    def more(self, omitted: int, report_url: str) -> str:
        where = f" See {self.link(report_url, report_url)}." if report_url else ""
        return f"…and {omitted} more, left out to fit this channel.{where}"

    def footer(self, content: Content) -> str:
        return self.esc(self.footer_text())


def _spaced(segments: Sequence[tuple[int, str]]) -> list[tuple[int, str]]:
    """Move edge spaces of changed segments out of them: `** x**` is not bold in Markdown."""
    out: list[tuple[int, str]] = []
    for op, text in segments:
        if op == 0 or not text.strip():
            out.append((0, text))
            continue
        lead, core, trail = text[: len(text) - len(text.lstrip())], text.strip(), \
            text[len(text.rstrip()):]  # fmt: skip
        out.extend([(0, lead), (op, core), (0, trail)])
    return [(op, t) for op, t in out if t]


# -- Plain text (SMS-like targets) -------------------------------------------------------------


@dataclass(frozen=True)
class TextFormat(MarkdownFormat):
    """Markdown's wording without its markup; nothing needs escaping in plain text."""

    name: str = "text"

    def esc(self, text: str) -> str:
        return clean(text)

    def bold(self, text: str) -> str:
        return text

    def italic(self, text: str) -> str:
        return text

    def link(self, url: str, text: str) -> str:
        return clean(url) if text == url else f"{clean(text)}: {clean(url)}"

    def changed(self, text: str, sign: int) -> str:
        return f"[-{text}-]" if sign < 0 else f"{{+{text}+}}"

    def code(self, name: str) -> str:
        return f"`{clean(name)}`"


# --------------------------------------------------------------------------------------------
# Assembly

Measure = Callable[[str], int]


def render(
    fmt: Format,
    content: Content,
    budget: int | None = None,
    measure: Measure = len,
) -> Rendered:
    """The whole message in `fmt`, its sections dropped from the end to fit `budget`.

    Sections are whole changes (or failures), so a cut never leaves half a link or an unclosed
    tag; what is left out is counted in a closing line pointing at the report.
    """
    title = subject(content)
    sections = _sections(fmt, content)
    head, foot = fmt.header(content), fmt.footer(content)
    for keep in range(len(sections), -1, -1):
        omitted = len(sections) - keep
        parts = [head, *sections[:keep]]
        if omitted:
            parts.append(fmt.more(omitted, content.report_url))
        body = fmt.wrap(title, fmt.joiner.join([*parts, foot]))
        if budget is None or measure(body) <= budget:
            return Rendered(title, body, fmt.name, truncated=bool(omitted), omitted=omitted)
    # Not even the header fits: a hard cut of plain wording is the last resort.
    body = shorten(fmt.header(content), max(budget or 0, 1))
    return Rendered(title, body, fmt.name, truncated=True, omitted=len(sections))


def _sections(fmt: Format, content: Content) -> list[str]:
    if content.kind == "digest":
        awaiting = [fmt.awaiting(content)] if content.awaiting else []
        site = [fmt.site(content)] if content.site else []
        return [*(fmt.change(c) for c in content.changes), *site, *awaiting]
    if content.kind == "alert":
        return [fmt.failure(f) for f in content.failures]
    return [fmt.test(content)]


def json_length(text: str) -> int:
    """Length of `text` once JSON-encoded as Apprise posts it (non-ASCII as \\u escapes)."""
    return len(json.dumps(text))


FORMATS: dict[str, Format] = {
    "html": HtmlFormat(),
    "markdown": MarkdownFormat(),
    "teams": MarkdownFormat(quotes=2, clause_chars=240),
    "text": TextFormat(),
}


@dataclass(frozen=True)
class Profile:
    """How one kind of channel gets its messages."""

    format: str  # key of FORMATS
    budget: int | None = None  # largest body the service takes, as `measure` counts it
    measure: Measure = len
    attach: bool = False  # may carry the change pages as attachments
