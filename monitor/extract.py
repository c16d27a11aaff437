"""Extraction stage: turn a fetched HTML page into the policy text the monitor compares.

The output is normalised, Markdown-like plain text: one block (paragraph, heading, list item,
table row) per line, blocks separated by one blank line, link text without URLs. Two fetches of an
unchanged policy must give byte-identical text even though the raw HTML changes on nearly every
fetch (nonces, CDN hosts, tracking ids, comments, cookie banners, modal state), while any change to
the visible wording must show up.

Pipeline: parse -> drop never-visible elements and `remove` matches -> pick the content roots
(`select` matches, or the main content found by default) -> drop hidden/boilerplate elements
inside them -> render blocks -> normalise Unicode and whitespace.

Every tree walk is iterative (an explicit stack), so pages nested thousands of levels deep cannot
hit Python's recursion limit, and the tree is never mutated: dropped elements are remembered by id.
"""

from __future__ import annotations

import functools
import io
import re
import unicodedata
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from bs4 import (
    BeautifulSoup,
    MarkupResemblesLocatorWarning,
    NavigableString,
    Tag,
    XMLParsedAsHTMLWarning,
)
from bs4.element import PageElement

ExtractErrorKind = Literal["selector-missing", "empty"]


class ExtractError(Exception):
    """The page did not yield policy text; `kind` says why ("selector-missing" or "empty")."""

    def __init__(self, message: str, *, kind: ExtractErrorKind) -> None:
        super().__init__(message)
        self.kind: ExtractErrorKind = kind


# --- Unicode / whitespace normalisation -------------------------------------------------------

# Invisible characters that come and go with CMS or editor changes: zero-width (joiners), word
# joiner, BOM, soft hyphen, bidi marks/embeddings/isolates, Mongolian vowel separator; C0/C1
# controls other than the line/tab separators that splitlines()/split() handle; and the BMP
# private-use area (icon-font glyphs such as a "\uf105" chevron are decoration, not text).
_DELETE = re.compile(
    "[\u200b-\u200f\u2060\ufeff\u00ad\u180e\u202a-\u202e\u2066-\u2069"
    "\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\ue000-\uf8ff]"
)

