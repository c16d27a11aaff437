"""The "Agency site" page (`agency.html`): what the nightly site audit (monitor/audit.py) found on
each of the agency's own pages — the cookies it sets now, persistent ones first, the third parties
it calls, its storage keys, and when each appeared and disappeared.

Cookie names, domains and hosts come from the pages and are hostile input like policy text: they
reach the page only through the autoescaping templates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from monitor.audit import PageState, lifetime_text, site_state
from monitor.store import Store
from monitor.watchlist import AGENCY_ID, AGENCY_POLICY_ID, page_label

PAGE = "agency.html"
CHANGES_PER_PAGE = 50  # the page's history lists this many changes, newest first
KIND_LABELS = {
    "new-cookie": "new cookie",
    "cookie-gone": "cookie gone",
    "cookie-lifetime-changed": "cookie lifetime changed",
    "new-third-party": "new third party",
    "third-party-gone": "third party gone",
}


@dataclass
class AgencySite:
    name: str
    pages: list[PageState]
    policy_slug: str  # the agency privacy policy's document page, or "" when it is not watched

    @property
    def cookies(self) -> int:
        return sum(len(p.cookies) for p in self.pages)

    @property
    def persistent(self) -> int:
        return sum(1 for p in self.pages for c in p.cookies if c.persistent)

    @property
    def third_party_hosts(self) -> int:
        return len({h.host for p in self.pages for h in p.third_parties})

    @property
    def failing(self) -> list[PageState]:
        return [p for p in self.pages if p.failing]


def load_agency(store: Store) -> AgencySite | None:
    """The site as its latest audits tell it; None when no page was ever audited."""
    pages = site_state(store)
    if not pages:
        return None
    policy = store.document(f"{AGENCY_ID}/{AGENCY_POLICY_ID}")
    name = (policy or {}).get("platform_name") or "Agency site"
    return AgencySite(name, pages, f"{AGENCY_ID}.{AGENCY_POLICY_ID}" if policy else "")


def change_text(row: dict[str, Any]) -> str:
    """One line for a recorded site change (a `site_changes` row)."""
    details = json.loads(row.get("details") or "{}")
    return KIND_LABELS.get(row["kind"], row["kind"]) + _detail(row["kind"], details)


def _detail(kind: str, d: dict[str, Any]) -> str:
    if kind in ("new-cookie", "cookie-gone"):
        lifetime = f"persistent, {_days(d.get('lifetime_days'))}" if d.get("persistent") \
            else "session"  # fmt: skip
        return f" ({d.get('party', '')}, {lifetime}, set by {d.get('set_by', 'unknown')})"
    if kind == "cookie-lifetime-changed":
        return f" ({_lifetime(d.get('was_persistent'), d.get('was_lifetime_days'))} → " \
            f"{_lifetime(d.get('persistent'), d.get('lifetime_days'))})"  # fmt: skip
    types = ", ".join(d.get("types") or [])
    return f" ({types})" if types else ""


def _days(value: Any) -> str:
    return f"{value:g} days" if isinstance(value, (int, float)) else "?"


def _lifetime(persistent: Any, days: Any) -> str:
    return _days(days) if persistent else "session"


def context(site: AgencySite) -> dict[str, Any]:
    return {
        "site": site,
        "page_label": page_label,
        "lifetime_text": lifetime_text,
        "change_text": change_text,
        "changes_per_page": CHANGES_PER_PAGE,
    }
