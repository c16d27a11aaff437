"""Score the flagger against labelled clauses as it is judged (`tos-monitor eval-flags`).

The figures are those of the project's two scorers, `score_flags.py` (clause level) and
`score_checklist.py` (document level, as a reviewer reads the checklist), whose rules are ported
here unchanged so that `eval-flags` prints the same numbers on the same rows
(tests/test_evaluate.py checks this against copies of the scorers in tests/fixtures/scorers/):

Clause level (score_flags.py), per family:
- scored categories are fixed per family: "full" ones (precision, recall, F1; their mean is the
  macro-F1) and "recall-only" ones (no true negatives anywhere in the labels);
- a flag counts as a false positive only on a `complete: true` row, for a "full" category, and
  not when the row is within `WINDOW` positions of a CLAUDETTE row of the same document tagged
  with that category (CLAUDETTE tags only the key sentence of a clause);
- `complete: false` rows (ToS;DR quotes) count only for the recall of the labels they carry.

Document level (score_checklist.py): only complete rows, grouped by (source, doc); a document
"has" a category when any of its rows is labelled with it, the checklist "says yes" when any of
its rows is flagged with it; accuracy and recall per "full" category, mean per family.

The labels are split once, by document, into a tuning part and a test part (`part_of`): every
choice of the flagger is made on the tuning part; the test part is scored once, at the end.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Row = dict[str, Any]
Part = Literal["test", "tuning", "all"]
PARTS: tuple[str, ...] = ("test", "tuning", "all")
FAMILY_FILES = {"privacy": "privacy.jsonl", "terms": "terms.jsonl"}

# score_flags.py, verbatim
FAMILIES: dict[str, dict[str, Any]] = {
    "privacy": {
        "full": ["ad-tracking", "disclosure", "usage-recording", "opt-out", "data-location"],
        "recall_only": ["data-sale"],
        "macro_bar": 0.80,
        "precision_bar": {},
    },
    "terms": {
        "full": ["terms-changes", "governing-law", "arbitration", "liability-limit", "termination"],
        "recall_only": ["indemnification", "content-license", "monitoring-duty"],
        "macro_bar": 0.80,
        "precision_bar": {"governing-law": 0.8, "arbitration": 0.8, "terms-changes": 0.8},
    },
}
RECALL_ONLY_BAR = 0.70
WINDOW = 3
# score_checklist.py, verbatim
DEAL_BREAKERS = frozenset({"terms-changes", "governing-law", "arbitration"})
MEAN_BAR, CATEGORY_BAR, RECALL_BAR = 0.97, 0.93, 0.90

TEST_MODULUS = 4  # a quarter of the documents are the test part


def part_of(source: str, doc: str) -> Literal["test", "tuning"]:
    """The fixed split of the labels, by document: never changes, never depends on the rows."""
    h = int(hashlib.sha256(f"{source}|{doc}".encode()).hexdigest(), 16)
    return "test" if h % TEST_MODULUS == 0 else "tuning"


def select_part(rows: Sequence[Row], part: str) -> list[Row]:
    if part == "all":
        return list(rows)
    if part not in PARTS:
        raise ValueError(f"--part {part!r}: expected one of {', '.join(PARTS)}")
    return [r for r in rows if part_of(str(r["source"]), str(r["doc"])) == part]


def read_jsonl(path: str | Path) -> list[Row]:
    rows: list[Row] = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise ValueError(f'{path}:{n}: expected an object with a "text"')
            for key in ("labels", "source", "doc"):
                if key not in row:
                    raise ValueError(f"{path}:{n}: labelled row without {key!r}")
            rows.append(row)
    return rows


def load_labels(labels_dir: str | Path, part: str = "all") -> dict[str, list[Row]]:
    """family -> rows of that family's labels file in `labels_dir`, restricted to `part`."""
    out = {}
    for family, name in FAMILY_FILES.items():
        path = Path(labels_dir) / name
        if path.exists():
            out[family] = select_part(read_jsonl(path), part)
    if not out:
        raise ValueError(f"{labels_dir}: no {' or '.join(FAMILY_FILES.values())} found")
    return out


# ---------------------------------------------------------------------------------------------
# Clause level (score_flags.py)


