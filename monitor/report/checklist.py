"""Reviewer checklist answers for the report, cached so a site build stays fast.

`monitor.flag.checklist(text)` flags every clause of a text, which takes 0.2 s for a short policy
and several seconds for a long privacy policy. The report needs the answers of every version (to
date when each answer last changed), so results are kept in `reports/.cache/checklist-<fp>/`:

- `checklists/<sha256>.json`: the full checklist (answers and evidence) of a version that was
  some document's current text;
- `answers.json`: category -> answer for every version text seen, one file for quick loading;
- `clauses/<platform>.<document>.json`: the flags of each clause (by its text and the
  neighbouring clauses the model reads as context: `monitor.flag.input_key`) seen in a
  document, so a new version costs only the clauses it changed: a typical nightly change flags a
  handful of clauses instead of hundreds.

`<fp>` fingerprints the flagger's code and model, so any change to them starts a fresh cache
instead of serving stale answers.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import monitor.categories
from monitor.categories import CATEGORIES
from monitor.report.write import write_atomic

# The flagger (and numpy, its models) is imported where a clause is flagged, not with the report:
# a night on which nothing changed renders its pages from cached answers and never needs it.
if TYPE_CHECKING:
    from monitor.flag import Clause, Flag

CACHE_FORMAT = 3  # bump when the cached structures change
PARALLEL_MIN_VERSIONS = 40  # fewer missing versions are flagged in-process, without workers
Answers = dict[str, str]  # category id -> "yes" / "no" / "unclear"
Checklist = list[dict[str, Any]]


@lru_cache(maxsize=1)
def flagger_fingerprint() -> str:
    """Hash of everything the flags depend on: flag.py, categories.py and the shipped model."""
    digest = hashlib.sha256(f"format {CACHE_FORMAT}".encode())
    flag_py = Path(monitor.categories.__file__).with_name("flag.py")  # without importing it
    sources = [flag_py, Path(monitor.categories.__file__)]
    data = flag_py.parent / "data"
    for path in [*sources, *sorted(data.glob("*"))]:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def aggregate(flagged: Iterable[tuple[Clause, list[Flag]]]) -> Checklist:
    """The checklist from clauses already flagged (cached per clause), by the flagger's own rule."""
    from monitor.flag import checklist_from_flags

    return checklist_from_flags(flagged)


FlagsByKey = dict[str, list[dict[str, Any]]]


class ClauseMemo:
    """Flags per clause of one document, loaded from and saved to one JSON file.

    `shared` is a process-wide memo of the same keys across documents: a key is everything a
    clause's flags depend on (`monitor.flag.input_key`), so flags found for it in another
    document are the flags flagging it here would give. Platforms repeat boilerplate across
    their documents, and a first build over many documents flags each shared clause once
    instead of once per document.
    """

    def __init__(self, path: Path, shared: FlagsByKey | None = None):
        self.path = path
        self.flags: FlagsByKey = _read_json(path, {})
        self.shared: FlagsByKey = shared if shared is not None else {}
        self.dirty = False

    def flagged(self, text: str) -> list[tuple[Clause, list[Flag]]]:
        """The flags of every clause of `text`; only clauses (with their context) not seen in
        an earlier version of the document are flagged, in one batch."""
        from monitor.flag import Flag, clause_inputs, flag_inputs, input_key, split_clauses

        clauses = split_clauses(text)
        items = clause_inputs(clauses)
        # The flagger's version is in the cache directory's name, so a key is all flags depend on.
        keys = [input_key(item) for item in items]
        todo = []
        for k in dict.fromkeys(keys):
            if k in self.flags:
                continue
            if k in self.shared:  # flagged in another document of this build
                self.flags[k] = self.shared[k]
                self.dirty = True
            else:
                todo.append(k)
        if todo:
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            for k, flags in zip(todo, flag_inputs([items[first[k]] for k in todo]), strict=True):
                self.flags[k] = self.shared[k] = [asdict(f) for f in flags]
            self.dirty = True
        return [(c, [Flag(**f) for f in self.flags[k]]) for c, k in zip(clauses, keys, strict=True)]

    def save(self) -> None:
        if self.dirty:
            write_atomic(self.path, json.dumps(self.flags, separators=(",", ":")).encode())
            self.dirty = False


