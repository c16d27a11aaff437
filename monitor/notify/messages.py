"""What the reviewers read: digests of changed documents and fetch-failure alerts, rendered for
each kind of channel (HTML e-mail, Markdown chat, plain text).

Everything here is pure: plain data in (rows from `monitor.db`), strings out. Delivery, retries
and secrets live in `monitor.notify`. The bodies are Jinja2 templates in `templates/email/`
(`html/` for e-mail, `markdown/` for Markdown and plain text), one per section of a message
(`SECTIONS`) plus the `message` around them; the wording they share is here.

Text that comes from fetched pages (clauses, headings, error messages that quote a page) is
hostile by assumption: a platform, or whoever controls its page, could put markup in a policy.
Every value a template prints goes through its format's escaping (`Format.esc`) unless a filter
of that format wrote it, and control and bidirectional-override characters are removed for
every format (`clean`), so a clause can neither inject markup nor visually reorder the text
around it.
"""

from __future__ import annotations

import difflib
import html
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import css_inline
import jinja2
import jinja2.ext
import jinja2.lexer
from markupsafe import Markup

from monitor.categories import CATEGORIES, SEVERITY_ORDER
from monitor.notify.site import HEADING as SITE_HEADING
from monitor.notify.site import REMINDER as SITE_REMINDER
from monitor.notify.site import SiteNotice, sentence, subject_text
from monitor.resources import TEMPLATES

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
    "connection": "The page could not be reached: the connection was refused, reset or "
    "unreachable (the message names the network error). The server is down, a firewall blocks "
    "the monitor, or the monitor's machine has no network.",
    "tls": "The TLS handshake or certificate check failed: an intercepting proxy or a "
    "misconfigured site.",
    "not-html": "The address serves something other than a page (a download?): check `url`.",
    "too-large": "The page is larger than 20 MB (or over 5 MB and still arriving when the time "
    "was up): the address probably points at the wrong thing.",
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
# Wording every format shares (the templates place it; each format escapes it like page text)

AWAITING_TEXT = (
    "Detected a while ago and still without a decision ('tos-monitor review' records one):"
)
FOOTER_TEXT = (
    "Sent by tos-monitor. Each change is reported once per channel; "
    "'tos-monitor history PLATFORM DOCUMENT' lists every version."
)


def intro(content: Content) -> str:
    """The sentence that opens a message: what it is about and why it came."""
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


def heading(content: Content) -> str:
    """The e-mail's title line (before "for <recipient>")."""
    if content.kind == "digest" and content.site and not content.changes:
        return "Agency site changes"
    if content.kind == "digest":
        return "Policy changes" if content.changes else "Awaiting your review"
    if content.kind == "alert":
        if not any(f.failing for f in content.failures) and any(
            f.proposed_selector for f in content.failures
        ):
            return "Watchlist selectors to update"
        return "Documents failing to fetch"
    return "Test message"


def channel_check_text(content: Content) -> str:
    """What `tos-monitor notify --test` says."""
    return f"If you can read this, the channel {content.channel or ''} of "\
        f"{content.recipient} works: change digests and alerts will arrive here."  # fmt: skip


def hits_text(hits: Sequence[CategoryHit]) -> str:
    return "; ".join(hit_text(h) for h in hits)


def spaced(segments: Sequence[tuple[int, str]]) -> list[tuple[int, str]]:
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


# --------------------------------------------------------------------------------------------
# Sections: the parts of a message, each rendered from its own template, that `render` drops
# from the end to fit a channel. A new part of the digest is a Section here, a field of
# Content for its data, and one template per format folder (html/<name>.html,
# markdown/<name>.md).


@dataclass(frozen=True)
class Section:
    name: str  # the template's name, and the variable that holds the item in it
    items: Callable[[Content], Sequence[Any]]  # one section per item, in this order


SECTIONS: dict[str, tuple[Section, ...]] = {
    "digest": (
        Section("change", lambda c: c.changes),
        Section("site", lambda c: (c.site,) if c.site else ()),
        Section("awaiting", lambda c: (c.awaiting,) if c.awaiting else ()),
    ),
    "alert": (Section("failure", lambda c: c.failures),),
    "test": (Section("test", lambda c: (c,)),),
}


