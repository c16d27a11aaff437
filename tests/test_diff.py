"""Tests of the diff engine on real successive policy versions (tests/fixtures/versions)."""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import monitor.diff as diff_module
from monitor.diff import diff_texts, reconstruct, summarize

VERSIONS = Path(__file__).parent / "fixtures" / "versions"
PAIRS = [
    ("youtube/terms-of-service", "2021-05-18", "2023-04-08"),
    ("linkedin/privacy-policy", "2025-04-01", "2026-02-20"),
    ("instagram/privacy-policy", "2025-01-18", "2025-11-14"),
    ("tiktok/terms-of-service", "2021-07-15", "2023-01-19"),
]
WORD = re.compile(r"\w+")


@cache
def raw(document: str, date: str) -> str:
    return gzip.decompress((VERSIONS / document / f"{date}.md.gz").read_bytes()).decode("utf-8")


def normalised(document: str, date: str) -> str:
    """The engine's input: one block per line (Open Terms Archive puts blank lines between)."""
    return "\n".join(line for line in raw(document, date).split("\n") if line.strip())


def changed(diff: dict) -> list[dict]:
    return [op for op in diff["ops"] if op["op"] != "equal"]


def lcs_length(a: list[str], b: list[str]) -> int:
    """Exact LCS length, bit-parallel (Hyyro 2004): the reference for a minimal edit."""
    masks: dict[str, int] = {}
    for i, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << i)
    ones = v = (1 << len(a)) - 1
    for token in b:
        if m := masks.get(token):
            u = v & m
            v = ((v + u) | (v - u)) & ones
    return len(a) - v.bit_count()


def reword_words(words: list[str], vocabulary: list[str], rng: random.Random) -> list[str]:
    """Word-level noise: a quarter of the words replaced, dropped or followed by a new one."""
    out: list[str] = []
    for word in words:
        roll = rng.random()
        if roll < 0.12:
            out.append(rng.choice(vocabulary))
        elif roll < 0.18:
            continue
        elif roll < 0.25:
            out.extend([word, rng.choice(vocabulary)])
        else:
            out.append(word)
    return out


def heavy_rewrite(text: str, seed: int = 7) -> tuple[str, int]:
    """Every third paragraph (of 5+ words) reworded, about a quarter of its words replaced,
    dropped or added, with words of the document itself. Returns the text and how many
    paragraphs were rewritten."""
    rng = random.Random(seed)
    vocabulary = sorted(set(WORD.findall(text)))
    blocks = text.split("\n")
    rewritten = 0
    for k, block in enumerate(blocks):
        if k % 3 != 1 or len(block.split()) < 5:
            continue
        blocks[k] = " ".join(reword_words(block.split(" "), vocabulary, rng))
        rewritten += blocks[k] != block
    return "\n".join(blocks), rewritten


def assert_consistent(old: str, new: str, diff: dict) -> None:
    """The strong invariant: the ops alone rebuild both texts, in a readable order."""
    assert reconstruct(diff) == (old, new)
    ops = diff["ops"]
    n_old = len(old.split("\n")) if old else 0
    n_new = len(new.split("\n")) if new else 0
    assert sorted(op["old"] for op in ops if op["old"] is not None) == list(range(n_old))
    assert sorted(op["new"] for op in ops if op["new"] is not None) == list(range(n_new))
    # Reading order: the new text's order, removed blocks where they stood in the old text.
    news = [op["new"] for op in ops if op["new"] is not None]
    olds = [op["old"] for op in ops if op["old"] is not None and op["op"] != "moved"]
    assert news == sorted(news) and olds == sorted(olds)
    for op in ops:
        if op["op"] == "modified":
            words = op["words"]
            assert "".join(text for sign, text in words if sign <= 0) == op["old_text"]
            assert "".join(text for sign, text in words if sign >= 0) == op["new_text"]
            assert all(sign in (-1, 0, 1) and text for sign, text in words)
            assert_whole_words(words)
        elif op["op"] == "moved":
            assert op["old"] is not None and op["new"] is not None
    assert json.loads(json.dumps(diff)) == diff  # plain data, stored as JSON as is
    assert summarize(diff) == diff["summary"]


