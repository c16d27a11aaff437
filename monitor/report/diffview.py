"""A stored diff (see `monitor.diff`) as the parts a change page shows.

The page lists the new text's blocks in reading order. Changed blocks are grouped into numbered
"hunks" (a run of adjacent changed blocks) so the reader can jump from one to the next; a few
unchanged blocks around each hunk stay visible as context and longer unchanged stretches are
folded. All text stays plain strings: escaping is the templates' job (autoescape).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

CONTEXT_BLOCKS = 2  # unchanged blocks shown before and after each hunk
MIN_FOLD = 3  # a shorter unchanged stretch is shown rather than hidden behind a "show" toggle

_HEADING_RE = re.compile(r"^(#{1,6})\s")


@dataclass(frozen=True, slots=True)
class Row:
    """One block. `kind` is equal, reformatted, added, removed, modified or moved."""

    kind: str
    text: str = ""
    words: tuple[tuple[int, str], ...] = ()
    old_number: int | None = None  # 1-based block numbers, for "moved from block N"
    new_number: int | None = None
    level: int = 0  # heading level (1-6) of a Markdown heading block, 0 for others

    @property
    def changed(self) -> bool:
        return self.kind in ("added", "removed", "modified", "moved")


@dataclass
class Part:
    """A stretch of the page: "context" (shown), "fold" (folded) or "hunk" (numbered changes)."""

    type: str
    rows: list[Row] = field(default_factory=list)
    number: int = 0  # hunks only, 1-based

    @property
    def runs(self) -> list[tuple[int, str]]:
        """Unchanged rows as (heading level, text) runs; see `text_runs`."""
        return text_runs((row.level, row.text) for row in self.rows)


def text_runs(blocks: Iterable[tuple[int, str]]) -> list[tuple[int, str]]:
    """Consecutive non-heading blocks joined by blank lines, each heading on its own.

    A page shows a run as one pre-wrapped element: the same look as one element per block, with a
    fraction of the template work (a long policy has hundreds of blocks, the site thousands of
    pages).
    """
    runs: list[tuple[int, list[str]]] = []
    for level, text in blocks:
        if level == 0 and runs and runs[-1][0] == 0:
            runs[-1][1].append(text)
        else:
            runs.append((level, [text]))
    return [(level, "\n\n".join(texts)) for level, texts in runs]


@dataclass
class DiffView:
    parts: list[Part]
    hunks: int
    counts: dict[str, int]  # rows per kind; blank lines left out, unlike the stored summary


def heading_level(text: str) -> int:
    if not text.startswith("#"):  # most blocks: skip the regular expression
        return 0
    m = _HEADING_RE.match(text)
    return len(m.group(1)) if m else 0


def row_of(op: dict[str, Any]) -> Row:
    kind = op["op"]
    old = op["old"] + 1 if op.get("old") is not None else None
    new = op["new"] + 1 if op.get("new") is not None else None
    if kind == "modified":
        if op.get("whitespace_only"):
            # Only spacing changed: nothing a reader can see, so it reads (and folds) as equal.
            text = op["new_text"]
            return Row("reformatted", text, (), old, new, heading_level(text))
        words = tuple((int(sign), str(text)) for sign, text in op["words"])
        return Row("modified", op["new_text"], words, old, new, heading_level(op["new_text"]))
    return Row(kind, op["text"], (), old, new, heading_level(op["text"]))


def diff_view(diff: dict[str, Any]) -> DiffView:
    """Group a stored diff's ops into context, folds and numbered hunks."""
    # Blank blocks carry nothing to read (texts are normalised without them, but older or
    # hand-made ones may have some): they are neither shown nor counted as changes.
    rows = [row for op in diff.get("ops", []) if (row := row_of(op)).text.strip()]
    visible = _visible(rows)
    parts: list[Part] = []
    hunks = 0
    for i, row in enumerate(rows):
        if row.changed:
            if not (parts and parts[-1].type == "hunk" and rows[i - 1].changed):
                hunks += 1
                parts.append(Part("hunk", number=hunks))
            parts[-1].rows.append(row)
            continue
        kind = "context" if visible[i] else "fold"
        if not (parts and parts[-1].type == kind):
            parts.append(Part(kind))
        parts[-1].rows.append(row)
    counts = {kind: 0 for kind in ("added", "removed", "modified", "moved")}
    for row in rows:
        if row.kind in counts:
            counts[row.kind] += 1
    return DiffView(_unfold_short(parts), hunks, counts)


def _visible(rows: list[Row]) -> list[bool]:
    """Unchanged rows within CONTEXT_BLOCKS of a changed row stay visible."""
    visible = [False] * len(rows)
    for i, row in enumerate(rows):
        if row.changed:
            for k in range(max(0, i - CONTEXT_BLOCKS), min(len(rows), i + CONTEXT_BLOCKS + 1)):
                visible[k] = True
    return visible


def _unfold_short(parts: list[Part]) -> list[Part]:
    """Folds too short to be worth a toggle become context (merged with their neighbours)."""
    out: list[Part] = []
    for part in parts:
        if part.type == "fold" and len(part.rows) < MIN_FOLD:
            part = Part("context", part.rows)
        if part.type == "context" and out and out[-1].type == "context":
            out[-1].rows.extend(part.rows)
        else:
            out.append(part)
    return out