# --------------------------------------------------------------------------------------------
# Formats: a folder of templates (templates/email/<folder>/) and a way to escape page text, per
# body syntax. In the templates every {{ }} goes through the format's `esc` (Jinja's `finalize`)
# unless it is already written in the format: a rendered section, or the output of one of the
# format's markup filters, which escape what they are given. A template that forgets to escape
# escapes anyway; only a filter can write markup.

EMAIL_TEMPLATES = TEMPLATES / "email"


class Written(str):
    """Markdown or plain text already in its format's syntax, its page text escaped: what
    `Markup` is to HTML."""


@dataclass(frozen=True)
class Format:
    """Base of the formats. Subclasses escape (`esc`) and mark up; limits are per channel."""

    name: str  # the Apprise body format this produces
    folder: str  # of its templates, under templates/email/
    suffix: str  # of its template files
    quotes: int = 3  # clauses quoted per change
    clause_chars: int = 300

    def esc(self, text: str) -> str:
        return clean(text)

    def written(self, text: str) -> str:
        """Mark `text`, already in this format, as not to be escaped again."""
        return Written(text)

    def is_written(self, value: Any) -> bool:
        return isinstance(value, Written)

    def inline(self, text: str) -> str:
        """`esc` for a piece of a sentence: its edge spaces are kept (`clean` strips them)."""
        lead = " " if text[:1].isspace() else ""
        trail = " " if text[-1:].isspace() and text.strip() else ""
        return self.written(f"{lead}{self.esc(text)}{trail}")

    def markup_filters(self) -> dict[str, Callable[..., str]]:
        """The filters that write this format's markup (their output is not escaped again)."""
        return {"inline": self.inline}

    def environment_options(self) -> dict[str, Any]:
        return {}

    def finish(self, body: str) -> str:
        """The rendered message, made ready to send."""
        return body

    @cached_property
    def environment(self) -> jinja2.Environment:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(EMAIL_TEMPLATES),
            finalize=lambda v: v if self.is_written(v) else self.written(self.esc(str(v))),
            undefined=jinja2.StrictUndefined,
            auto_reload=False,
            **self.environment_options(),
        )
        # Data into words: their output is escaped like any other value.
        env.filters.update(
            when=when, shorten=shorten, counts_text=counts_text, kind_text=kind_text,
            hits_text=hits_text, quote_label=quote_label, grouped_hits=grouped_hits, side=side,
            spaced=spaced, sentence=sentence, **self.markup_filters(),
        )  # fmt: skip
        env.globals.update(
            intro=intro, heading=heading, channel_check_text=channel_check_text,
            awaiting_text=AWAITING_TEXT, footer_text=FOOTER_TEXT, severity_labels=SEVERITY_LABELS,
            site_heading=SITE_HEADING, site_reminder=SITE_REMINDER,
            newline=self.written("\n"),  # a line break the HTML templates' layout rule keeps
        )  # fmt: skip
        return env

    def template(self, name: str, **context: Any) -> str:
        template = self.environment.get_template(f"{self.folder}/{name}.{self.suffix}")
        return template.render(quotes=self.quotes, clause_chars=self.clause_chars, **context)

    def sections(self, content: Content) -> list[str]:
        """Every section of the message, rendered, in order."""
        return [
            self.written(self.template(section.name, content=content, **{section.name: item}))
            for section in SECTIONS[content.kind]
            for item in section.items(content)
        ]

    def message(self, content: Content, subject: str, sections: Sequence[str], omitted: int) -> str:
        """The message around `sections`, saying that `omitted` more were left out."""
        body = self.template(
            "message", content=content, subject=subject, sections=sections, omitted=omitted
        )
        return self.finish(body)


# -- HTML e-mail -------------------------------------------------------------------------------


class _LayoutBreaks(jinja2.ext.Extension):
    """In the e-mail HTML templates a line break, with the indentation around it, is layout
    only: it is removed from the template's text when the template is loaded. The message stays
    compact, and the plain-text part Apprise derives from it (where whitespace between blocks
    becomes a blank line) has a blank line only between sections, where `newline` puts one."""

    _BREAK = re.compile(r"[ \t]*\n\s*")

    def filter_stream(self, stream: jinja2.lexer.TokenStream) -> Iterator[jinja2.lexer.Token]:
        for token in stream:
            if token.type == "data":
                token = jinja2.lexer.Token(token.lineno, "data", self._BREAK.sub("", token.value))
            yield token


