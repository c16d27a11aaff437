"""Clause categories the flagger looks for, and the reviewer question each one answers.

The ids are a contract: labels files, stored flags, alerts and the checklist all use them. The
registry is ordered deal breakers first so reports list what blocks an agency before what only
needs a look. Severities follow /work/shared/DOMAIN.md (what public bodies cannot accept):

- `deal-breaker`: terms a public body cannot legally accept as written (open-ended indemnity,
  foreign governing law/forum, binding arbitration, unilateral changes binding the agency).
- `review`: terms a reviewer must read and usually negotiate or document.
- `info`: facts the reviewer records (for the privacy questionnaire) but that rarely block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Family = Literal["privacy", "terms"]
Severity = Literal["deal-breaker", "review", "info"]

SEVERITY_ORDER: dict[str, int] = {"deal-breaker": 0, "review": 1, "info": 2}


@dataclass(frozen=True)
class Category:
    id: str
    family: Family
    title: str
    description: str
    question: str  # phrased so that "yes" means the policy allows / contains the practice
    severity: Severity


_ALL: tuple[Category, ...] = (
    # --- deal breakers (DOMAIN.md: "Why public bodies cannot accept some standard terms") ---
    Category(
        "indemnification",
        "terms",
        "Indemnification / hold harmless",
        "The user agrees to defend, indemnify or hold the platform harmless, or releases it from "
        "claims. An open-ended indemnity is an unlimited liability a public body cannot take on "
        "(Anti-Deficiency Act; most state constitutions).",
        "Do the terms require the account holder to indemnify or hold the platform harmless?",
        "deal-breaker",
    ),
    Category(
        "governing-law",
        "terms",
        "Governing law, jurisdiction, venue",
        "Which law governs the terms and which courts or forum hear disputes. A state agency "
        "needs its own state's law and courts.",
        "Do the terms choose a governing law, jurisdiction or venue?",
        "deal-breaker",
    ),
    Category(
        "arbitration",
        "terms",
        "Binding arbitration, class-action waiver",
        "Disputes go to binding arbitration, class or representative actions or jury trial are "
        "waived, or the time to bring a claim is shortened.",
        "Do the terms require binding arbitration or waive class actions?",
        "deal-breaker",
    ),
    Category(
        "terms-changes",
        "terms",
        "Unilateral changes to the terms",
        "The platform may change the terms or the service on its own; continued use counts as "
        "acceptance, sometimes without notice.",
        "May the platform change the terms unilaterally (continued use = acceptance)?",
        "deal-breaker",
    ),
    # --- review: negotiated in federal-compatible amendments, or conflicts with public duties ---
    Category(
        "liability-limit",
        "terms",
        "Limitation of liability / disclaimers",
        "The platform limits or excludes its liability or disclaims warranties; may conflict with "
        "state claims law.",
        "Do the terms limit or exclude the platform's liability?",
        "review",
    ),
    Category(
        "content-license",
        "terms",
        "Licence over posted content",
        "The licence the user grants the platform over content it posts; may be broader than an "
        "agency can grant (public-domain or third-party works, records).",
        "Do the terms take a licence over content the account holder posts?",
        "review",
    ),
    Category(
        "termination",
        "terms",
        "Suspension, termination, content removal",
        "The platform may suspend or terminate accounts or remove content at its discretion; "
        "matters for public records and continuity of official communication.",
        "May the platform suspend or terminate the account or remove content at its discretion?",
        "review",
    ),
    Category(
        "assignment",
        "terms",
        "Assignment without consent",
        "The platform may assign or transfer the agreement to another party without the agency's "
        "consent.",
        "May the platform assign or transfer the agreement without consent?",
        "review",
    ),
    Category(
        "advertising-endorsement",
        "terms",
        "Advertising on the agency's page, endorsement",
        "The platform may show ads next to the account's content or use the account's name, "
        "profile or content in ads (implied endorsement, agency seals).",
        "May the platform show ads on, or use the account's name/content in, advertising?",
        "review",
    ),
    Category(
        "ad-tracking",
        "privacy",
        "Tracking for advertising",
        "Users are tracked or profiled to target advertising (interest-based ads, ad networks).",
        "Does the policy permit tracking users of government sites for advertising?",
        "review",
    ),
    Category(
        "disclosure",
        "privacy",
        "Disclosure of user information",
        "User information, including usage history, is accessed by or disclosed to third "
        "parties, affiliates, service providers or governments.",
        "Does it allow access to or disclosure of user information, including usage history?",
        "review",
    ),
    Category(
        "data-sale",
        "privacy",
        "Sale of user data",
        "User-provided information is (or is not) sold, or transferred as an asset in a sale or "
        "merger of the business.",
        "Does it allow selling user-provided information?",
        "review",
    ),
    Category(
        "monitoring-duty",
        "terms",
        "Duty to monitor the account",
        "The account holder must secure and police use of the account (passwords, unauthorized "
        "use, others' activity) and is responsible for what happens under it.",
        "Must the account holder monitor or police use of the account?",
        "review",
    ),
    # --- info: answers for the privacy questionnaire ---
    Category(
        "usage-recording",
        "privacy",
        "Recording of site usage",
        "Usage of the site is recorded: logs, cookies, device identifiers, IP addresses, "
        "browsing activity.",
        "Does it allow recording information about site usage?",
        "info",
    ),
    Category(
        "opt-out",
        "privacy",
        "Opt-out and user choice",
        "Users can opt out of or choose what is collected or how it is used (settings, "
        "unsubscribe, Do Not Track).",
        "Does it allow users to opt out of data collection?",
        "info",
    ),
    Category(
        "data-location",
        "privacy",
        "Data location and transfers abroad",
        "Where data is stored or processed, and transfers to other countries.",
        "Does it state where the data is physically kept or processed?",
        "info",
    ),
)

CATEGORIES: dict[str, Category] = {
    c.id: c for c in sorted(_ALL, key=lambda c: SEVERITY_ORDER[c.severity])
}

# The ids the labelled data (and the evaluation) know; the others are extras for users.
LABELLED_IDS: tuple[str, ...] = (
    "ad-tracking",
    "disclosure",
    "data-sale",
    "usage-recording",
    "opt-out",
    "data-location",
    "indemnification",
    "governing-law",
    "arbitration",
    "terms-changes",
    "liability-limit",
    "content-license",
    "termination",
    "monitoring-duty",
)


def family_ids(family: Family) -> list[str]:
    """Ids of one family, in registry order."""
    return [c.id for c in CATEGORIES.values() if c.family == family]