class ChecklistCache:
    """Checklists and answers per version text (by sha256), computed at most once."""

    def __init__(self, cache_root: Path):
        self.dir = cache_root / f"checklist-{flagger_fingerprint()}"
        self.answers: dict[str, Answers] = _read_json(self.dir / "answers.json", {})
        self._answers_dirty = False
        self._memos: dict[str, ClauseMemo] = {}
        self._shared: FlagsByKey = {}  # clause flags across this build's documents
        self._full: dict[str, Checklist] = {}
        # document -> (sha, checklist) of the version `answers_of` flagged last: the current
        # version is usually the last of a timeline, and `checklist_of` then needs the same
        # checklist (splitting and keying a long text costs more than flagging its new clauses).
        self._recent: dict[str, tuple[str, Checklist]] = {}

    def answers_of(self, document_key: str, sha: str, text: Callable[[], str]) -> Answers:
        """The answers for one version; `text` is only called when they are not cached yet.

        Only the answers are kept: past versions need them for dating, not their evidence.
        """
        if sha not in self.answers:
            checklist = aggregate(self._memo(document_key).flagged(text()))
            self._remember(sha, checklist)
            self._recent[document_key] = (sha, checklist)
        return self.answers[sha]

    def checklist_of(self, document_key: str, sha: str, text: Callable[[], str]) -> Checklist:
        """The full checklist (answers with quoted evidence) of one version."""
        if sha in self._full:
            return self._full[sha]
        path = self.dir / "checklists" / f"{sha}.json"
        checklist: Checklist | None = _read_json(path, None)
        if checklist is None:
            recent = self._recent.get(document_key)
            if recent is not None and recent[0] == sha:
                checklist = recent[1]
            else:
                checklist = aggregate(self._memo(document_key).flagged(text()))
            _write_checklist(self.dir, sha, checklist)
        self._full[sha] = checklist
        if sha not in self.answers:
            self._remember(sha, checklist)
        return checklist

    def _remember(self, sha: str, checklist: Checklist) -> None:
        self.answers[sha] = {item["category"]: item["answer"] for item in checklist}
        self._answers_dirty = True

    def _memo(self, document_key: str) -> ClauseMemo:
        if document_key not in self._memos:
            self._memos[document_key] = ClauseMemo(_memo_path(self.dir, document_key), self._shared)
        return self._memos[document_key]

    @contextmanager
    def filling(
        self,
        database: Path,
        versions: dict[str, list[tuple[str, int]]],
        workers: int,
        current: dict[str, str] | None = None,
    ) -> Iterator[None]:
        """Flag the versions whose answers are missing in worker processes, one document per
        worker, while the caller's block runs; when the block ends, the answers are cached.

        `versions` is document key -> [(sha256, version id)]; `current` document key -> sha256
        of its current version, whose full checklist (`checklist_of`) the worker writes too, so
        the caller does not split that text again. For full builds: a first build over
        a long history (or one after the flagger changed) has every version to flag, the work
        splits cleanly by document, and the block can render the pages that need no checklist.
        A few missing versions are left to `answers_of`: starting workers would cost more. The
        block must not ask for the answers of these documents.

        Workers are started with "spawn" (a forked child would inherit the caller's threads and
        database connections), which re-imports the caller's main script: only call this with
        workers > 1 from a program whose main module is guarded by `if __name__ == "__main__"`.
        """
        jobs = self._missing(versions)
        workers = min(workers, len(jobs))
        if workers < 2 or sum(len(items) for _, items in jobs) < PARALLEL_MIN_VERSIONS:
            yield
            return
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = [
                pool.submit(_answers_job, self.dir, database, key, items, (current or {}).get(key))
                for key, items in jobs
            ]
            yield
            for future in futures:
                self.answers.update(future.result())
                self._answers_dirty = True

    def _missing(
        self, versions: dict[str, list[tuple[str, int]]]
    ) -> list[tuple[str, list[tuple[str, int]]]]:
        """(document, versions without cached answers), the longest lists first."""
        jobs = []
        for key, items in versions.items():
            missing = sorted({(sha, vid) for sha, vid in items if sha not in self.answers})
            if missing and key not in self._memos:  # a memo loaded here would be overwritten
                jobs.append((key, missing))
        return sorted(jobs, key=lambda job: -len(job[1]))

    def save(self) -> None:
        for memo in self._memos.values():
            memo.save()
        if self._answers_dirty:
            data = json.dumps(self.answers, separators=(",", ":")).encode()
            write_atomic(self.dir / "answers.json", data)
            self._answers_dirty = False


