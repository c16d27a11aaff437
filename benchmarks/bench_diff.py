"""Benchmark of the diff engine (`monitor/diff.py`).

    python benchmarks/bench_diff.py [--repeat N]

Prints median wall-clock timings (and CPU time, which other jobs on a shared machine disturb less)
of `diff_texts` on:

1. real successive versions: every pair in ../shared/corpus when present, else the test
   fixtures; and a typical nightly change on a ~100 KB policy (target: < 20 ms median);
2. a heavy rewrite of a ~100 KB policy, a third of its paragraphs reworded, with one block per
   line and with the whole text on one line (target: < 1 s, not degenerate, and an edit size
   within 10% of the reference's).

Edit size = words added + words removed. Two yardsticks:

- reference: the same word diff without any shortcut, i.e. one diff_main with no timeout over
  the two whole texts' word tokens (seconds for a 100 KB policy), then the same
  diff_cleanupSemantic. This is the target's "minimal": it measures what block pairing and
  anchoring cost, if anything. (With the default 1 s Diff_Timeout that call gives up instead:
  the "plain diff_main" line shows how few words it still finds equal.)
- exact minimum: |A| + |B| - 2 LCS(A, B) over the word sequences, LCS length by a bit-parallel
  algorithm (Hyyro 2004). difflib is no yardstick: its matching blocks are not an LCS. The engine
  is above it mostly by design: diff_cleanupSemantic gives up isolated equal words ("the", "of")
  between edits so that the diff reads as a human edit; the line "alignment before cleanup" shows
  the alignment itself is within a few percent of the minimum.
"""

from __future__ import annotations

import argparse
import gzip
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diff_match_patch import diff_match_patch  # noqa: E402

import monitor.diff as engine  # noqa: E402
from monitor.diff import diff_texts, reconstruct  # noqa: E402
from tests.test_diff import edit_size, lcs_length, reword_words  # noqa: E402  (shared with the tests)

CORPUS = ROOT.parent / "shared" / "corpus"
FIXTURES = ROOT / "tests" / "fixtures" / "versions"
BIG_VERSION = ("instagram/privacy-policy", "2025-11-14")  # ~120 KB, in the corpus and fixtures
WORD_RE = re.compile(r"\w+")

Documents = dict[str, dict[str, str]]  # "platform/document" -> date -> text


# --- Inputs -----------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """The engine's input, one block per line (Open Terms Archive puts blank lines between)."""
    return "\n".join(line for line in text.split("\n") if line.strip())


def load_documents() -> tuple[Path, Documents]:
    if CORPUS.is_dir():
        source = CORPUS
        files = [f for f in sorted(CORPUS.glob("*/*/*.md")) if f.parent.name in KINDS]
    else:
        source, files = FIXTURES, sorted(FIXTURES.glob("*/*/*.md.gz"))
    documents: Documents = {}
    for path in files:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        key = f"{path.parent.parent.name}/{path.parent.name}"
        date = path.name.split(".")[0]
        documents.setdefault(key, {})[date] = normalise(data.decode("utf-8"))
    return source, documents


KINDS = ("terms-of-service", "privacy-policy")


def reword_phrases(words: list[str], vocabulary: list[str], rng: random.Random) -> list[str]:
    """Phrase-level rewording: phrases of 1-4 words replaced, dropped or inserted."""
    out: list[str] = []
    i = 0
    while i < len(words):
        if rng.random() >= 0.08:
            out.append(words[i])
            i += 1
            continue
        kind = rng.choice(("replace", "delete", "insert"))
        if kind != "insert":
            i += rng.randint(1, 4)
        if kind != "delete":
            out.extend(rng.choice(vocabulary) for _ in range(rng.randint(1, 4)))
    return out


Reworder = Callable[[list[str], list[str], random.Random], list[str]]