@dataclass
class CategoryScore:
    category: str
    recall_only: bool
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def support(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class FlagScore:
    family: str
    scores: dict[str, CategoryScore]
    macro_f1: float
    meets: bool


def near_tagged(gold: Sequence[Row]) -> set[tuple[Any, Any, str]]:
    """(doc, pos, category) near a tagged CLAUDETTE sentence: a flag there is neither way."""
    near: set[tuple[Any, Any, str]] = set()
    for g in gold:
        if g.get("pos") is not None and "CLAUDETTE" in g["source"]:
            for c in g["labels"]:
                for d in range(-WINDOW, WINDOW + 1):
                    near.add((g["doc"], g["pos"] + d, c))
    return near


def score_flags(family: str, gold: Sequence[Row], pred: Sequence[Sequence[str]]) -> FlagScore:
    fam = FAMILIES[family]
    cats = fam["full"] + fam["recall_only"]
    near = near_tagged(gold)
    scores = {c: CategoryScore(c, c in fam["recall_only"]) for c in cats}
    for g, p in zip(gold, pred, strict=True):
        gl, pl = set(g["labels"]), set(p)
        for c in cats:
            s = scores[c]
            if c in gl:
                s.tp += c in pl
                s.fn += c not in pl
            elif (
                g.get("complete")
                and c in fam["full"]
                and c in pl
                and (g["doc"], g.get("pos"), c) not in near
            ):
                s.fp += 1
    ok = True
    f1s = []
    for c in cats:
        s = scores[c]
        if s.recall_only:
            ok &= s.recall >= RECALL_ONLY_BAR
        else:
            f1s.append(s.f1)
            bar = fam["precision_bar"].get(c)
            if bar is not None and s.precision < bar:
                ok = False
    macro = sum(f1s) / len(f1s)
    ok &= macro >= fam["macro_bar"]
    return FlagScore(family, scores, macro, ok)


def format_flag_score(fs: FlagScore) -> str:
    lines = []
    for c, s in fs.scores.items():
        if s.recall_only:
            lines.append(f"  {c:18s} recall-only R={s.recall:.3f} support={s.support}")
        else:
            lines.append(
                f"  {c:18s} P={s.precision:.3f} R={s.recall:.3f} F1={s.f1:.3f} support={s.support}"
            )
    bar = FAMILIES[fs.family]["macro_bar"]
    lines.append(
        f"{fs.family}: macro-F1={fs.macro_f1:.3f} (bar {bar}) {'meets' if fs.meets else 'short'}"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Document level (score_checklist.py)


@dataclass
class DocCategory:
    category: str
    documents: int
    has: int  # documents labelled with the category
    said_yes: int
    wrong_yes: int
    missed: int

    @property
    def accuracy(self) -> float:
        return (self.documents - self.wrong_yes - self.missed) / self.documents

    @property
    def recall(self) -> float:
        return (self.has - self.missed) / self.has if self.has else 1.0


@dataclass
class ChecklistScore:
    family: str
    categories: list[DocCategory] = field(default_factory=list)
    mean_accuracy: float = 0.0
    meets: bool = False


def score_checklist(
    family: str, gold: Sequence[Row], pred: Sequence[Sequence[str]]
) -> ChecklistScore:
    docs: dict[tuple[str, str], tuple[set[str], set[str]]] = defaultdict(lambda: (set(), set()))
    for g, p in zip(gold, pred, strict=True):
        if g.get("complete"):
            d = docs[(g["source"], g["doc"])]
            d[0].update(g["labels"])
            d[1].update(p)
    out = ChecklistScore(family)
    ok = True
    for c in FAMILIES[family]["full"]:
        tp = sum(c in g and c in p for g, p in docs.values())
        fp = sum(c not in g and c in p for g, p in docs.values())
        fn = sum(c in g and c not in p for g, p in docs.values())
        dc = DocCategory(c, len(docs), tp + fn, tp + fp, fp, fn)
        out.categories.append(dc)
        ok &= dc.accuracy >= CATEGORY_BAR and (c not in DEAL_BREAKERS or dc.recall >= RECALL_BAR)
    out.mean_accuracy = sum(dc.accuracy for dc in out.categories) / len(out.categories)
    out.meets = ok and out.mean_accuracy >= MEAN_BAR
    return out


def format_checklist_score(cs: ChecklistScore) -> str:
    lines = [
        f"  {d.category:16s} in {d.has:3d}/{d.documents} documents, said yes for {d.said_yes:3d}: "
        f"accuracy {d.accuracy:.3f}, recall {d.recall:.3f} (wrong yes {d.wrong_yes}, missed "
        f"{d.missed})"
        for d in cs.categories
    ]
    lines.append(
        f"{cs.family} checklist: mean document accuracy={cs.mean_accuracy:.3f} (bar {MEAN_BAR}) "
        f"{'meets' if cs.meets else 'short'}"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Both, for the CLI

Predictor = Callable[[Sequence[Row]], list[list[str]]]


def _default_predict(rows: Sequence[Row]) -> list[list[str]]:
    from monitor.flag import flag_rows  # lazy: loading the model is only needed here

    return flag_rows(rows)


@dataclass
class FamilyResult:
    flags: FlagScore
    checklist: ChecklistScore
    text: str

    @property
    def meets(self) -> bool:
        return self.flags.meets and self.checklist.meets


def evaluate_rows(
    family: str, rows: Sequence[Row], predict: Predictor | None = None
) -> FamilyResult:
    """Both scorers on one family's rows; `text` is what they print, under a header line."""
    if not rows:
        raise ValueError(f"{family}: no rows to score")
    pred = (predict or _default_predict)(rows)
    fs, cs = score_flags(family, rows, pred), score_checklist(family, rows, pred)
    docs = len({(r["source"], r["doc"]) for r in rows})
    text = (
        f"== {family}: {len(rows)} rows, {docs} documents\n"
        f"{format_flag_score(fs)}\n{format_checklist_score(cs)}"
    )
    return FamilyResult(fs, cs, text)


def family_of(path: str | Path) -> str:
    stem = Path(path).stem
    for family in FAMILIES:
        if stem.startswith(family):
            return family
    raise ValueError(f"{path}: cannot tell the family from the name; pass --family")