# Typographic variants that editors swap freely: a policy does not change because an apostrophe
# became curly. French guillemets are punctuation in their own right and are kept.
_PUNCTUATION = str.maketrans(
    {
        **dict.fromkeys("\u2018\u2019\u201a\u201b\u02bc", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f", '"'),
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
    }
)


def _normalize_chars(text: str) -> str:
    # Deletion first: a soft hyphen or ZWJ can otherwise block NFKC composition.
    text = unicodedata.normalize("NFKC", _DELETE.sub("", text))
    return text.translate(_PUNCTUATION)


def normalize_text(text: str) -> str:
    """Normalise text for comparison; works on extracted HTML text, PDF text or plain text.

    NFKC, straight quotes, ASCII hyphens for all dashes, invisible characters removed, every run
    of whitespace (including non-breaking spaces) collapsed to one space, lines stripped, runs of
    blank lines collapsed to one, no leading/trailing blank lines, and a single final newline
    (empty input gives ""). Idempotent.
    """
    lines = [" ".join(line.split()) for line in _normalize_chars(text).splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n" if out else ""


# --- Element classes ----------------------------------------------------------------------------


def _names(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Never rendered as text by a browser (or only as fallback), in any mode.
_NEVER_TEXT = _names(
    "head script style noscript template svg iframe object embed canvas video audio"
)
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_LISTS = _names("ul ol menu dir")
_PRE = _names("pre listing xmp plaintext")
_CELLS = _names("td th")
# Elements that start and end a line. Everything else (span, a, b, em, code, custom elements...)
# is inline, as browsers treat unknown elements.
_BLOCKS = (
    _names(
        """address article aside blockquote body center dd details dialog div dl dt fieldset
        figcaption figure footer form header hgroup hr html legend li main nav p search section
        summary option optgroup table thead tbody tfoot tr td th caption colgroup"""
    )
    | _LISTS
    | _PRE
    | frozenset(_HEADINGS)
)

# Default mode only: page furniture around the policy text.
_BOILERPLATE_TAGS = _names("nav aside form dialog select textarea")
_BOILERPLATE_ROLES = _names(
    "navigation banner contentinfo complementary dialog alertdialog search menu menubar toolbar"
)
# header/footer inside these are a section's own header/footer (title, "last updated"), not the
# site's banner: the HTML spec scopes them the same way.
_SECTIONING = _names("article section main aside nav")
_SECTIONING_ROLES = _names("main article region")
_LANDMARKS = _names("main article")

_HIDDEN_STYLE = re.compile(r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*hidden)", re.I)

# Cookie/consent banners. A single word is not enough: Meta's privacy policy has sections with ids
# like "18-LegalBasisInformationConsent", Google's has "footnote-cookies" and Twitter's chapter
# titles use class "p04-chapter-intro-banner". So a consent word must come with a UI word
# (cookie-banner, bandeau-cookies), or a second consent word (cookie-consent), or be the name of
# a consent-management vendor used as an id/class (onetrust-banner-sdk, didomi-popup...).
_CONSENT_WORDS = ("cookie", "consent", "gdpr", "rgpd")
_UI_WORDS = _names(
    """banner bar notice notification popup popin modal dialog overlay prompt wall toast layer
    alert message bandeau banniere"""
)
_CMP_VENDORS = _names(
    """onetrust optanon didomi cookiebot usercentrics truste trustarc axeptio tarteaucitron
    iubenda quantcast osano termly cookieyes cookielaw"""
)
_CONSENT_HINT = re.compile(
    "|".join(["cook", "consent", "gdpr", "rgpd", *sorted(_CMP_VENDORS)]), re.I
)
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z])(?=[A-Z])")
_WORD = re.compile(r"[a-z0-9]+")


# --- Facts about the tree, computed once ------------------------------------------------------


@dataclass(slots=True)
class _Facts:
    start: int  # pre-order position, so "is a inside b" is a range test, not a parent walk
    role: str  # first token of the role attribute, lower case
    heading: int  # 1-6 for h1-h6 and [role=heading], else 0
    end: int = 0  # position of the last descendant
    text_len: int = 0  # visible characters in the subtree (script etc. excluded)
    has_main: bool = False  # self or a descendant is main / [role=main]
    has_structure: bool = False  # a descendant heading or table: the table is for layout
    link_len: int = 0  # visible characters inside links (<a>) in the subtree
    links: int = 0  # links with text in the subtree
    has_toggle: bool = False  # self or a descendant opens something (aria-expanded, <summary>)


_FactsMap = dict[int, _Facts]


def _role(tag: Tag) -> str:
    role = tag.get("role")
    return role.split()[0].lower() if isinstance(role, str) and role.split() else ""


def _heading_level(tag: Tag, role: str) -> int:
    if tag.name in _HEADINGS:
        return _HEADINGS[tag.name]
    if role == "heading":
        return min(max(_int_attr(tag, "aria-level", 2), 1), 6)
    return 0


def _new_facts(tag: Tag, start: int) -> _Facts:
    role = _role(tag)
    main = tag.name == "main" or role == "main"
    toggle = tag.name == "summary" or tag.has_attr("aria-expanded")
    return _Facts(
        start=start, role=role, heading=_heading_level(tag, role), has_main=main, has_toggle=toggle
    )


def _collect_facts(root: Tag, removed: set[int], controlled: set[str] | None = None) -> _FactsMap:
    """Facts for every live element: not never-text, not inside a `remove` match. The ids that
    some element's aria-controls names (the panels of accordions and tabs) go to `controlled`."""
    facts: _FactsMap = {}
    counter = 0
    stack: list[tuple[Tag, bool]] = [(root, False)]
    while stack:
        tag, done = stack.pop()
        if not done:
            facts[id(tag)] = _new_facts(tag, counter)
            if controlled is not None and tag.has_attr("aria-controls"):
                controlled.update(str(tag["aria-controls"]).split())
            counter += 1
            stack.append((tag, True))
            stack.extend((child, False) for child in reversed(_live_children(tag, removed)))
            continue
        own = facts[id(tag)]
        own.end = counter - 1
        for child in tag.contents:
            if type(child) is NavigableString:
                own.text_len += len(child.strip())
            elif isinstance(child, Tag) and id(child) in facts:
                sub = facts[id(child)]
                own.text_len += sub.text_len
                own.link_len += sub.link_len
                own.links += sub.links
                own.has_main |= sub.has_main
                own.has_toggle |= sub.has_toggle
                own.has_structure |= sub.has_structure or bool(sub.heading)
                own.has_structure |= child.name == "table"
        if tag.name == "a" and own.text_len:
            own.link_len, own.links = own.text_len, 1
    return facts


def _live_children(tag: Tag, removed: set[int]) -> list[Tag]:
    return [
        child
        for child in tag.contents
        if isinstance(child, Tag) and child.name not in _NEVER_TEXT and id(child) not in removed
    ]


def _inside(inner: _Facts, outer: _Facts) -> bool:
    return outer.start < inner.start <= outer.end


def _outermost(tags: Iterable[Tag], facts: _FactsMap) -> list[Tag]:
    """Drop elements nested in an earlier one; `tags` must be in document order."""
    kept: list[Tag] = []
    for tag in tags:
        if not kept or not _inside(facts[id(tag)], facts[id(kept[-1])]):
            kept.append(tag)
    return kept


# --- Noise detection ----------------------------------------------------------------------------


def _is_hidden(tag: Tag, *, aria: bool) -> bool:
    """Hidden in the page's current display state (not yet: can a reader open it?)."""
    hidden = tag.get("hidden")
    # hidden="until-found" is collapsed-but-searchable content (accordions): real text.
    if hidden is not None and str(hidden).strip().lower() != "until-found":
        return True
    if aria and str(tag.get("aria-hidden", "")).strip().lower() == "true":
        return True
    return bool(_HIDDEN_STYLE.search(str(tag.get("style", ""))))


# Names of disclosure widgets: accordions, Google's "zippies", expandable sections, tab panels.
_COLLAPSIBLE = re.compile(r"collaps|accordion|zippy|expand|disclos|tab-?panel|show-?more", re.I)
# How far up from a hidden element its opener may sit: a panel is usually the next sibling of
# its heading button, or of the wrapper around that button.
_OPENER_LEVELS = 3


@dataclass(slots=True)
class _Tree:
    """The facts of a parsed page and the ids its disclosure controls name."""

    facts: _FactsMap
    controlled: set[str]


def _can_open(tag: Tag, tree: _Tree) -> bool:
    """Collapsed, not absent: a reader can open this hidden element (an accordion panel, a tab,
    a "zippy", a <details> body). Pages hide such sections until clicked, and they are part of
    the policy; what is hidden with no way to show it (templates, inactive dialogs) is not.

    An opener is an element with aria-expanded, or a <summary>: it names the panel in
    aria-controls, or sits just before the panel or one of its nearest ancestors (WAI-ARIA's
    disclosure pattern needs no aria-controls, and Google's support pages have none).
    """
    if _role(tag) == "tabpanel" or tag.name == "details":
        return True
    ident = tag.get("id")
    if isinstance(ident, str) and ident in tree.controlled:
        return True
    if _COLLAPSIBLE.search(_naming_attrs(tag)):
        return True
    node: Tag | None = tag
    for _ in range(_OPENER_LEVELS):
        if node is None:
            break
        before = 0
        for sibling in node.previous_siblings:
            if isinstance(sibling, Tag):
                sub = tree.facts.get(id(sibling))
                if sub is not None and sub.has_toggle:
                    return True
                before += 1
                if before == 2:
                    break
        node = node.parent
    return False


def _is_absent(tag: Tag, tree: _Tree, *, aria: bool) -> bool:
    """Hidden, and nothing a reader could click shows it."""
    return _is_hidden(tag, aria=aria) and not _can_open(tag, tree)


# Link furniture: a list of links, one per line: three or more blocks (items, rows) whose text is
# nearly all link text (a table of contents, "related articles", a site menu, a footer's link
# columns). Its entries rotate and reorder without the policy changing. Links inside running
# text, or several links on one line (an index of a policy's sections), are kept.
_LINK_SHARE = 0.85
_MIN_LINKS = 3


def _is_link_furniture(tag: Tag, sub: _Facts) -> bool:
    if sub.links < _MIN_LINKS or sub.link_len < _LINK_SHARE * sub.text_len or sub.heading:
        return False
    items = sum(1 for child in tag.children if isinstance(child, Tag) and child.name in _BLOCKS)
    return items >= _MIN_LINKS


def _naming_attrs(tag: Tag) -> str:
    values: list[str] = []
    for name in ("id", "class", "aria-label", "data-testid"):
        value = tag.get(name)
        if isinstance(value, str):
            values.append(value)
        elif value:
            values.extend(value)
    return " ".join(values)


def _words(attrs: str) -> list[str]:
    # "CybotCookiebotDialog" -> cybot cookiebot dialog; accents dropped ("bannière").
    text = unicodedata.normalize("NFKD", _CAMEL_BOUNDARY.sub(" ", attrs))
    return _WORD.findall(text.encode("ascii", "ignore").decode().lower())


def _is_consent_banner(tag: Tag) -> bool:
    attrs = _naming_attrs(tag)
    words = _words(attrs) if _CONSENT_HINT.search(attrs) else []
    seen: set[str] = set()
    ui = False
    for word in words:
        if word in _CMP_VENDORS:
            return True
        ui |= word in _UI_WORDS
        for consent in _CONSENT_WORDS:
            if word.startswith(consent):
                seen.add(consent)
                # Glued compounds: "cookiebanner", "cookiesbar", "cookieconsent".
                rest = word[len(consent) :].removeprefix("s")
                ui |= rest in _UI_WORDS
                if rest.startswith(_CONSENT_WORDS):
                    seen.add(rest)
    return bool(seen) and (ui or len(seen) > 1)


@dataclass(slots=True, frozen=True)
class _Context:
    in_section: bool = False  # inside article/section/main: header/footer belong to it
    in_heading: bool = False  # a button here is an accordion title (WAI-ARIA pattern)
    # Inside a link/button named by aria-label: its aria-hidden text is the visible rendition of
    # that label (Meta's privacy policy links all look like this), not hidden text.
    in_labelled_control: bool = False


def _is_boilerplate(tag: Tag, role: str, ctx: _Context, tree: _Tree) -> bool:
    name = tag.name
    if name in _BOILERPLATE_TAGS or role in _BOILERPLATE_ROLES:
        return True
    if name in ("header", "footer"):
        return not ctx.in_section
    if name == "button" or role == "button":
        return not ctx.in_heading and not tag.has_attr("aria-expanded")
    if str(tag.get("aria-modal", "")).lower() == "true":
        return True
    if _is_link_furniture(tag, tree.facts[id(tag)]):
        return True
    return _is_absent(tag, tree, aria=not ctx.in_labelled_control) or _is_consent_banner(tag)


def _child_context(tag: Tag, facts: _Facts, ctx: _Context) -> _Context:
    new = _Context(
        in_section=ctx.in_section or tag.name in _SECTIONING or facts.role in _SECTIONING_ROLES,
        in_heading=ctx.in_heading or bool(facts.heading),
        in_labelled_control=ctx.in_labelled_control or _is_labelled_control(tag, facts.role),
    )
    return ctx if new == ctx else new


def _is_labelled_control(tag: Tag, role: str) -> bool:
    control = tag.name in ("a", "button") or role in ("link", "button")
    return control and bool(str(tag.get("aria-label", "")).strip())


def _prune(root: Tag, tree: _Tree, *, boilerplate: bool) -> set[int]:
    """Decide which descendants of `root` to drop: hidden ones that cannot be opened and link
    furniture, and the rest of the page furniture if asked (no `select`).

    A heuristic never drops an element holding the main landmark or most of the text: when a
    cookie dialog is open, Meta marks the whole page behind it aria-hidden, Facebook keeps its
    server-rendered page in a display:none mount until its scripts run, and ASP.NET wraps whole
    pages in a <form>. Noise in the output is recoverable; a missing policy is not.
    """
    facts = tree.facts
    dropped: set[int] = set()
    half = facts[id(root)].text_len / 2
    stack = [(root, _child_context(root, facts[id(root)], _Context()))]
    while stack:
        tag, ctx = stack.pop()
        for child in tag.contents:
            sub = facts.get(id(child))
            if sub is None or not isinstance(child, Tag):
                continue
            if boilerplate:
                noisy = _is_boilerplate(child, sub.role, ctx, tree)
            else:
                noisy = _is_link_furniture(child, sub) or _is_absent(child, tree, aria=False)
            if noisy and not sub.has_main and sub.text_len <= half:
                dropped.add(id(child))
            else:
                stack.append((child, _child_context(child, sub, ctx)))
    return dropped


def _landmarks(root: Tag, facts: _FactsMap, dropped: set[int]) -> list[Tag]:
    found: list[Tag] = []
    stack: list[Tag] = [root]
    while stack:
        tag = stack.pop()
        if tag is not root and (tag.name in _LANDMARKS or facts[id(tag)].role in _LANDMARKS):
            found.append(tag)
        stack.extend(
            child
            for child in reversed(tag.contents)
            if isinstance(child, Tag) and id(child) in facts and id(child) not in dropped
        )
    return found


def _choose_main(page: Tag, landmarks: list[Tag], facts: _FactsMap) -> Tag:
    """main, else [role=main], else article: the first kind with exactly one real candidate.

    A candidate must hold a quarter of the page's text, so an empty <main> shell or a teaser
    <article> does not hide the policy; falling back to the whole page only costs some noise.
    """
    kinds = (
        lambda tag: tag.name == "main",
        lambda tag: facts[id(tag)].role == "main",
        lambda tag: tag.name == "article" or facts[id(tag)].role == "article",
    )
    quarter = facts[id(page)].text_len / 4
    for kind in kinds:
        outer = _outermost((tag for tag in landmarks if kind(tag)), facts)
        real = [tag for tag in outer if facts[id(tag)].text_len >= max(quarter, 1)]
        if len(real) == 1:
            return real[0]
    return page


# --- Rendering ----------------------------------------------------------------------------------

_CELL = "\x1f"  # cell boundary inside a table row; stripped from page text beforehand


class _Renderer:
    """Walks content roots and emits one Markdown-like block per line."""

    def __init__(self, facts: _FactsMap, dropped: set[int]) -> None:
        self.blocks: list[str] = []
        self._facts = facts
        self._dropped = dropped
        self._buf: list[str] = []
        self._prefix = ""  # heading / list marker waiting for the block's first text
        self._lists: list[list[int]] = []  # [ordered (0/1), next number] per open list
        self._tables: list[bool] = []  # per open table: is it a data table?
        self._atomic = 0  # >0 inside a heading or data-table row: blocks join with spaces
        self._row = False
        self._pre = 0
        self._after_br = False
        # Sibling links with no text between them (menus, link rows) are separated by CSS
        # margins or flex gaps on screen; without a space their words would glue together.
        self._after_link = False

    def render(self, root: Tag) -> None:
        stack: list[tuple[PageElement, bool]] = [(root, False)]
        while stack:
            node, closing = stack.pop()
            if isinstance(node, Tag):
                if closing:
                    self._close(node)
                elif id(node) in self._facts and id(node) not in self._dropped:
                    self._open(node)
                    stack.append((node, True))
                    stack.extend((child, False) for child in reversed(node.contents))
            elif type(node) is NavigableString:  # not comments, doctypes, CDATA...
                self._text(str(node))
        self._flush()

    def _text(self, text: str) -> None:
        text = text.replace(_CELL, " ")
        self._after_link = False
        if not text.isspace():
            self._after_br = False
        if not self._pre:
            self._buf.append(text)
            return
        for i, line in enumerate(text.split("\n")):
            if i:
                self._flush()
            self._buf.append(line)

    def _open(self, tag: Tag) -> None:
        name = tag.name
        level = self._facts[id(tag)].heading
        if name == "a" and self._after_link:
            self._buf.append(" ")
        if name == "br":
            self._line_break()
        elif level:
            self._block()
            if not self._atomic:
                self._prefix = "#" * level + " "
            self._atomic += 1
        elif name == "li":
            self._block()
            self._prefix = "" if self._atomic else self._list_marker(tag)
        elif name in _LISTS:
            self._block()
            self._lists.append([int(name == "ol"), _int_attr(tag, "start", 1)])
        elif name == "table":
            self._block()
            self._tables.append(not self._facts[id(tag)].has_structure)
        elif name == "tr" and self._tables and self._tables[-1] and not self._atomic:
            self._block()
            self._atomic += 1
            self._row = True
        elif name in _CELLS and self._row:
            self._buf.append(_CELL)
        elif name in _BLOCKS:
            self._block()
            self._pre += name in _PRE

    def _close(self, tag: Tag) -> None:
        name = tag.name
        self._after_link = name == "a"
        if self._facts[id(tag)].heading:
            self._atomic -= 1
            self._block()
            self._prefix = ""
        elif name == "li":
            self._block()
            self._prefix = ""
        elif name in _LISTS:
            self._block()
            self._lists.pop()
        elif name == "table":
            self._block()
            self._tables.pop()
        elif name == "tr" and self._row and self._atomic == 1:
            self._atomic -= 1
            self._block()
            self._row = False
        elif name in _BLOCKS and not (name in _CELLS and self._row):
            self._pre -= name in _PRE
            self._block()

    def _list_marker(self, li: Tag) -> str:
        if not self._lists or not self._lists[-1][0]:
            return "- "
        current = self._lists[-1]
        number = _int_attr(li, "value", current[1])
        current[1] = number + 1
        return f"{number}. "

    def _line_break(self) -> None:
        # One <br> is a soft break inside a paragraph; two in a row are a paragraph break.
        if self._pre or self._after_br and not self._atomic:
            self._flush()
        else:
            self._buf.append(" ")
            self._after_br = True

    def _block(self) -> None:
        if self._atomic:
            self._buf.append(" ")
        else:
            self._flush()

    def _flush(self) -> None:
        raw = "".join(self._buf)
        self._buf.clear()
        self._after_br = self._after_link = False
        if self._row:
            cells = (_normalize_line(cell) for cell in raw.split(_CELL))
            text = " | ".join(cell for cell in cells if cell)
        else:
            text = _normalize_line(raw)
        if text:
            self.blocks.append(self._prefix + text)
            self._prefix = ""


def _normalize_line(text: str) -> str:
    return " ".join(_normalize_chars(text).split())


def _int_attr(tag: Tag, name: str, default: int) -> int:
    value = str(tag.get(name, "")).strip()
    return int(value) if value.isdigit() and len(value) < 10 else default


# --- Entry point --------------------------------------------------------------------------------


def _parse(html: str) -> BeautifulSoup:
    with warnings.catch_warnings():
        # Saved pages often start with <?xml ...?> (Instagram) and tiny inputs look like URLs to
        # bs4; both warnings are irrelevant here. (catch_warnings is process-global: at worst,
        # concurrent calls leave these two bs4 warnings silenced.)
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        return BeautifulSoup(html, "lxml")


def page_text(html: str) -> str:
    """The visible text of a whole page, one line per block, for the wall check of a page that
    failed (`guard.wall_error`): scripts, styles and templates are never what a visitor reads."""
    soup = _parse(html)
    for tag in soup(["script", "style", "noscript", "template", "svg"]):
        tag.decompose()
    return "\n".join(line.strip() for line in soup.get_text("\n").splitlines() if line.strip())


def _selected_roots(soup: BeautifulSoup, select: list[str], facts: _FactsMap) -> list[Tag]:
    # One selector list: soupsieve returns matches in document order, each once.
    matches = [tag for tag in soup.select(", ".join(select)) if id(tag) in facts]
    if not matches:
        raise ExtractError(
            f"no element matches the select selectors {select!r}", kind="selector-missing"
        )
    return _outermost(matches, facts)


def extract(html: str, select: list[str] | None = None, remove: list[str] | None = None) -> str:
    """Extract the normalised policy text of an HTML page (see `extract_region`)."""
    return extract_region(html, select, remove)[0]


def extract_region(
    html: str, select: list[str] | None = None, remove: list[str] | None = None
) -> tuple[str, str]:
    """Extract the normalised policy text of an HTML page, and say where it came from.

    `remove`: CSS selectors of elements to drop. `select`: CSS selectors of the elements holding
    the policy, kept in document order, nested matches once; inside them only what cannot be
    shown (hidden with no opener) and link lists are dropped, since the declaration already
    chose the content. Without `select`, page furniture is dropped too (nav, header, footer,
    aside, forms, buttons, dialogs, cookie banners, aria-hidden elements) and the text comes
    from the single substantial main, [role=main] or article, else from the whole page.

    The region is "select", "main" (the page's only <main> element) or "page" (anything else).

    Raises ExtractError(kind="selector-missing") when `select` matches nothing and
    ExtractError(kind="empty") when no text is left. A malformed selector raises
    soupsieve.SelectorSyntaxError: a configuration error, not a page change.
    """
    soup = _parse(html)
    # One selector list, one pass: soupsieve walks the whole tree on every call.
    removed = {id(tag) for tag in soup.select(", ".join(remove))} if remove else set()
    tree = _Tree({}, set())
    tree.facts = _collect_facts(soup, removed, tree.controlled)
    if select:
        return _render_selected(_selected_roots(soup, select, tree.facts), tree, select), "select"
    text, root = _render_default(soup, tree)
    one_main = root.name == "main" and len(soup.find_all("main", limit=2)) == 1
    return text, "main" if one_main else "page"


def _render_selected(roots: list[Tag], tree: _Tree, select: list[str] | None) -> str:
    dropped: set[int] = set()
    for root in roots:
        dropped |= _prune(root, tree, boilerplate=False)
    return _render(roots, tree, dropped, f"the elements matching {select!r}")


def _render_default(soup: BeautifulSoup, tree: _Tree) -> tuple[str, Tag]:
    # The whole document, not <body>: browsers show text that sits after </body> or </html>,
    # which lxml leaves outside <body>. <head> is never-text anyway.
    dropped = _prune(soup, tree, boilerplate=True)
    root = _choose_main(soup, _landmarks(soup, tree.facts, dropped), tree.facts)
    return _render([root], tree, dropped, "the page"), root


def _render(roots: list[Tag], tree: _Tree, dropped: set[int], where: str) -> str:
    renderer = _Renderer(tree.facts, dropped)
    for root in roots:
        renderer.render(root)
    # Blocks are already normalised one-liners, so this equals normalize_text() of the join.
    text = "\n\n".join(renderer.blocks) + "\n" if renderer.blocks else ""
    if not text:
        raise ExtractError(f"no text found in {where}", kind="empty")
    return text


# --- Extraction input ---------------------------------------------------------------------------
#
# The browser does not hand extraction the whole page (`page.content()`), but exactly what
# extraction reads of it: the elements of the region the text comes from, their text, and the
# attributes extraction looks at (READ_ATTRIBUTES; inline style only as "display:none" when it
# hides). Scripts, styles, comments, every other attribute (tokens, tracking ids, hrefs) and the
# rest of the page are left out. Two consequences:
#
# - The fetcher's fingerprint of this input is a sound shortcut: an input equal to last night's
#   gives, by construction, the text extraction gave last night (extraction reads nothing else),
#   so an unchanged night may skip extraction. A fingerprint of the visible text (innerText)
#   was not: text hidden by the page's scripts (collapsed sections, a wrapper kept hidden until
#   scripts run) changed without it.
# - Noise outside the region (a footer's time stamp, a rotating promotion) or in attributes and
#   scripts does not make extraction run again.
#
# The region is decided where the whole page is, in the browser: "select" (the outermost
# matches of `select`, in document order, each a child of <body>), "main" (the page's only
# <main>, when it holds a quarter of the page's text), else "page" (the whole body); elements
# matching `remove` are left out. "missing": `select` matched nothing, and the full page comes
# instead so that extraction can say so and relocation can look for the block.

NEVER_TEXT_TAGS = sorted(_NEVER_TEXT)
# Every attribute extraction reads; the browser keeps these and no other. The naming attributes
# (id, class, data-testid) are read only to spot consent banners and collapsible sections, and
# an id also when a control's aria-controls names it: they are kept on an element only then.
# Pages write random ids (Google's feedback form, React) on every load; kept, they would make
# every night's input differ.
READ_ATTRIBUTES = (
    "role", "hidden", "aria-hidden", "aria-expanded", "aria-controls", "aria-modal",
    "aria-level", "aria-label", "start", "value", "open", "style",
)  # fmt: skip
NAMING_ATTRIBUTES = ("id", "class", "aria-label", "data-testid")  # as `_naming_attrs` reads
NAMING_HINT = f"{_CONSENT_HINT.pattern}|{_COLLAPSIBLE.pattern}"


def reduce_arguments(select: Iterable[str], remove: Iterable[str]) -> list[object]:
    """The argument list of REDUCE_JS for a document's selectors."""
    return [list(select), list(remove), NEVER_TEXT_TAGS, list(READ_ATTRIBUTES),
            list(NAMING_ATTRIBUTES), NAMING_HINT]  # fmt: skip


REDUCE_JS = """([select, remove, skipTags, keepAttrs, namingAttrs, hintSource]) => {
  const skip = new Set(skipTags);
  const keep = keepAttrs.filter(a => a !== 'style');
  const hint = new RegExp(hintSource, 'i');
  const controlled = new Set();
  for (const el of document.querySelectorAll('[aria-controls]')) {
    for (const id of el.getAttribute('aria-controls').split(/\\s+/)) if (id) controlled.add(id);
  }
  const hides = /(?:^|;)\\s*(?:display\\s*:\\s*none|visibility\\s*:\\s*hidden)/i;
  const voids = new Set(['area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link',
                         'meta', 'source', 'track', 'wbr']);
  const esc = s => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const attr = s => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;');
  const removeList = remove.join(', ');
  const removed = el => removeList !== '' && el.matches(removeList);
  // Iterative walk: pages nested thousands deep must not overflow the stack. `root` itself is
  // written out unless only its children are asked for; returns the text length written.
  const serialize = (root, out, childrenOnly) => {
    let textLength = 0;
    const stack = [];
    if (childrenOnly) {
      for (let child = root.lastChild; child; child = child.previousSibling) stack.push(child);
    } else {
      stack.push(root);
    }
    while (stack.length) {
      const node = stack.pop();
      if (typeof node === 'string') { out.push(node); continue; }
      if (node.nodeType === 3) {
        out.push(esc(node.data));
        textLength += node.data.trim().length;
        continue;
      }
      if (node.nodeType !== 1) continue;
      const name = node.localName;
      if (skip.has(name) || removed(node)) continue;
      let open = '<' + name;
      for (const a of keep) {
        const v = node.getAttribute(a);
        if (v !== null) open += ' ' + a + '="' + attr(v) + '"';
      }
      const naming = namingAttrs.map(a => node.getAttribute(a) || '').join(' ');
      const named = hint.test(naming);
      const id = node.getAttribute('id');
      if (id !== null && (named || controlled.has(id))) open += ' id="' + attr(id) + '"';
      for (const a of ['class', 'data-testid']) {
        const v = node.getAttribute(a);
        if (v !== null && named) open += ' ' + a + '="' + attr(v) + '"';
      }
      const style = node.getAttribute('style');
      if (style && hides.test(style)) open += ' style="display:none"';
      out.push(open + '>');
      if (voids.has(name)) continue;
      stack.push('</' + name + '>');
      for (let child = node.lastChild; child; child = child.previousSibling) stack.push(child);
    }
    return textLength;
  };
  const body = document.body || document.documentElement;
  const result = {title: document.title, region: 'page', html: ''};
  const out = ['<html><body>'];
  if (select.length) {
    let matches;
    try { matches = Array.from(document.querySelectorAll(select.join(', '))); }
    catch (e) { result.region = 'unsupported'; return result; }
    const roots = [];
    for (const el of matches) {
      if (removeList !== '' && el.closest(removeList)) continue;
      if (roots.length && roots[roots.length - 1].contains(el)) continue;
      roots.push(el);
    }
    if (!roots.length) { result.region = 'missing'; return result; }
    result.region = 'select';
    for (const root of roots) serialize(root, out, false);
  } else {
    const mains = document.getElementsByTagName('main');
    const page = [], inMain = [];
    const total = serialize(body, page, true);
    if (mains.length === 1 && !removed(mains[0])) {
      const own = serialize(mains[0], inMain, false);
      if (own > 0 && own * 4 >= total) result.region = 'main';
    }
    out.push(...(result.region === 'main' ? inMain : page));
  }
  out.push('</body></html>');
  result.html = out.join('');
  return result;
}"""


def extract_reduced(region: str, html: str) -> str:
    """Extract the policy text from the extraction input the browser made (REDUCE_JS): for
    "select" every child of <body> is a selected root; "main" and "page" are read as a page
    without `select`. Raises ExtractError as `extract_region` does."""
    soup = _parse(html)
    tree = _Tree({}, set())
    tree.facts = _collect_facts(soup, set(), tree.controlled)
    if region == "select":
        body = soup.body
        roots = [child for child in body.children if isinstance(child, Tag)] if body else []
        roots = [root for root in roots if id(root) in tree.facts]
        if not roots:
            raise ExtractError("no element matches the select selectors", kind="selector-missing")
        return _render_selected(roots, tree, None)
    return _render_default(soup, tree)[0]


# The same reduction in Python, for pages fetched without a browser (`render: http`): parsed by
# lxml (the parser extraction itself uses, through BeautifulSoup), selectors matched by cssselect.
# Its output plays the part of REDUCE_JS's: extraction reads it and the fetcher fingerprints it,
# so an http page whose input equals last night's skips extraction, soundly for the same reason.

_KEEP_ATTRIBUTES = tuple(a for a in READ_ATTRIBUTES if a != "style")
_NAMING_HINT = re.compile(NAMING_HINT, re.I)
# libxml2's tree builder drops whatever follows the root's end tag, where BeautifulSoup and a
# browser keep it (pages do put content after </html>): the end tag is dropped before parsing,
# except inside scripts, styles and comments (raw text, never read), so the rest stays in the
# page, as in the browser's <body>.
_HTML_END = re.compile(
    r"(<script\b.*?</script\s*>|<style\b.*?</style\s*>|<!--.*?-->)|</html\s*>", re.I | re.S
)


@functools.cache
def _lxml_parser() -> object:
    import lxml.etree

    # The parser BeautifulSoup's "lxml" builder drives; one per process (it is reusable).
    return lxml.etree.HTMLParser(encoding="utf-8")


@dataclass(slots=True)
class Reduced:
    """What `reduce_html` made of a page: the region ("select", "main", "page", or "missing" /
    "unsupported" as REDUCE_JS says them) and extraction's input ("" for the last two)."""

    region: str
    html: str


def reduce_html(html: str, select: Iterable[str] = (), remove: Iterable[str] = ()) -> Reduced:
    """The extraction input REDUCE_JS makes in the browser, made from an HTML string.

    The same regions from the same rules, the same elements (never-text ones and `remove`
    matches left out, comments too) and the same attributes (READ_ATTRIBUTES; the naming ones
    only where NAMING_HINT matches or aria-controls names the id; a hiding style as
    "display:none"), written by libxml2's serializer, which extraction's parser reads back as
    it was. Kept attributes are sorted, so a page that shuffles them gives the same input.
    "unsupported" when cssselect cannot read a selector or nothing can be parsed: the caller
    then extracts the whole page.
    """
    import lxml.etree as etree
    from cssselect import SelectorError
    from lxml.cssselect import CSSSelector

    select, remove = list(select), list(remove)
    if "</" in html:
        html = _HTML_END.sub(lambda m: m.group(1) or "", html)
    parser = _lxml_parser()
    try:
        root = etree.fromstring(html.encode("utf-8", "replace"), parser)
    except (etree.LxmlError, ValueError):
        root = None
    if root is None:  # nothing to parse (an empty body): extraction reads it and says so
        return Reduced("unsupported", "")
    # libxml2 stops building the tree past 256 levels ("Excessive depth"): what lies deeper is
    # cut, so this input would not be what extraction reads. When in doubt, extract the page.
    if any(error.type_name == "ERR_RESOURCE_LIMIT" for error in parser.error_log):  # type: ignore[attr-defined]
        return Reduced("unsupported", "")
    try:
        removed = CSSSelector(", ".join(remove), translator="html")(root) if remove else []
        matches = CSSSelector(", ".join(select), translator="html")(root) if select else []
    except SelectorError:
        return Reduced("unsupported", "")
    controlled: set[str] = set()
    for element in root.iter():
        value = element.get("aria-controls") if isinstance(element.tag, str) else None
        if value is not None:
            controlled.update(value.split())
    roots: list[Any] = []
    if select:
        gone = set(removed)
        for element in matches:
            if element in gone or any(node in gone for node in element.iterancestors()):
                continue
            if roots and any(node is roots[-1] for node in element.iterancestors()):
                continue
            roots.append(element)
        if not roots:
            return Reduced("missing", "")
    mains = [] if select else list(root.iter("main"))
    main = mains[0] if len(mains) == 1 and all(mains[0] is not r for r in removed) else None
    # From here on the tree is pruned in place: it is this function's own parse.
    for element in removed:
        _drop_keeping_tail(element)
    etree.strip_elements(root, etree.Comment, etree.ProcessingInstruction, *_NEVER_TEXT,
                         with_tail=False)  # fmt: skip
    for element in root.iter():
        if element.attrib:
            _keep_read_attributes(element, controlled)
    if select:
        return Reduced("select", _wrap(roots))
    # REDUCE_JS reads the one <main> when it holds a quarter of the page's text; one inside a
    # left-out element is out of the tree now, and holds none of the page's text.
    if main is not None and main.getroottree().getroot() is root:
        own = _text_length(main)
        if own > 0 and own * 4 >= _text_length(root):
            return Reduced("main", _wrap([main]))
    # The page: what <body> holds, and what libxml2 left after it inside <html>; REDUCE_JS
    # writes no attribute of either (<head> is never-text, gone).
    for element in (root, *root.iterchildren("body")):
        element.attrib.clear()
    return Reduced("page", _serialize(root))


def _wrap(roots: list[Any]) -> str:
    return "<html><body>" + "".join(_serialize(root) for root in roots) + "</body></html>"


def _serialize(element: Any) -> str:
    import lxml.etree as etree

    return str(etree.tostring(element, method="html", encoding="unicode", with_tail=False))


def _text_length(element: Any) -> int:
    return sum(len(text.strip()) for text in element.itertext())


def _drop_keeping_tail(element: Any) -> None:
    """Remove an element and its subtree; the text after it stays where it was."""
    parent = element.getparent()
    if parent is None:
        return
    tail = element.tail
    if tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(element)


def _keep_read_attributes(element: Any, controlled: set[str]) -> None:
    attrib = element.attrib
    naming = " ".join(attrib.get(name, "") for name in NAMING_ATTRIBUTES)
    named = bool(naming.strip()) and bool(_NAMING_HINT.search(naming))
    kept: list[tuple[str, str]] = []
    for key, value in attrib.items():
        if key in _KEEP_ATTRIBUTES:
            kept.append((key, value))
        elif key == "id":
            if named or value in controlled:
                kept.append((key, value))
        elif key in ("class", "data-testid"):
            if named:
                kept.append((key, value))
        elif key == "style" and _HIDDEN_STYLE.search(value):
            kept.append((key, "display:none"))
    attrib.clear()
    for key, value in sorted(kept):
        attrib[key] = value


# --- Other document types ---------------------------------------------------------------------


_PDF_PARAGRAPH_END = re.compile(r"[.!?:;]['\")\]]*$")
# A line this short that does not end a sentence is a heading or a list label, not wrapped text.
_PDF_SHORT_LINE = 60


def extract_pdf(data: bytes) -> str:
    """Text of a PDF policy, one paragraph per line like the HTML output.

    pypdf gives the text line by line as laid out on the page. Wrapped lines are joined back
    into paragraphs (a paragraph ends at a sentence end or a short heading-like line), so that
    re-flowing the same words does not look like a change.
    """
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        lines = [
            line.strip()
            for page in reader.pages
            for line in (page.extract_text() or "").splitlines()
            if line.strip()
        ]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise ExtractError(f"the PDF could not be read: {exc}", kind="empty") from None
    paragraphs: list[str] = []
    current: list[str] = []
    for line in lines:
        current.append(line)
        if _PDF_PARAGRAPH_END.search(line) or (
            len(line) < _PDF_SHORT_LINE and not line.endswith((",", "-", "and", "or"))
        ):
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    text = normalize_text("\n\n".join(paragraphs))
    if not text.strip():
        raise ExtractError("the PDF holds no text (a scanned image?)", kind="empty")
    return text


def extract_document(
    html: str,
    raw: bytes | None,
    content_type: str,
    select: list[str] | None = None,
    remove: list[str] | None = None,
) -> tuple[str, str]:
    """Dispatch on what was fetched: a PDF's bytes, or a page's HTML. Returns the text and its
    region (see `extract_region`; "pdf" for a PDF)."""
    if raw is not None and "pdf" in content_type:
        return extract_pdf(raw), "pdf"
    return extract_region(html, select, remove)
