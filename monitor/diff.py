"""Diff engine: what changed between two versions of a policy text, as a human would edit it.

Texts are normalised Markdown-like policy text with one block (heading, paragraph, list item) per
line. The diff works top-down, always with diff-match-patch on units encoded one character per
unit (its "line mode" trick: diff_linesToChars / diff_main(checklines=False) / diff_charsToLines,
generalised to any unit), so no level ever diffs raw characters:

1. blocks (lines) are aligned; a block removed in one place and added unchanged in another is
   "moved";
2. in each changed stretch, similar removed/added blocks are paired into "modified" blocks;
3. each modified pair is diffed word by word and cleaned up with `diff_cleanupSemantic`, so it
   reads like an edit, not character soup. Long texts (a whole policy on one line) are first cut
   at words that occur once on each side (patience-diff anchors), so each diff_main call on words
   stays small.

Diff_Timeout is 0 (no deadline) everywhere. At its deadline the pure-Python diff_match_patch gives
up with "delete everything, insert everything" for the rest, and a deadline would make the result
depend on the machine's speed. No deadline is safe because Myers' cost is O((N+M)D) and both
factors are kept small: units found on one side only are set aside before diffing (they cannot
match, so the result is still minimal, and a rewritten paragraph costs nothing), a policy has at
most a few thousand lines, and word-level inputs are cut into pieces of at most
`_DIRECT_DIFF_MAX_TOKENS`. The result is deterministic plain data, stored as JSON with each change.

Output of `diff_texts(old, new)`::

    {"format": 1,
     "ops": [  # in the new text's order; removed blocks where they stood in the old one
       {"op": "equal", "old": 0, "new": 0, "text": "# Terms"},
       {"op": "modified", "old": 1, "new": 1, "old_text": "...", "new_text": "...",
        "words": [[0, "You must be at least "], [-1, "15"], [1, "13"], [0, " years old."]],
        "whitespace_only": False},
       {"op": "removed", "old": 2, "new": None, "text": "..."},
       {"op": "added", "old": None, "new": 2, "text": "..."},
       {"op": "moved", "old": 3, "new": 7, "text": "..."},  # listed at its new place
     ],
     "summary": {...}}  # see `summarize`

"old"/"new" are 0-based block (line) indices; the old text is its blocks ordered by "old" and
joined with "\\n", likewise the new text (see `reconstruct`). In "words", -1/0/1 mean deleted/
unchanged/inserted: a side-by-side view shows the segments <= 0 on the left and >= 0 on the right,
an inline view all of them; runs of "equal" ops (and whitespace-only ones) can be folded.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from diff_match_patch import diff_match_patch

FORMAT = 1

# Word-level pieces up to this many tokens (words, spaces, punctuation) go to diff_main as they
# are; longer ones are cut at anchors first. A paragraph is a few hundred tokens. Even two
# unrelated pieces of this size cost diff_main only ~60 ms (it grows with the square).
_DIRECT_DIFF_MAX_TOKENS = 1000
# An anchor (a word unique on both sides) must have this many equal tokens on each side.
_ANCHOR_CONTEXT = 2
# Two blocks are "the same block, modified" when their word sets overlap this much (Dice).
# Below it they are shown as removed + added: a word diff that is mostly red and green is noise.
_PAIR_MIN_SIMILARITY = 0.5
# ... and this much when one block is replaced by one block in the same place.
_PAIR_MIN_SIMILARITY_ALONE = 0.3
# Above this many candidate pairs in one changed stretch, only pairs sharing a rare word are scored.
_PAIR_ALL_LIMIT = 4096
_RARE_WORD_MAX_BLOCKS = 8
# A block must have this many words to count as moved: "Learn more" showing up elsewhere is noise.
_MOVE_MIN_WORDS = 3

_TOKEN_RE = re.compile(r"\w+|\s+|[^\w\s]")
_WORD_RE = re.compile(r"\w+")
_WORD_CHAR_RE = re.compile(r"\w")
_LINK_TARGET_RE = re.compile(r"\]\([^)\s]*\)|https?://\S+")

Segment = tuple[int, str]
_SIGN = {"added": 1, "removed": -1}  # a block on one side only, like a word segment
Match = tuple[int, int, int]  # old[i:i+n] == new[j:j+n]


def _make_dmp() -> Any:
    dmp = diff_match_patch()
    dmp.Diff_Timeout = 0  # see the module docstring: inputs are kept small instead
    return dmp


_DMP = _make_dmp()


class Run(NamedTuple):
    """A stretch of an alignment: equal units, or a gap of removed and/or inserted units."""

    equal: bool
    old: range
    new: range


# --- Aligning unit sequences (blocks or word tokens) ---------------------------------------------


def _encode(old: Sequence[str], new: Sequence[str]) -> tuple[str, str]:
    """One character per distinct unit: diff_linesToChars for any unit.

    Codes start at 1 (no NUL, as in diff_linesToChars). Lone surrogates are fine: the strings
    are only compared, never encoded, and no text has anywhere near 0x10FFFF distinct units.
    """
    units = dict.fromkeys([*old, *new])  # first-seen order: the same codes on every run
    codes = {unit: chr(k) for k, unit in enumerate(units, 1)}
    return "".join(map(codes.__getitem__, old)), "".join(map(codes.__getitem__, new))


def _lcs_matches(old: str, new: str) -> list[Match]:
    """A longest common subsequence of two encoded strings (a minimal diff), as matches.

    Units found on one side only cannot be part of it, so they are set aside first: Myers'
    O((N+M)D) then runs with D = shared units out of order, not every rewritten word.
    """
    units_old, units_new = set(old), set(new)
    shared = units_old & units_new
    if len(shared) == len(units_old) == len(units_new):  # nothing to set aside
        return _matches_of(_DMP.diff_main(old, new, False), range(len(old)), range(len(new)))
    keep_old = [i for i, c in enumerate(old) if c in shared]
    keep_new = [j for j, c in enumerate(new) if c in shared]
    reduced_old = "".join([old[i] for i in keep_old])
    reduced_new = "".join([new[j] for j in keep_new])
    return _matches_of(_DMP.diff_main(reduced_old, reduced_new, False), keep_old, keep_new)


def _matches_of(
    diffs: list[Segment], keep_old: Sequence[int], keep_new: Sequence[int]
) -> list[Match]:
    """Matches of a diff of the kept units, in the original positions."""
    matches: list[Match] = []
    x = y = 0
    for op, text in diffs:
        n = len(text)
        if op == 0:
            olds, news = keep_old[x : x + n], keep_new[y : y + n]
            if olds[-1] - olds[0] == n - 1 and news[-1] - news[0] == n - 1:
                matches.append((olds[0], news[0], n))  # nothing was set aside in between
            else:
                matches.extend((i, j, 1) for i, j in zip(olds, news, strict=True))
        x += n if op <= 0 else 0
        y += n if op >= 0 else 0
    return matches


def _anchored_matches(old: str, new: str) -> list[Match]:
    """Like _lcs_matches, for long inputs: cut at unique common units first (patience diff).

    A unit that occurs exactly once on each side, in the same order as the other such units,
    almost surely belongs to the alignment; between two of them the pieces are independent and
    small. Pieces are cut again (units unique within the piece) until short enough.
    """
    if len(old) + len(new) <= _DIRECT_DIFF_MAX_TOKENS:
        return _lcs_matches(old, new)
    anchors = _unique_anchors(old, new)
    if not anchors:
        # Long texts sharing no distinctive phrase are unrelated (a section rewritten from
        # scratch): whatever "the"s and commas an LCS would pair up would be noise, at a cost
        # quadratic in their length.
        return []
    matches: list[Match] = []
    i0 = j0 = 0
    for i, j in [*anchors, (len(old), len(new))]:
        pieces = _anchored_matches(old[i0:i], new[j0:j])
        matches.extend((i0 + a, j0 + b, n) for a, b, n in pieces)
        if i < len(old):
            matches.append((i, j, 1))
        i0, j0 = i + 1, j + 1
    return matches


def _unique_anchors(old: str, new: str) -> list[tuple[int, int]]:
    """Positions of units unique on both sides, longest run in the same order on both.

    A unique word can still be a coincidence (deleted in one place, added in another), and one
    such false anchor misaligns everything up to the next: so the units around it must agree too.
    """
    count_old, count_new = Counter(old), Counter(new)
    where_new = {c: j for j, c in enumerate(new) if count_new[c] == 1 and count_old[c] == 1}
    r = _ANCHOR_CONTEXT
    candidates = [
        (i, where_new[c])
        for i, c in enumerate(old)
        if c in where_new
        and old[max(i - r, 0) : i + r + 1] == new[max(where_new[c] - r, 0) : where_new[c] + r + 1]
    ]
    return _longest_increasing(candidates)


def _longest_increasing(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Longest subsequence of pairs (sorted by first item) increasing in the second item."""
    tails: list[int] = []  # smallest last j of an increasing run of each length
    tail_at: list[int] = []  # ... and the index of that pair
    previous = [-1] * len(pairs)
    for k, (_, j) in enumerate(pairs):
        length = bisect_left(tails, j)
        if length == len(tails):
            tails.append(j)
            tail_at.append(k)
        else:
            tails[length], tail_at[length] = j, k
        previous[k] = tail_at[length - 1] if length else -1
    out: list[tuple[int, int]] = []
    k = tail_at[-1] if tail_at else -1
    while k >= 0:
        out.append(pairs[k])
        k = previous[k]
    return out[::-1]