def assert_whole_words(words: list[list]) -> None:
    """No highlighted stretch starts or ends inside a word, on either side."""
    for side in (-1, 1):
        texts = [text for sign, text in words if sign != side]
        for left, right in zip(texts, texts[1:], strict=False):
            assert not (re.match(r"\w", left[-1]) and re.match(r"\w", right[0])), (left, right)


# --- Real versions -------------------------------------------------------------------------


def test_known_sentence_change_is_modified_with_its_words_highlighted() -> None:
    document, before, after = PAIRS[0]
    diff = diff_texts(normalised(document, before), normalised(document, after))
    [op] = [op for op in changed(diff) if "years old" in op.get("old_text", "")]
    assert op["op"] == "modified"
    assert "at least\xa015\xa0years old" in op["old_text"]
    assert "at least 13 years old" in op["new_text"]
    deleted = [text.strip() for sign, text in op["words"] if sign == -1]
    inserted = [text.strip() for sign, text in op["words"] if sign == 1]
    assert "15" in deleted and "13" in inserted
    # Only the age changed (and the no-break spaces around it): the rest of the sentence is equal.
    assert [text for text in deleted + inserted if text] == ["15", "13"]
    unchanged = "".join(text for sign, text in op["words"] if sign == 0)
    assert unchanged.startswith("You may use the Service if you are")


def test_inserted_qualifier_is_the_only_highlight() -> None:
    document, before, after = PAIRS[1]
    diff = diff_texts(normalised(document, before), normalised(document, after))
    [op] = [op for op in changed(diff) if "third-party advertisers" in op.get("old_text", "")]
    assert op["op"] == "modified"
    assert [[sign, text] for sign, text in op["words"] if sign != 0] == [[1, "non-Affiliated "]]


def test_date_line_is_modified_not_removed_and_added() -> None:
    document, before, after = PAIRS[1]
    diff = diff_texts(normalised(document, before), normalised(document, after))
    [op] = [op for op in changed(diff) if "Effective" in op.get("old_text", op.get("text", ""))]
    assert op["op"] == "modified"
    edits = [text for sign, text in op["words"] if sign != 0]
    assert edits == ["September 18", "November 3", "2024", "2025"]


def test_whitespace_only_changes_are_reformatted_not_modified() -> None:
    document, before, after = PAIRS[1]
    diff = diff_texts(normalised(document, before), normalised(document, after))
    reformatted = [op for op in diff["ops"] if op.get("whitespace_only")]
    assert reformatted and diff["summary"]["blocks_reformatted"] == len(reformatted)
    for op in reformatted:
        assert op["old_text"].split() == op["new_text"].split()
    summary = diff_texts("We\xa0collect  data.", "We collect data.")["summary"]
    assert summary["blocks_reformatted"] == 1 and not summary["has_changes"]


def test_identical_texts_have_no_changes() -> None:
    text = normalised(*PAIRS[2][:2])
    diff = diff_texts(text, text)
    assert all(op["op"] == "equal" for op in diff["ops"])
    assert len(diff["ops"]) == len(text.split("\n"))
    summary = diff["summary"]
    assert not summary["has_changes"] and summary["share_changed"] == 0.0
    assert summary["words_added"] == summary["words_removed"] == 0
    assert_consistent(text, text, diff)


def test_moved_paragraph_is_moved_with_positions() -> None:
    blocks = normalised(*PAIRS[0][:2]).split("\n")
    source = next(k for k, block in enumerate(blocks) if len(block.split()) > 30)
    moved = blocks.pop(source)
    blocks.insert(len(blocks) - 5, moved)
    old, new = normalised(*PAIRS[0][:2]), "\n".join(blocks)
    diff = diff_texts(old, new)
    assert changed(diff) == [{"op": "moved", "old": source, "new": len(blocks) - 6, "text": moved}]
    summary = diff["summary"]
    assert summary["blocks_moved"] == 1 and summary["words_moved"] == len(WORD.findall(moved))
    assert summary["share_changed"] == 0.0  # a move changes no wording
    assert_consistent(old, new, diff)


