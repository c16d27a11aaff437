"""Checks between extraction and storage: is this text the policy, or a wall in front of it?

A bot wall, a login wall, a consent page or an error page served with status 200 must never become
a "new version" — an alert that cries wolf teaches reviewers to ignore alerts. These checks look at
the page itself (title and text patterns) and at how the text compares with the last version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Phrases of interstitials, matched only on short texts: a real policy may well say "log in".
WALL_PATTERNS = [
    r"captcha",
    r"verify (that )?you are (a )?human",
    r"are you a robot",
    r"not a robot",
    r"unusual traffic",
    r"checking (if the site connection is secure|your browser)",
    r"just a moment\.\.\.",
    r"attention required",
    r"access (is )?denied",
    r"request (was )?blocked",
    r"(log|sign) ?in to (continue|see|view)",
    r"you must (log|sign) ?in",
    r"please enable (javascript|cookies)",
    r"(this|the) page (isn.t|is not) available",
    r"page not found",
    r"something went wrong",
    r"temporarily unavailable",
    r"too many requests",
    r"(accept|allow) (all )?cookies to (continue|view)",
]
_WALL = re.compile("|".join(f"(?:{p})" for p in WALL_PATTERNS), re.IGNORECASE)
# A wall is short: past this many characters a page is taken to be content, whatever it says.
WALL_MAX_CHARS = 3000


class GuardError(Exception):
    """The text is not taken as a version; `kind` is "blocked" or "suspect"."""

    def __init__(self, message: str, *, kind: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Comparison:
    """How a new text relates to the last version, by blocks (lines)."""

    length_ratio: float
    shared_blocks: float

    @property
    def suspicious(self) -> bool:
        return self.length_ratio < SHRINK_LIMIT or self.shared_blocks < SHARED_LIMIT


# Shrinking by more than half, or keeping less than a quarter of its paragraphs, is rare for a
# real policy edit and common for a half-rendered or substituted page: such a text is fetched
# again before it is believed.
SHRINK_LIMIT = 0.5
SHARED_LIMIT = 0.25
# Below this fraction of the last version's length, the text is not believed at all.
COLLAPSE_LIMIT = 0.2


def compare(previous: str, new: str) -> Comparison:
    old_blocks = {line for line in previous.splitlines() if line.strip()}
    new_blocks = {line for line in new.splitlines() if line.strip()}
    shared = len(old_blocks & new_blocks) / len(old_blocks) if old_blocks else 1.0
    ratio = len(new) / len(previous) if previous else 1.0
    return Comparison(round(ratio, 3), round(shared, 3))


def check_text(text: str, title: str, previous: str | None) -> Comparison | None:
    """Raise GuardError for a wall or a collapsed text; otherwise return how the text compares
    with the previous version (None for a first version)."""
    if len(text) <= WALL_MAX_CHARS:
        match = _WALL.search(title or "") or _WALL.search(text)
        if match:
            raise GuardError(
                f"the page looks like a wall or an error page ({match.group(0)!r}"
                f"{f', title {title!r}' if title else ''})",
                kind="blocked",
            )
    if previous is None:
        return None
    comparison = compare(previous, text)
    if comparison.length_ratio < COLLAPSE_LIMIT:
        raise GuardError(
            f"the text collapsed to {comparison.length_ratio:.0%} of the last version's length "
            f"({len(text):,} of {len(previous):,} characters)",
            kind="suspect",
        )
    return comparison