# The templates' <style> block becomes style attributes, and goes: mail clients drop <style>.
_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False, keep_style_tags=False)


@dataclass(frozen=True)
class HtmlFormat(Format):
    name: str = "html"
    folder: str = "html"
    suffix: str = "html"
    quotes: int = 5
    clause_chars: int = 600

    def esc(self, text: str) -> str:
        return html.escape(clean(text), quote=True)

    def written(self, text: str) -> str:
        return Markup(text)

    def is_written(self, value: Any) -> bool:
        return isinstance(value, Markup)

    def environment_options(self) -> dict[str, Any]:
        # Jinja's own HTML autoescaping stays on behind `finalize`; links and markup are
        # written by the templates themselves (html/_macros.html).
        return {"autoescape": True, "extensions": [_LayoutBreaks]}

    def finish(self, body: str) -> str:
        return _INLINER.inline(body)


# -- Markdown (Teams, Slack, ntfy, json:// ...) ------------------------------------------------

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
    folder: str = "markdown"
    suffix: str = "md"

    def esc(self, text: str) -> str:
        return md_escape(text)

    def environment_options(self) -> dict[str, Any]:
        # Jinja's autoescaping is HTML's: `finalize` escapes for Markdown instead.
        return {"autoescape": False, "trim_blocks": True, "lstrip_blocks": True}

    def template(self, name: str, **context: Any) -> str:
        # Templates end paragraphs with a blank line wherever one may follow; page text holds no
        # line breaks (`clean`), so every run of blank lines is layout and becomes one.
        text = super().template(name, **context)
        while "\n\n\n" in text:  # faster than a regular expression on a long digest
            text = text.replace("\n\n\n", "\n\n")
        return text.strip("\n")

    def markup_filters(self) -> dict[str, Callable[..., str]]:
        return {
            **super().markup_filters(),
            "bold": self.bold,
            "italic": self.italic,
            "link": self.link,
            "changed": self.changed,
        }

    def _escaped(self, text: str) -> str:
        return text if isinstance(text, Written) else self.esc(text)

    def bold(self, text: str) -> str:
        return Written(f"**{self._escaped(text)}**")

    def italic(self, text: str) -> str:
        return Written(f"_{self._escaped(text)}_")

    def link(self, url: str, text: str) -> str:
        return Written(f"[{self._escaped(text)}]({md_url(url)})")

    def changed(self, text: str, sign: int) -> str:
        # Markdown has no portable "deleted"/"inserted" style: changed words are in bold.
        return self.bold(text)


# -- Plain text (SMS-like targets) -------------------------------------------------------------


@dataclass(frozen=True)
class TextFormat(MarkdownFormat):
    """The Markdown templates' wording without their markup; nothing needs escaping in plain
    text, control and bidirectional characters are still dropped."""

    name: str = "text"

    def esc(self, text: str) -> str:
        return clean(text)

    def bold(self, text: str) -> str:
        return Written(self._escaped(text))

    def italic(self, text: str) -> str:
        return Written(self._escaped(text))

    def link(self, url: str, text: str) -> str:
        return Written(clean(url) if text == url else f"{self._escaped(text)}: {clean(url)}")

    def changed(self, text: str, sign: int) -> str:
        text = self._escaped(text)
        return Written(f"[-{text}-]" if sign < 0 else f"{{+{text}+}}")


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
    sections = fmt.sections(content)
    for keep in range(len(sections), -1, -1):
        omitted = len(sections) - keep
        body = fmt.message(content, title, sections[:keep], omitted)
        if budget is None or measure(body) <= budget:
            return Rendered(title, body, fmt.name, truncated=bool(omitted), omitted=omitted)
    # Not even the opening sentence fits: a hard cut of plain wording is the last resort.
    body = shorten(fmt.esc(intro(content)), max(budget or 0, 1))
    return Rendered(title, body, fmt.name, truncated=True, omitted=len(sections))


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