@cache
def rewrite_case() -> tuple[str, str, int, int, int]:
    """A ~120 KB policy, a third of its paragraphs heavily reworded; how many were; the exact
    minimal edit (words); and the reference edit: one word-level diff_main with no timeout over
    the whole texts (no block pairing, no anchors), then the same diff_cleanupSemantic."""
    old = normalised("instagram/privacy-policy", "2025-11-14")
    new, rewritten = heavy_rewrite(old)
    a, b = WORD.findall(old), WORD.findall(new)
    minimal = len(a) + len(b) - 2 * lcs_length(a, b)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(diff_module, "_DIRECT_DIFF_MAX_TOKENS", sys.maxsize)
        reference = edit_size(diff_texts(old.replace("\n", " "), new.replace("\n", " ")))
    return old, new, rewritten, minimal, reference


def edit_size(diff: dict) -> int:
    return diff["summary"]["words_added"] + diff["summary"]["words_removed"]


def test_heavy_rewrite_of_a_100_kb_policy_is_not_degenerate() -> None:
    old, new, rewritten, minimal, reference = rewrite_case()
    assert len(old.encode()) > 100_000
    diff = diff_texts(old, new)
    assert_consistent(old, new, diff)
    summary, blocks = diff["summary"], len(old.split("\n"))
    assert summary["blocks_unchanged"] >= 0.6 * blocks
    assert summary["blocks_modified"] >= 0.95 * rewritten
    assert summary["words_removed"] < 0.2 * summary["words_old"]
    assert summary["words_added"] < 0.2 * summary["words_new"]
    # Block pairing loses (almost) nothing against the no-shortcut reference. Both are above the
    # exact minimum by what diff_cleanupSemantic gives up for readability (isolated equal words).
    assert minimal <= edit_size(diff) <= 1.1 * reference
    assert reference <= 1.2 * minimal


def test_whole_text_on_one_line_still_gives_word_level_results() -> None:
    text, rewritten, _, minimal, reference = rewrite_case()
    old, new = text.replace("\n", " "), rewritten.replace("\n", " ")
    diff = diff_texts(old, new)
    assert_consistent(old, new, diff)
    [op] = diff["ops"]
    assert op["op"] == "modified"
    equal_runs = [text for sign, text in op["words"] if sign == 0]
    assert len(equal_runs) > 300  # many small edits between unchanged stretches
    summary = diff["summary"]
    assert summary["words_removed"] < 0.2 * summary["words_old"]
    assert minimal <= edit_size(diff) <= 1.1 * reference
    assert edit_size(diff) <= 1.02 * edit_size(diff_texts(text, rewritten))


def test_summary_counts_on_a_hand_made_example() -> None:
    title = "# Privacy Policy"
    collect = "We collect your data when you use the service."
    delete = "You can delete your account at any time."
    cookies = "We use cookies on our sites."
    share = "We share it with partners."
    keep = "We keep data for two years."
    contact = "Contact us by email."
    old = "\n".join([title, collect, delete, cookies, share, keep, contact])
    new = "\n".join(
        [
            title,
            "We collect your personal data when you use the service.",
            cookies,
            keep,
            delete,
            "We never sell your data.",
            contact,
        ]
    )
    diff = diff_texts(old, new)
    assert [(op["op"], op["old"], op["new"]) for op in diff["ops"]] == [
        ("equal", 0, 0),
        ("modified", 1, 1),
        ("equal", 3, 2),
        ("removed", 4, None),
        ("equal", 5, 3),
        ("moved", 2, 4),
        ("added", None, 5),
        ("equal", 6, 6),
    ]
    assert diff["ops"][1]["words"] == [
        [0, "We collect your "],
        [1, "personal "],
        [0, "data when you use the service."],
    ]
    assert diff["summary"] == {
        "has_changes": True,
        "blocks_unchanged": 4,
        "blocks_added": 1,
        "blocks_removed": 1,
        "blocks_modified": 1,
        "blocks_moved": 1,
        "blocks_reformatted": 0,
        "words_added": 1 + 5,  # "personal", "We never sell your data"
        "words_removed": 5,  # "We share it with partners"
        "words_moved": 8,
        "words_old": 40,
        "words_new": 41,
        "share_changed": round(11 / 81, 4),
    }
    assert_consistent(old, new, diff)