def _runs(matches: list[Match], n_old: int, n_new: int) -> list[Run]:
    """Equal runs (adjacent matches joined) and the gaps between them, in order."""
    runs: list[Run] = []
    i = j = 0
    for a, b, n in [*matches, (n_old, n_new, 0)]:
        if a > i or b > j:
            runs.append(Run(False, range(i, a), range(j, b)))
        elif runs and runs[-1].equal and n:
            last = runs.pop()  # contiguous with the previous equal run
            a, b, n = last.old.start, last.new.start, n + len(last.old)
        if n:
            runs.append(Run(True, range(a, a + n), range(b, b + n)))
        i, j = a + n, b + n
    return runs


def _align(old: Sequence[str], new: Sequence[str]) -> list[Run]:
    enc_old, enc_new = _encode(old, new)
    return _runs(_lcs_matches(enc_old, enc_new), len(old), len(new))


# --- Pairing removed and added blocks that are versions of each other -----------------------------


class _Profile(NamedTuple):
    """Words of a block, for similarity: all of them, and those outside link targets."""

    words: frozenset[str]
    prose: frozenset[str]


def _profile(text: str) -> _Profile:
    words = _word_set(text)
    # A URL is a dozen "words": it makes a heading that gained a link look unrelated, yet the
    # link is all a date line ("_[Effective May 1, 2024](url)_") keeps. Both views are scored.
    prose = _word_set(_LINK_TARGET_RE.sub(" ", text)) if "://" in text or "](" in text else words
    return _Profile(words, prose)


