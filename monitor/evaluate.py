"""Score the flagger against labelled clauses (`tos-monitor eval-flags FILE.jsonl`).

Input rows: `{"text", "labels": [ids], "source", "doc", "pos", "complete"}` one JSON object a
line. The scoring rules are those of the labelled data's README:

- `complete: false` rows (ToS;DR quotes) only say which categories they show: they count for the
  recall of those categories and are never negatives.
- Known gaps of the source annotations: OPP-115 rows are not negatives for data-sale; CLAUDETTE
  rows are not negatives for indemnification, content-license or monitoring-duty.
- CLAUDETTE tags only the key sentence of a clause, so a flag on an untagged row within
  `NEIGHBOUR_WINDOW` positions (same doc) of a row tagged with the same category is neutral.
- Only categories that occur in the rows' labels are scored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.categories import CATEGORIES

NEIGHBOUR_WINDOW = 3
KNOWN_GAPS: dict[str, frozenset[str]] = {
    # source prefix (case-insensitive) -> categories that source never annotated
    "opp-115": frozenset({"data-sale"}),
    "claudette": frozenset({"indemnification", "content-license", "monitoring-duty"}),
}

Predictor = Callable[[dict[str, Any]], Iterable[str]]


@dataclass
class CategoryScore:
    category: str
    family: str
    tp: int = 0
    fp: int = 0
    fn: int = 0
    neutral: int = 0  # flags that counted neither way (gap, incomplete row, neighbour)

    @property
    def support(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / self.support if self.support else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class EvalReport:
    scores: dict[str, CategoryScore]
    rows: int
    macro_f1: dict[str, float] = field(default_factory=dict)  # family -> macro-F1

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "macro_f1": self.macro_f1,
            "categories": {
                c: {
                    "family": s.family,
                    "precision": s.precision,
                    "recall": s.recall,
                    "f1": s.f1,
                    "support": s.support,
                    "tp": s.tp,
                    "fp": s.fp,
                    "fn": s.fn,
                    "neutral": s.neutral,
                }
                for c, s in self.scores.items()
            },
        }


def _default_predict(row: dict[str, Any]) -> list[str]:
    from monitor.flag import flag_clause  # lazy: loading the model is only needed here

    heading = row.get("heading")
    return [
        f.category for f in flag_clause(row["text"], heading if isinstance(heading, str) else "")
    ]


def _gaps(source: str) -> frozenset[str]:
    src = source.lower()
    return frozenset().union(*(cats for key, cats in KNOWN_GAPS.items() if key in src))


def _tagged_positions(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[int]]:
    """(doc, category) -> positions of rows tagged with it, for the neighbour rule."""
    tagged: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        if isinstance(row.get("pos"), int):
            for cat in row.get("labels", []):
                tagged.setdefault((str(row.get("doc")), cat), []).append(row["pos"])
    return tagged


def is_negative(row: dict[str, Any], cat: str, tagged: dict[tuple[str, str], list[int]]) -> bool:
    """May a flag of `cat` on this (untagged) row count as a false positive?"""
    if not row.get("complete", True) or cat in _gaps(str(row.get("source", ""))):
        return False
    pos = row.get("pos")
    if isinstance(pos, int):
        near = tagged.get((str(row.get("doc")), cat), [])
        if any(abs(pos - p) <= NEIGHBOUR_WINDOW for p in near):
            return False
    return True


def evaluate(rows: Iterable[dict[str, Any]], predict: Predictor | None = None) -> EvalReport:
    """Per-category precision/recall/F1 and per-family macro-F1 of `predict` on labelled rows."""
    rows = list(rows)
    predict = predict or _default_predict
    present = {cat for row in rows for cat in row.get("labels", [])}
    scored = [c for c in CATEGORIES if c in present]  # registry order, known ids only
    scores = {c: CategoryScore(c, CATEGORIES[c].family) for c in scored}
    tagged = _tagged_positions(rows)
    for row in rows:
        gold = set(row.get("labels", []))
        predicted = set(predict(row))
        for cat in scored:
            s = scores[cat]
            if cat in gold:
                if cat in predicted:
                    s.tp += 1
                else:
                    s.fn += 1
            elif cat in predicted:
                if is_negative(row, cat, tagged):
                    s.fp += 1
                else:
                    s.neutral += 1
    report = EvalReport(scores, len(rows))
    for family in ("privacy", "terms"):
        f1s = [s.f1 for s in scores.values() if s.family == family and s.support]
        if f1s:
            report.macro_f1[family] = sum(f1s) / len(f1s)
    return report


def format_report(report: EvalReport) -> str:
    """Plain-text table, one line per category, then macro-F1 per family."""
    lines = [
        f"{report.rows} rows",
        f"{'category':<18} {'family':<8} {'prec':>6} {'recall':>6} {'F1':>6} {'support':>7} "
        f"{'tp':>5} {'fp':>5} {'fn':>5} {'neutral':>7}",
    ]
    for s in report.scores.values():
        lines.append(
            f"{s.category:<18} {s.family:<8} {s.precision:>6.3f} {s.recall:>6.3f} {s.f1:>6.3f} "
            f"{s.support:>7} {s.tp:>5} {s.fp:>5} {s.fn:>5} {s.neutral:>7}"
        )
    for family, value in report.macro_f1.items():
        lines.append(f"macro-F1 {family}: {value:.3f}")
    return "\n".join(lines)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def evaluate_file(path: str | Path) -> str:
    """Evaluate the shipped flagger on a labelled JSONL file; return the formatted report."""
    return format_report(evaluate(read_jsonl(path)))