def test_sentence_split_in_two_still_diffs_by_words() -> None:
    old = "We may share your data with partners and we may keep it for as long as we need it."
    new = "We may share your data with partners. We may keep it for as long as we need it."
    [op] = diff_texts(old, new)["ops"]
    assert [[sign, text] for sign, text in op["words"] if sign != 0] == [
        [-1, " and we"],
        [1, ". We"],
    ]


def test_unrelated_paragraphs_are_removed_and_added_not_modified() -> None:
    diff = diff_texts(
        "# Terms\nWe collect your location to show nearby events.\nEnd.",
        "# Terms\nDisputes are settled by the courts of Ireland.\nEnd.",
    )
    assert [op["op"] for op in changed(diff)] == ["removed", "added"]


# --- Invariants on every fixture -------------------------------------------------------------


def fixture_pairs() -> list[Any]:
    cases = []
    for document, before, after in PAIRS:
        for text in (raw, normalised):
            old, new = text(document, before), text(document, after)
            name = f"{document}-{text.__name__}"
            cases += [
                pytest.param(old, new, id=f"{name}-forward"),
                pytest.param(new, old, id=f"{name}-backward"),
                pytest.param(old.replace("\n", " "), new.replace("\n", " "), id=f"{name}-one-line"),
            ]
    return cases


@pytest.mark.parametrize(("old", "new"), fixture_pairs())
def test_ops_reconstruct_both_texts_exactly(old: str, new: str) -> None:
    diff = diff_texts(old, new)
    assert_consistent(old, new, diff)
    assert diff == diff_texts(old, new)  # deterministic


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param("", "", id="empty"),
        pytest.param("", "One block.\nTwo blocks.", id="from-empty"),
        pytest.param("One block.\nTwo blocks.", "", id="to-empty"),
        pytest.param("Same text.\n", "Same text.", id="final-newline"),
        pytest.param("\n\n", "\n", id="blank-lines"),
        pytest.param("A line\r\nwith CRLF\r\n", "A line\r\nwith LF\n", id="crlf"),
        pytest.param("x " * 5000, "x " * 4000 + "y " * 1000, id="few-distinct-words"),
        pytest.param("no stop here " * 800, "no full stop here " * 800, id="no-punctuation"),
        pytest.param("a b. " * 3000, "b a. " * 3000, id="no-unique-word"),
    ],
)
def test_edge_cases_reconstruct(old: str, new: str) -> None:
    assert_consistent(old, new, diff_texts(old, new))


def test_empty_to_text_is_all_added() -> None:
    diff = diff_texts("", "One block.\nTwo blocks.")
    assert [op["op"] for op in diff["ops"]] == ["added", "added"]
    assert diff["summary"]["share_changed"] == 1.0


def test_same_diff_in_every_process() -> None:
    """Stored diffs are compared across runs: no dependence on str hash randomisation."""
    script = (
        "import json, sys; from monitor.diff import diff_texts; "
        "old, new = json.load(sys.stdin); print(json.dumps(diff_texts(old, new)))"
    )
    document, before, after = PAIRS[0]
    pair = json.dumps([normalised(document, before), normalised(document, after)])
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            input=pair,
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parents[1],
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    assert json.loads(outputs.pop()) == diff_texts(*json.loads(pair))
