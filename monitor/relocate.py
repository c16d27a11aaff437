"""Heal a `select` that no longer matches: sites are redesigned far more often than policies are
rewritten, so the block whose text is most like the last version is usually the policy, moved.

Only a confident match is used (and then the admin is told the proposed selector); otherwise the
fetch stays a `selector-missing` failure for a person to look at.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from bs4 import BeautifulSoup, Tag

from monitor.extract import ExtractError, extract

CANDIDATE_TAGS = ["main", "article", "section", "div", "td"]
# Similarity (weighted word overlap, 0..1) the relocated text must reach with the last version.
MIN_SIMILARITY = 0.8

_WORD = re.compile(r"\w+")
# Generated names change with every build: CSS-in-JS hashes, atomic classes, React ids.
_GENERATED = re.compile(
    r"^(css|sc|jsx|emotion|styled|svelte|chakra)-|\d{3,}|^_|^x[0-9a-z]{5,}$|__[A-Za-z0-9]{4,}$"
    r"|^[a-z]{1,3}\d|^:|[A-Z].*\d|\d.*[A-Z]"
)


@dataclass(frozen=True)
class Relocation:
    selector: str
    text: str
    similarity: float


def _words(text: str) -> Counter[str]:
    return Counter(w.lower() for w in _WORD.findall(text))


def similarity(a: Counter[str], b: Counter[str]) -> float:
    """Weighted Dice overlap of two word multisets."""
    total = sum(a.values()) + sum(b.values())
    return 2 * sum((a & b).values()) / total if total else 0.0


def is_stable_name(name: str) -> bool:
    return len(name) >= 3 and not _GENERATED.search(name)


def _unique(soup: BeautifulSoup, selector: str, element: Tag) -> bool:
    try:
        return soup.select(selector) == [element]
    except Exception:  # soupsieve rejects some odd names; such a selector is no use anyway
        return False


def _own_selector(soup: BeautifulSoup, element: Tag) -> str | None:
    """A selector naming this element by stable attributes only, if one is unique."""
    tag = element.name
    element_id = element.get("id")
    if isinstance(element_id, str) and is_stable_name(element_id):
        candidate = f"#{element_id}"
        if _unique(soup, candidate, element):
            return candidate
    role = element.get("role")
    if isinstance(role, str) and _unique(soup, f'{tag}[role="{role}"]', element):
        return f'{tag}[role="{role}"]'
    for cls in element.get("class") or []:
        if is_stable_name(cls) and _unique(soup, f"{tag}.{cls}", element):
            return f"{tag}.{cls}"
    if tag in ("main", "article") and _unique(soup, tag, element):
        return tag
    return None


def stable_selector(soup: BeautifulSoup, element: Tag) -> str | None:
    """The element's own stable selector, or a short nth-of-type path from a stable ancestor."""
    steps: list[str] = []
    node: Tag | None = element
    while node is not None and node.name not in ("body", "html", "[document]"):
        own = _own_selector(soup, node)
        if own:
            selector = " > ".join([own, *reversed(steps)])
            return selector if _unique(soup, selector, element) else None
        parent = node.parent
        siblings = [s for s in parent.find_all(node.name, recursive=False)] if parent else [node]
        steps.append(f"{node.name}:nth-of-type({siblings.index(node) + 1})")
        if len(steps) > 4:
            return None
        node = parent if isinstance(parent, Tag) else None
    selector = " > ".join(["body", *reversed(steps)])
    return selector if _unique(soup, selector, element) else None


def relocate(html: str, previous: str, remove: list[str] | None = None) -> Relocation | None:
    """Find the block most like `previous` and a stable selector for it, or None."""
    soup = BeautifulSoup(html, "lxml")
    target = _words(previous)
    size = sum(target.values())
    best: tuple[float, int, Tag] | None = None
    for element in soup.find_all(CANDIDATE_TAGS):
        words = _words(element.get_text(" "))
        count = sum(words.values())
        if not size / 2 <= count <= size * 2:
            continue
        score = similarity(target, words)
        # Among equal scores prefer the innermost block: less page furniture around the text.
        if best is None or (score, -count) > (best[0], best[1]):
            best = (score, -count, element)
    if best is None or best[0] < MIN_SIMILARITY:
        return None
    selector = stable_selector(soup, best[2])
    if selector is None:
        return None
    try:
        text = extract(html, [selector], remove)
    except ExtractError:
        return None
    score = similarity(target, _words(text))
    return Relocation(selector, text, round(score, 3)) if score >= MIN_SIMILARITY else None