def _word_set(text: str) -> frozenset[str]:
    words = _WORD_RE.findall(text)
    if not words:  # rules and separators: compare the characters they are made of
        return frozenset(text) - frozenset(" \t")
    return frozenset(w.casefold() for w in words)


def _dice(a: frozenset[str], b: frozenset[str]) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a and b else 0.0


def _similarity(a: _Profile, b: _Profile) -> float:
    return max(_dice(a.words, b.words), _dice(a.prose, b.prose))


def _candidates(olds: list[_Profile], news: list[_Profile]) -> Iterable[tuple[int, int]]:
    """Pairs worth scoring: all of them in a small stretch, else those sharing a rare word."""
    if len(olds) * len(news) <= _PAIR_ALL_LIMIT:
        return ((i, j) for i in range(len(olds)) for j in range(len(news)))
    index: dict[str, list[int]] = defaultdict(list)
    for i, profile in enumerate(olds):
        for word in profile.words:
            index[word].append(i)
    found: set[tuple[int, int]] = set()
    for j, profile in enumerate(news):
        for word in profile.words:
            holders = index.get(word, ())
            if len(holders) <= _RARE_WORD_MAX_BLOCKS:
                found.update((i, j) for i in holders)
    return sorted(found)


def _pair_similar(old: Sequence[str], new: Sequence[str]) -> list[tuple[int, int]]:
    """Order-preserving pairs (i, j) of similar blocks, most similar first (greedy, no crossing)."""
    if not old or not new:
        return []
    olds, news = [_profile(t) for t in old], [_profile(t) for t in new]
    # One block replaced by one block in the same place is most likely the same block reworded
    # ("Last updated: March 5, 2023" -> "Last updated: June 1, 2024"), so less overlap will do.
    threshold = _PAIR_MIN_SIMILARITY_ALONE if len(old) == len(new) == 1 else _PAIR_MIN_SIMILARITY
    scored = []
    for i, j in _candidates(olds, news):
        score = _similarity(olds[i], news[j])
        if score >= threshold:
            scored.append((-score, i, j))
    scored.sort()
    accepted: dict[int, int] = {}
    for _, i, j in scored:
        if i not in accepted and _fits(accepted, i, j):
            accepted[i] = j
    return sorted(accepted.items())