def heavy_rewrite(text: str, reword: Reworder, seed: int = 7) -> str:
    """Every third paragraph (of 5+ words) reworded with words of the document itself: the hard
    case, with no new word for the alignment to anchor on."""
    rng = random.Random(seed)
    vocabulary = sorted(set(WORD_RE.findall(text)))
    blocks = text.split("\n")
    for k, block in enumerate(blocks):
        if k % 3 == 1 and len(block.split()) >= 5:
            blocks[k] = " ".join(reword(block.split(" "), vocabulary, rng))
    return "\n".join(blocks)


def nightly_change(text: str) -> str:
    """A typical overnight change: a few clauses edited and one added."""
    blocks = text.split("\n")
    step = max(1, len(blocks) // 6)
    for k in range(step, len(blocks), step):
        blocks[k] = blocks[k].replace(" and ", " and, where permitted by law, ", 1) + " (updated)"
    blocks.insert(len(blocks) // 2, "We may also share information with our new affiliates.")
    return "\n".join(blocks)


# --- Yardsticks ------------------------------------------------------------------------------


def check_lcs() -> None:
    """lcs_length against the textbook dynamic programme, on small random inputs."""
    rng = random.Random(1)
    for _ in range(50):
        a = [rng.choice("abcde") for _ in range(rng.randint(0, 40))]
        b = [rng.choice("abcde") for _ in range(rng.randint(0, 40))]
        row = [0] * (len(b) + 1)
        for x in a:
            diagonal = 0
            for j, y in enumerate(b, 1):
                diagonal, row[j] = row[j], diagonal + 1 if x == y else max(row[j], row[j - 1])
        assert lcs_length(a, b) == row[-1]


def minimal_edit(old: str, new: str) -> int:
    a, b = WORD_RE.findall(old), WORD_RE.findall(new)
    return len(a) + len(b) - 2 * lcs_length(a, b)


@contextmanager
def patched(name: str, value: object, target: object = engine) -> Iterator[None]:
    saved = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, saved)


def reference_edit(old: str, new: str) -> int:
    """No shortcut: one word-level diff_main (no timeout) over the whole texts, same cleanup."""
    with patched("_DIRECT_DIFF_MAX_TOKENS", sys.maxsize):
        return edit_size(diff_texts(old.replace("\n", " "), new.replace("\n", " ")))


def plain_diff_main_equal_share(old: str, new: str) -> float:
    """What the engine avoids: diff_main on all word tokens with its default 1 s timeout."""
    old_tokens, new_tokens = engine._TOKEN_RE.findall(old), engine._TOKEN_RE.findall(new)
    enc_old, enc_new = engine._encode(old_tokens, new_tokens)
    dmp = diff_match_patch()  # Diff_Timeout = 1.0
    equal = sum(len(text) for op, text in dmp.diff_main(enc_old, enc_new, False) if op == 0)
    return equal / max(len(enc_old), len(enc_new))


def alignment_edit(old: str, new: str) -> int:
    """The engine's alignment alone, before diff_cleanupSemantic regroups it for reading."""
    with patched("diff_cleanupSemantic", lambda diffs: None, engine._DMP):
        return edit_size(diff_texts(old, new))


# --- Measuring -----------------------------------------------------------------------------------


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall-clock and CPU milliseconds."""
    wall, cpu = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return statistics.median(wall) * 1000, statistics.median(cpu) * 1000


class DiffMainClock:
    """Time spent inside diff_match_patch.diff_main: what a C++ port could speed up at most."""

    def __init__(self) -> None:
        self.seconds, self.depth = 0.0, 0
        self.original = engine._DMP.diff_main

    def __call__(self, *args: object, **kwargs: object) -> object:
        self.depth += 1
        start = time.perf_counter()
        try:
            return self.original(*args, **kwargs)
        finally:
            self.depth -= 1
            if not self.depth:  # diff_main recurses: count outer calls only
                self.seconds += time.perf_counter() - start


def diff_main_share(old: str, new: str) -> float:
    clock = DiffMainClock()
    with patched("diff_main", clock, engine._DMP):
        start = time.perf_counter()
        diff_texts(old, new)
        total = time.perf_counter() - start
    return clock.seconds / total


def bench_real_pairs(documents: Documents, repeat: int) -> None:
    print("\n## Real successive versions (one block per line)")
    print(f"{'document':30} {'dates':23} {'KB':>7} {'ms':>6} {'cpu':>6}  +add -rem ~mod >mov share")
    walls, cpus = [], []
    for key, versions in documents.items():
        dates = sorted(versions)
        for before, after in zip(dates, dates[1:], strict=False):
            old, new = versions[before], versions[after]
            wall, cpu = timed(partial(diff_texts, old, new), repeat)
            walls.append(wall)
            cpus.append(cpu)
            s = diff_texts(old, new)["summary"]
            size = f"{len(old.encode()) // 1000}/{len(new.encode()) // 1000}"
            print(
                f"{key:30} {before} {after} {size:>7} {wall:6.1f} {cpu:6.1f}  "
                f"+{s['blocks_added']} -{s['blocks_removed']} ~{s['blocks_modified']} "
                f">{s['blocks_moved']} {s['share_changed']:.3f}"
            )
    walls.sort()
    print(
        f"{len(walls)} pairs: median {statistics.median(walls):.1f} ms "
        f"(cpu {statistics.median(cpus):.1f}), 90th percentile {walls[int(len(walls) * 0.9)]:.1f} "
        f"ms, max {walls[-1]:.1f} ms"
    )


def bench_nightly(base: str, repeat: int) -> None:
    new = nightly_change(base)
    wall, cpu = timed(partial(diff_texts, base, new), repeat)
    s = diff_texts(base, new)["summary"]
    print(
        f"\n## Typical nightly change (+{s['blocks_added']} ~{s['blocks_modified']} blocks) on a "
        f"{len(base.encode()) // 1000} KB policy: {wall:.1f} ms median (cpu {cpu:.1f}); target < 20"
    )


def bench_rewrite(label: str, old: str, new: str, reference: int, repeat: int) -> None:
    wall, cpu = timed(partial(diff_texts, old, new), repeat)
    diff = diff_texts(old, new)
    assert reconstruct(diff) == (old, new)
    s = diff["summary"]
    ours, minimal = edit_size(diff), minimal_edit(old, new)
    degenerate = s["words_removed"] == s["words_old"] or s["words_added"] == s["words_new"]
    print(
        f"- {label}: {wall:.1f} ms median (cpu {cpu:.1f}); target < 1000\n"
        f"  blocks: {s['blocks_unchanged']} equal, {s['blocks_modified']} modified, "
        f"{s['blocks_added']} added, {s['blocks_removed']} removed; degenerate: {degenerate}\n"
        f"  edit {ours} words: reference {reference} ({ours / reference - 1:+.1%}, target <= +10%)"
        f", exact minimum {minimal} ({ours / minimal - 1:+.1%}); alignment before cleanup "
        f"{alignment_edit(old, new) / minimal - 1:+.1%} of the minimum\n"
        f"  time inside diff_match_patch.diff_main: {diff_main_share(old, new):.0%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per timing (median)")
    args = parser.parse_args()
    check_lcs()
    source, documents = load_documents()
    print(f"# diff engine benchmark, Python {sys.version.split()[0]}, source: {source}")
    bench_real_pairs(documents, args.repeat)
    base = documents[BIG_VERSION[0]][BIG_VERSION[1]]
    bench_nightly(base, args.repeat)
    for name, reword in (("word-level noise", reword_words), ("phrase rewording", reword_phrases)):
        new = heavy_rewrite(base, reword)
        print(
            f"\n## Heavy rewrite ({name}) of every 3rd paragraph of {'/'.join(BIG_VERSION)} "
            f"({len(base.encode()) // 1000} KB)"
        )
        reference = reference_edit(base, new)
        bench_rewrite("one block per line", base, new, reference, args.repeat)
        one_old, one_new = base.replace("\n", " "), new.replace("\n", " ")
        bench_rewrite("whole text on one line", one_old, one_new, reference, args.repeat)
        share = plain_diff_main_equal_share(one_old, one_new)
        print(f"- plain diff_main on all words, default 1 s timeout: {share:.1%} of tokens equal")


if __name__ == "__main__":
    main()
