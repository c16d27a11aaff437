"""What the site's reviewer (the PIO, usually) reads about the agency's own pages: one sentence per
change the nightly site audit found (monitor/audit.py), and the best-practice reminder.

Pure and format-free: a sentence is (before, name, after) so each format's template
(templates/email/html/site.html, markdown/site.md) can set the cookie name or host apart in its
own syntax (`<code>` in HTML, bold in Markdown) and escape all three parts through its filters.
Names and hosts come from the pages: hostile input, like policy text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from monitor.watchlist import page_label

REMINDER = (
    "Best practice (Wisconsin's Social Media Best Practices for State Agencies): if the agency "
    "uses persistent cookies on its own site, review that decision with the Public Information "
    "Officer (PIO), and check that it is consistent with the agency's own privacy policy."
)
HEADING = "Agency site: cookies and third parties"


@dataclass(frozen=True)
class SiteNotice:
    """One change of an agency page's cookies or third parties (a `site_changes` row)."""

    site: str  # the agency's name (agency_site.name)
    page: str  # the page's address
    kind: str  # new-cookie, cookie-gone, cookie-lifetime-changed, new-third-party, ...
    name: str  # the cookie's name or the host
    details: dict[str, Any]
    detected_at: str
    link: str = ""  # the report's Agency site page, or "" without settings.report_url

    @property
    def persistent(self) -> bool:
        return bool(self.details.get("persistent"))


def site_notice(row: dict[str, Any], site: str, report_url: str) -> SiteNotice:
    return SiteNotice(
        site=site,
        page=row["page"],
        kind=row["kind"],
        name=row["name"] or "",
        details=json.loads(row.get("details") or "{}"),
        detected_at=row.get("detected_at") or "",
        link=f"{report_url.rstrip('/')}/agency.html" if report_url else "",
    )


def _days(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "an unknown time"
    if value >= 1:
        return "1 day" if round(value) == 1 else f"{value:g} days"
    hours = round(value * 24)
    return f"{hours} hour{'' if hours == 1 else 's'}" if hours >= 1 else "under an hour"


def _lifetime(persistent: Any, days: Any) -> str:
    return f"a persistent cookie for {_days(days)}" if persistent else "a session cookie"


def _setter(details: dict[str, Any]) -> str:
    """ "set by a response from 127.0.0.2" from the audit's "response from 127.0.0.2"."""
    set_by = str(details.get("set_by") or "unknown")
    if set_by == "unknown":
        return "set by an unknown writer (no response or script was seen writing it)"
    return f"set by a {set_by}"


def sentence(notice: SiteNotice) -> tuple[str, str, str]:
    """(before the name, the name, after it): "the home page started setting a persistent cookie
    `ad_id` for 395 days, set by a response from 127.0.0.2" reads as three parts."""
    d, page = notice.details, page_label(notice.page)
    party = d.get("party") or ""
    party_text = f" ({party})" if party else ""
    if notice.kind == "new-cookie":
        if notice.persistent:
            return (f"{page} started setting a persistent cookie", notice.name,
                    f"for {_days(d.get('lifetime_days'))}, {_setter(d)}{party_text}.")  # fmt: skip
        return (f"{page} started setting a session cookie", notice.name,
                f"{_setter(d)}{party_text}.")  # fmt: skip
    if notice.kind == "cookie-gone":
        was = ", ".join(filter(None, [_lifetime(d.get("persistent"), d.get("lifetime_days")),
                                      party]))  # fmt: skip
        return (f"{page} no longer sets the cookie", notice.name, f"(it was {was}).")
    if notice.kind == "cookie-lifetime-changed":
        before = _lifetime(d.get("was_persistent"), d.get("was_lifetime_days"))
        now = _lifetime(d.get("persistent"), d.get("lifetime_days"))
        return (f"{page} changed the cookie", notice.name,
                f"from {before} to {now}, {_setter(d)}{party_text}.")  # fmt: skip
    types = ", ".join(d.get("types") or []) or "requests"
    if notice.kind == "new-third-party":
        return (f"{page} started calling the third party", notice.name, f"({types}).")
    if notice.kind == "third-party-gone":
        return (f"{page} no longer calls the third party", notice.name, f"({types}).")
    return (f"{page}: {notice.kind}", notice.name, "")


def subject_text(notices: tuple[SiteNotice, ...]) -> str:
    """The subject's piece for the site: the one change, or the new persistent cookies first."""
    site = notices[0].site
    if len(notices) == 1:
        before, name, _ = sentence(notices[0])
        return f"{site}: {before} {name}"
    persistent = [n.name for n in notices if n.kind == "new-cookie" and n.persistent]
    if not persistent:
        return f"{site}: {len(notices)} cookie and third-party changes"
    names = ", ".join(persistent[:3]) + (" …" if len(persistent) > 3 else "")
    rest = len(notices) - len(persistent)
    more = f" and {rest} more change{'' if rest == 1 else 's'}" if rest else ""
    noun = "cookie" if len(persistent) == 1 else "cookies"
    return f"{site}: new persistent {noun} {names}{more}"