def _fits(accepted: dict[int, int], i: int, j: int) -> bool:
    """Would (i, j) keep the accepted pairs in the same order on both sides?"""
    return all((ai < i) == (aj < j) and aj != j for ai, aj in accepted.items())


def _interleave(
    dels: Sequence[int], adds: Sequence[int], pairs: list[tuple[int, int]]
) -> Iterable[tuple[int | None, int | None]]:
    """Walk a gap in reading order: unpaired removals, then additions, then each pair."""
    di = ai = 0
    for pi, pa in [*pairs, (len(dels), len(adds))]:
        for k in range(di, pi):
            yield dels[k], None
        for k in range(ai, pa):
            yield None, adds[k]
        if pi < len(dels) and pa < len(adds):
            yield dels[pi], adds[pa]
        di, ai = pi + 1, pa + 1


# --- Word level ------------------------------------------------------------------------------


def _refine(old: str, new: str) -> list[Segment]:
    """Word-level diff of two versions of a block."""
    # Most edits touch a few words of a long block: diff only the middle that differs, cut at
    # whitespace so that no word is split (binary-searched common prefix/suffix: cheap).
    start = _DMP.diff_commonPrefix(old, new)
    while start and not old[start - 1].isspace():
        start -= 1
    end = _DMP.diff_commonSuffix(old[start:], new[start:])
    while end and not old[len(old) - end].isspace():
        end -= 1
    middle = _word_diff(
        _TOKEN_RE.findall(old[start : len(old) - end]),
        _TOKEN_RE.findall(new[start : len(new) - end]),
    )
    return _merge([(0, old[:start]), *middle, (0, old[len(old) - end :])])


def _word_diff(old_tokens: list[str], new_tokens: list[str]) -> list[Segment]:
    """Token-level diff, cleaned up semantically, at whole-token boundaries."""
    # All whitespace compares equal: a no-break space turned into a space (pages flip between
    # them) must not break the alignment; _decode shows such differences as tiny edits.
    enc_old, enc_new = _encode(_canonical(old_tokens), _canonical(new_tokens))
    diffs: list[Segment] = []
    for run in _runs(_anchored_matches(enc_old, enc_new), len(enc_old), len(enc_new)):
        if run.equal:
            diffs.append((0, enc_old[run.old.start : run.old.stop]))
            continue
        if run.old:
            diffs.append((-1, enc_old[run.old.start : run.old.stop]))
        if run.new:
            diffs.append((1, enc_new[run.new.start : run.new.stop]))
    # On the encoded text, lengths count tokens, so this drops equalities of a few tokens
    # between edits ("the", ", ") and merges the edits around them, as a human would write it.
    _DMP.diff_cleanupSemantic(diffs)
    return _align_to_words(_decode(diffs, old_tokens, new_tokens))


def _canonical(tokens: list[str]) -> list[str]:
    return [" " if token[0].isspace() else token for token in tokens]


def _decode(diffs: list[Segment], old_tokens: list[str], new_tokens: list[str]) -> list[Segment]:
    """Encoded diff -> text segments."""
    segments: list[Segment] = []
    x = y = 0
    for op, codes in diffs:
        n = len(codes)
        if op == -1:
            segments.append((-1, "".join(old_tokens[x : x + n])))
        elif op == 1:
            segments.append((1, "".join(new_tokens[y : y + n])))
        else:
            segments += _spacing_edits(old_tokens[x : x + n], new_tokens[y : y + n])
        x += n if op <= 0 else 0
        y += n if op >= 0 else 0
    return _merge(segments)