def _memo_path(cache_dir: Path, document_key: str) -> Path:
    return cache_dir / "clauses" / (document_key.replace("/", ".") + ".json")


# A worker process's clause flags across the documents it is given (see ClauseMemo.shared).
_WORKER_SHARED: dict[Path, FlagsByKey] = {}


def _write_checklist(cache_dir: Path, sha: str, checklist: Checklist) -> None:
    path = cache_dir / "checklists" / f"{sha}.json"
    write_atomic(path, json.dumps(checklist, ensure_ascii=False).encode("utf-8"))


def _answers_job(
    cache_dir: Path,
    database: Path,
    document_key: str,
    items: list[tuple[str, int]],
    current: str | None = None,
) -> dict[str, Answers]:
    """Worker: the answers of one document's versions (reads the database read-only), and the
    full checklist of its `current` version when that is one of them."""
    memo = ClauseMemo(_memo_path(cache_dir, document_key), _WORKER_SHARED.setdefault(cache_dir, {}))
    connection = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
    found: dict[str, Answers] = {}
    try:
        for sha, version_id in items:
            row = connection.execute("select text from versions where id = ?", [version_id])
            text = row.fetchone()[0]
            checklist = aggregate(memo.flagged(text))
            found[sha] = {item["category"]: item["answer"] for item in checklist}
            if sha == current:
                _write_checklist(cache_dir, sha, checklist)
    finally:
        connection.close()
    memo.save()
    return found


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return default  # a missing or damaged cache file is recomputed, never an error


# --- Answers over time -------------------------------------------------------------------------


def combine(answers: Iterable[str]) -> str:
    """A platform's answer from its documents': any "yes" wins, then any "no", else unclear."""
    found = set(answers)
    return "yes" if "yes" in found else "no" if "no" in found else "unclear"


def answer_since(timeline: list[tuple[str, Answers]], category: str) -> str | None:
    """When the current answer began: the start of the last stretch of states sharing it.

    `timeline` is (time the state began, answers), oldest first.
    """
    if not timeline:
        return None
    current = timeline[-1][1].get(category)
    since = None
    for began, answers in reversed(timeline):
        if answers.get(category) != current:
            break
        since = began
    return since


def merge_timelines(timelines: dict[str, list[tuple[str, Answers]]]) -> list[tuple[str, Answers]]:
    """Platform states over time from its documents' states: each document event starts a new
    state whose answers combine every document's answers at that moment.

    Counts of "yes" and "no" per category are kept as events replace a document's answers, so
    each event costs the categories, not the platform's documents times the categories (a
    platform of 1,000 documents took 6 s). The result is `combine` of the current answers."""
    events = sorted(
        (began, key, answers) for key, states in timelines.items() for began, answers in states
    )
    current: dict[str, Answers] = {}
    counts = {cat: {"yes": 0, "no": 0} for cat in CATEGORIES}
    merged: list[tuple[str, Answers]] = []
    for began, key, answers in events:
        for cat in CATEGORIES:
            if key in current and (old := current[key].get(cat, "unclear")) in ("yes", "no"):
                counts[cat][old] -= 1
            if (new := answers.get(cat, "unclear")) in ("yes", "no"):
                counts[cat][new] += 1
        current[key] = answers
        combined = {
            cat: "yes" if n["yes"] else "no" if n["no"] else "unclear" for cat, n in counts.items()
        }
        merged.append((began, combined))
    return merged