def _spacing_edits(olds: list[str], news: list[str]) -> list[Segment]:
    """An equal stretch (whitespace compared as equal): small edits where the spacing differs."""
    if olds == news:
        return [(0, "".join(olds))]
    segments: list[Segment] = []
    start = 0
    for k, (old, new) in enumerate(zip(olds, news, strict=True)):
        if old != new:
            segments += [(0, "".join(olds[start:k])), (-1, old), (1, new)]
            start = k + 1
    segments.append((0, "".join(olds[start:])))
    return segments


def _align_to_words(segments: list[Segment]) -> list[Segment]:
    """Slide edits onto word/sentence boundaries (the scoring needs the real text, not codes).

    diff_cleanupSemanticLossless can, rarely, put a boundary inside a word when it slides an edit
    to the edge of an equality; then the token-aligned version is kept.
    """
    shifted = list(segments)
    _DMP.diff_cleanupSemanticLossless(shifted)
    return shifted if _on_word_boundaries(shifted) else segments


def _on_word_boundaries(segments: list[Segment]) -> bool:
    for side in (-1, 1):
        texts = [text for op, text in segments if op != side and text]
        for left, right in zip(texts, texts[1:], strict=False):
            if _WORD_CHAR_RE.match(left[-1]) and _WORD_CHAR_RE.match(right[0]):
                return False
    return True


def _merge(segments: list[Segment]) -> list[Segment]:
    """Join neighbours with the same op; deletions before insertions between equalities.

    Not diff_cleanupMerge: that factors out common characters and would cut words apart.
    """
    merged: list[tuple[int, list[str]]] = []
    pending: dict[int, list[str]] = {-1: [], 1: []}
    for op, text in segments:
        if not text:
            continue
        if op:
            pending[op].append(text)
        elif pending[-1] or pending[1]:
            merged.extend((op, parts) for op, parts in pending.items() if parts)
            pending = {-1: [], 1: []}
            merged.append((0, [text]))
        elif merged and merged[-1][0] == 0:
            merged[-1][1].append(text)
        else:
            merged.append((0, [text]))
    merged.extend((op, parts) for op, parts in pending.items() if parts)
    return [(op, "".join(parts)) for op, parts in merged]


# --- Block level -----------------------------------------------------------------------------


def _split_blocks(text: str) -> list[str]:
    # An empty text has no block (not one empty block), so "" -> "x" is one added block.
    return text.split("\n") if text else []


def _block_key(block: str) -> str:
    return " ".join(block.split())


def _find_moves(old: list[str], new: list[str], runs: list[Run]) -> dict[int, int]:
    """new index -> old index of blocks removed in one place and added unchanged in another."""
    removed: dict[str, list[int]] = defaultdict(list)
    for run in runs:
        if not run.equal:
            for i in run.old:
                if len(_WORD_RE.findall(old[i])) >= _MOVE_MIN_WORDS:
                    removed[old[i]].append(i)
    moves: dict[int, int] = {}
    for run in runs:
        if not run.equal:
            for j in run.new:
                if removed.get(new[j]):
                    moves[j] = removed[new[j]].pop(0)
    return moves


def _gap_ops(old: list[str], new: list[str], run: Run, moves: dict[int, int]) -> list[dict]:
    moved_away = set(moves.values())
    dels = [i for i in run.old if i not in moved_away]  # a moved block shows at its new place
    adds = list(run.new)  # moved blocks arriving here stay among the additions, in text order
    ins = [k for k, j in enumerate(adds) if j not in moves]
    pairs = _pair_similar([old[i] for i in dels], [new[adds[k]] for k in ins])
    ops: list[dict] = []
    for i, j in _interleave(dels, adds, [(p, ins[q]) for p, q in pairs]):
        if i is None and j is not None:
            if j in moves:
                ops.append({"op": "moved", "old": moves[j], "new": j, "text": new[j]})
            else:
                ops.append({"op": "added", "old": None, "new": j, "text": new[j]})
        elif i is not None and j is None:
            ops.append({"op": "removed", "old": i, "new": None, "text": old[i]})
        elif i is not None and j is not None:
            ops.append(_pair_op(i, j, old[i], new[j]))
    return ops


def _pair_op(i: int, j: int, old_text: str, new_text: str) -> dict:
    """Two versions of one block: equal, or modified with its word-level diff."""
    if old_text == new_text:
        return {"op": "equal", "old": i, "new": j, "text": old_text}
    segments = _refine(old_text, new_text)
    return {
        "op": "modified",
        "old": i,
        "new": j,
        "old_text": old_text,
        "new_text": new_text,
        "words": [[op, text] for op, text in segments],
        # Only spacing changed (no-break spaces, indentation): reports may fold it like "equal".
        "whitespace_only": all(op == 0 or text.isspace() for op, text in segments),
    }


def diff_texts(old: str, new: str) -> dict:
    """Diff two versions of a normalised policy text; see the module docstring for the format."""
    old_blocks, new_blocks = _split_blocks(old), _split_blocks(new)
    # Aligned on whitespace-normalised keys: a block whose spacing alone changed stays in place
    # (as a whitespace-only "modified") instead of breaking the alignment around it.
    runs = _align(list(map(_block_key, old_blocks)), list(map(_block_key, new_blocks)))
    moves = _find_moves(old_blocks, new_blocks, runs)
    ops: list[dict] = []
    for run in runs:
        if run.equal:
            ops.extend(
                _pair_op(i, j, old_blocks[i], new_blocks[j])
                for i, j in zip(run.old, run.new, strict=True)
            )
        else:
            ops.extend(_gap_ops(old_blocks, new_blocks, run, moves))
    diff: dict[str, Any] = {"format": FORMAT, "ops": ops}
    diff["summary"] = summarize(diff)
    return diff


# --- Reading a diff back -----------------------------------------------------------------------


def summarize(diff: dict) -> dict:
    """Counts for reports and alerts, computed from the ops alone (works on a stored diff).

    Words are runs of letters/digits/underscores. share_changed = (words added + removed) / (words
    in old + new): 0 for identical texts, 1 when nothing is shared. Moved blocks keep their words,
    so they are counted apart (words_moved) and not in share_changed. Whitespace-only
    modifications count as blocks_reformatted, not blocks_modified, and alone do not make
    has_changes true.
    """
    counts = dict.fromkeys(("equal", "added", "removed", "modified", "reformatted", "moved"), 0)
    texts: dict[str, list[str]] = {side: [] for side in ("old", "new", "added", "removed", "moved")}
    for op in diff["ops"]:
        kind = op["op"]
        counts["reformatted" if op.get("whitespace_only") else kind] += 1
        pieces = op["words"] if kind == "modified" else [[_SIGN.get(kind, 0), op["text"]]]
        for sign, text in pieces:
            if sign <= 0:
                texts["old"].append(text)
            if sign >= 0:
                texts["new"].append(text)
            if sign:
                texts["added" if sign > 0 else "removed"].append(text)
        if kind == "moved":
            texts["moved"].append(op["text"])
    # One regex pass per list: joined with a separator, pieces count as they would one by one.
    words = {side: len(_WORD_RE.findall("\n".join(parts))) for side, parts in texts.items()}
    total = words["old"] + words["new"]
    changed = words["added"] + words["removed"]
    return {
        "has_changes": any(counts[kind] for kind in ("added", "removed", "modified", "moved")),
        "blocks_unchanged": counts["equal"],
        "blocks_added": counts["added"],
        "blocks_removed": counts["removed"],
        "blocks_modified": counts["modified"],
        "blocks_moved": counts["moved"],
        "blocks_reformatted": counts["reformatted"],
        "words_added": words["added"],
        "words_removed": words["removed"],
        "words_moved": words["moved"],
        "words_old": words["old"],
        "words_new": words["new"],
        "share_changed": round(changed / total, 4) if total else 0.0,
    }


def reconstruct(diff: dict) -> tuple[str, str]:
    """The old and new texts, rebuilt from the ops alone."""
    old: dict[int, str] = {}
    new: dict[int, str] = {}
    for op in diff["ops"]:
        if op["op"] == "modified":
            old[op["old"]], new[op["new"]] = op["old_text"], op["new_text"]
            continue
        if op["old"] is not None:
            old[op["old"]] = op["text"]
        if op["new"] is not None:
            new[op["new"]] = op["text"]
    return "\n".join(old[i] for i in sorted(old)), "\n".join(new[j] for j in sorted(new))
