"""Train the clause flagger's linear model and measure it by cross-validation over documents.

    python tools/train_flagger.py [--labels DIR] [--out monitor/data/flagger.json.gz]

Reproducible: fixed folds (GroupKFold by "doc", documents sorted), liblinear (deterministic).
Steps:

1. Features are `monitor.flag.features` (the run-time code): word unigrams + bigrams + domain
   pattern hits, TF-IDF weighted and L2-normalised like `monitor.flag.model_scores`.
2. One logistic regression per model category. Training rows per category follow the scoring
   rules (monitor.evaluate.is_negative): incomplete rows only as positives, known annotation gaps
   and untagged neighbours of tagged sentences left out rather than taught as negatives.
3. Nested cross-validation by document: for each of 5 outer folds, the decision threshold of each
   category is picked on out-of-fold scores of an inner 4-fold split of the training documents
   only, then the outer fold is predicted. The printed figures are these outer-fold results,
   scored with `monitor.evaluate.evaluate` per labels file (privacy.jsonl -> privacy family,
   terms.jsonl -> terms family).
4. The shipped model is trained on all rows; its thresholds come from 5-fold out-of-fold scores.

scikit-learn is used here only; the run-time flagger applies the exported weights in pure Python.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor import flag  # noqa: E402
from monitor.categories import CATEGORIES, LABELLED_IDS  # noqa: E402
from monitor.evaluate import _tagged_positions, evaluate, format_report, is_negative  # noqa: E402

MODEL_CATEGORIES = [c for c in LABELLED_IDS if c not in flag.PATTERN_ONLY]
DEAL_BREAKERS = {c for c, cat in CATEGORIES.items() if cat.severity == "deal-breaker"}
MIN_DF = 2
PRUNE = 0.05  # weights below this (on L2-normalised TF-IDF inputs) are dropped: 2.5x fewer lookups
C_REG = 4.0
MIN_PRECISION_DEAL_BREAKER = 0.85  # keep a margin over the 0.80 target when picking thresholds
OUTER_FOLDS, INNER_FOLDS = 5, 4
FAMILY_GAP = True
FAMILY_FILE = {"privacy": "privacy.jsonl", "terms": "terms.jsonl"}
CLASS_WEIGHT: str | None = "balanced"

Row = dict[str, Any]


def load_rows(labels_dir: Path) -> list[Row]:
    rows: list[Row] = []
    for path in sorted(labels_dir.glob("*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    row = json.loads(line)
                    row["_file"] = path.name
                    rows.append(row)
    return rows


class Vectorizer:
    """TF-IDF over binary features, identical to monitor.flag.model_scores at run time."""

    def __init__(self, feats: Sequence[set[str]], min_df: int = MIN_DF) -> None:
        df = Counter(f for fs in feats for f in fs)
        self.vocab = {f: i for i, f in enumerate(sorted(f for f, n in df.items() if n >= min_df))}
        n = len(feats)
        self.idf = np.zeros(len(self.vocab))
        for f, i in self.vocab.items():
            self.idf[i] = math.log((1 + n) / (1 + df[f])) + 1.0

    def transform(self, feats: Sequence[set[str]]) -> sparse.csr_matrix:
        indptr: list[int] = [0]
        indices: list[int] = []
        data: list[float] = []
        for fs in feats:
            idx = sorted(self.vocab[f] for f in fs if f in self.vocab)
            vals = self.idf[idx]
            norm = float(np.sqrt((vals**2).sum())) or 1.0
            indices.extend(idx)
            data.extend(vals / norm)
            indptr.append(len(indices))
        return sparse.csr_matrix((data, indices, indptr), shape=(len(feats), len(self.vocab)))


def usable_negative(row: Row, cat: str, tagged: dict) -> bool:
    """May `row` teach the model that it is not about `cat`?

    Besides the scoring rules, a labels file only annotated its own family: OPP-115 never tagged
    terms categories, so a privacy policy's "we may change this policy" must not be taught as
    "not terms-changes" (with FAMILY_GAP on).
    """
    if FAMILY_GAP and row["_file"] != FAMILY_FILE[CATEGORIES[cat].family]:
        return False
    return is_negative(row, cat, tagged)


def training_mask(rows: Sequence[Row], cat: str, tagged: dict) -> tuple[np.ndarray, np.ndarray]:
    """Rows usable for category `cat` and their 0/1 targets."""
    y = np.array([cat in r["labels"] for r in rows], dtype=int)
    use = np.array(
        [bool(t) or usable_negative(r, cat, tagged) for r, t in zip(rows, y, strict=True)]
    )
    return use, y


def fit(rows: Sequence[Row], feats: Sequence[set[str]]) -> tuple[Vectorizer, dict[str, Any]]:
    vec = Vectorizer(feats)
    X = vec.transform(feats)
    tagged = _tagged_positions(list(rows))
    models = {}
    for cat in MODEL_CATEGORIES:
        use, y = training_mask(rows, cat, tagged)
        lr = LogisticRegression(
            C=C_REG, solver="liblinear", class_weight=CLASS_WEIGHT, max_iter=500
        )
        lr.fit(X[use], y[use])
        coef = lr.coef_[0].copy()
        coef[np.abs(coef) < PRUNE] = 0.0  # what ships is what is measured
        models[cat] = (coef, float(lr.intercept_[0]))
    return vec, models


def decision(vec: Vectorizer, models: dict[str, Any], feats: Sequence[set[str]]) -> np.ndarray:
    X = vec.transform(feats)
    return np.column_stack([X @ models[c][0] + models[c][1] for c in MODEL_CATEGORIES])


def oof_scores(rows: Sequence[Row], feats: Sequence[set[str]], folds: int) -> np.ndarray:
    """Out-of-fold logits of every row, folds grouped by document."""
    groups = [r["doc"] for r in rows]
    out = np.zeros((len(rows), len(MODEL_CATEGORIES)))
    for tr, te in GroupKFold(n_splits=folds).split(rows, groups=groups):
        vec, models = fit([rows[i] for i in tr], [feats[i] for i in tr])
        out[te] = decision(vec, models, [feats[i] for i in te])
    return out


def pick_thresholds(
    rows: Sequence[Row], feats: Sequence[set[str]], scores: np.ndarray
) -> dict[str, float]:
    """Per category, the logit threshold with the best F1 under the scoring rules.

    Deal breakers must also reach MIN_PRECISION_DEAL_BREAKER: a false "deal breaker" alert
    costs a lawyer's time, so precision is what the targets ask of them.
    """
    tagged = _tagged_positions(list(rows))
    out = {}
    for k, cat in enumerate(MODEL_CATEGORIES):
        y = np.array([cat in r["labels"] for r in rows])
        neg = np.array(
            [not t and is_negative(r, cat, tagged) for r, t in zip(rows, y, strict=True)]
        )
        s = scores[:, k]
        strong = np.array([f"S:{cat}" in fs for fs in feats])
        best = (-1.0, float(s.max()) + 1.0)
        for t in np.unique(np.round(s[y], 3)):
            pred = (s >= t) | strong
            tp = int((pred & y).sum())
            fp = int((pred & neg).sum())
            p = tp / (tp + fp) if tp + fp else 0.0
            r = tp / max(1, int(y.sum()))
            f1 = 2 * p * r / (p + r) if p + r else 0.0
            if cat in DEAL_BREAKERS and p < MIN_PRECISION_DEAL_BREAKER:
                continue
            if f1 > best[0]:
                best = (f1, float(t))
        out[cat] = best[1] - 1e-6
    return out


def predictions(feats: Sequence[set[str]], scores: np.ndarray, thr: dict[str, float]) -> list:
    """Run-time decision rule (monitor.flag.flag_clause) applied to precomputed logits."""
    preds = []
    for fs, row_scores in zip(feats, scores, strict=True):
        cats = {f[2:] for f in fs if f.startswith("P:") and f[2:] in flag.PATTERN_ONLY}
        cats.update(f[2:] for f in fs if f.startswith("S:"))
        cats.update(c for c, z in zip(MODEL_CATEGORIES, row_scores, strict=True) if z >= thr[c])
        preds.append(cats)
    return preds


def report_by_file(rows: Sequence[Row], preds: Sequence[set[str]]) -> dict[str, Any]:
    by_id = {id(r): p for r, p in zip(rows, preds, strict=True)}
    results = {}
    for name in sorted({r["_file"] for r in rows}):
        subset = [r for r in rows if r["_file"] == name]
        rep = evaluate(subset, predict=lambda r: by_id[id(r)])
        print(f"== {name}\n{format_report(rep)}\n")
        results[name] = rep.to_dict()
    return results


def nested_cv(rows: Sequence[Row], feats: Sequence[set[str]]) -> list[set[str]]:
    groups = [r["doc"] for r in rows]
    preds: list[set[str]] = [set() for _ in rows]
    for fold, (tr, te) in enumerate(GroupKFold(n_splits=OUTER_FOLDS).split(rows, groups=groups)):
        tr_rows, tr_feats = [rows[i] for i in tr], [feats[i] for i in tr]
        thr = pick_thresholds(tr_rows, tr_feats, oof_scores(tr_rows, tr_feats, INNER_FOLDS))
        vec, models = fit(tr_rows, tr_feats)
        te_feats = [feats[i] for i in te]
        for i, p in zip(
            te, predictions(te_feats, decision(vec, models, te_feats), thr), strict=True
        ):
            preds[i] = p
        print(f"outer fold {fold + 1}/{OUTER_FOLDS} done", file=sys.stderr)
    return preds


def export(vec: Vectorizer, models: dict[str, Any], thr: dict[str, float], meta: dict) -> dict:
    inv = {i: f for f, i in vec.vocab.items()}
    weights = {}
    for cat in MODEL_CATEGORIES:
        coef = models[cat][0]
        nz = np.flatnonzero(coef)
        weights[cat] = {inv[int(i)]: round(float(coef[i]), 4) for i in nz}
    return {
        "feature_version": flag.FEATURE_VERSION,
        "categories": MODEL_CATEGORIES,
        "bias": {c: round(models[c][1], 4) for c in MODEL_CATEGORIES},
        "threshold": {c: round(thr[c], 4) for c in MODEL_CATEGORIES},
        "idf": {f: round(float(vec.idf[i]), 4) for f, i in sorted(vec.vocab.items())},
        "weights": weights,
        "meta": meta,
    }


def throughput(model_data: dict, rows: Sequence[Row]) -> float:
    """Clauses per CPU-second of the run-time `flag_clause` (one core, best of 3 passes)."""
    model = flag.load_model_data(model_data)
    texts = [r["text"] for r in rows if "claudette" in str(r.get("source", "")).lower()]
    best = float("inf")
    for _ in range(3):
        t0 = time.process_time()  # CPU time: the machine may be shared
        for text in texts:
            flag.flag_clause(text, model=model)
        best = min(best, time.process_time() - t0)
    return len(texts) / best


def main(argv: Sequence[str] | None = None) -> int:
    global C_REG, FAMILY_GAP, MIN_PRECISION_DEAL_BREAKER
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", type=Path, default=Path("/work/shared/labels"))
    ap.add_argument("--out", type=Path, default=ROOT / "monitor" / "data" / flag.MODEL_RESOURCE)
    ap.add_argument("--skip-cv", action="store_true", help="only train and export")
    ap.add_argument("--C", type=float, default=C_REG, help="inverse L2 regularisation")
    ap.add_argument("--no-family-gap", action="store_true", help="other family's rows as negatives")
    ap.add_argument("--min-precision", type=float, default=MIN_PRECISION_DEAL_BREAKER)
    args = ap.parse_args(argv)
    C_REG, FAMILY_GAP = args.C, not args.no_family_gap
    MIN_PRECISION_DEAL_BREAKER = args.min_precision

    rows = load_rows(args.labels)
    # Sort for fold stability independent of file order on disk.
    rows.sort(key=lambda r: (r["_file"], str(r["doc"]), r.get("pos") or 0, r["text"]))
    feats = [flag.features(r["text"]) for r in rows]
    print(f"{len(rows)} rows, {len({r['doc'] for r in rows})} documents", file=sys.stderr)

    meta: dict[str, Any] = {
        "rows": len(rows),
        "min_df": MIN_DF,
        "prune": PRUNE,
        "C": C_REG,
        "family_gap": FAMILY_GAP,
        "min_precision_deal_breaker": MIN_PRECISION_DEAL_BREAKER,
    }
    if not args.skip_cv:
        t0 = time.time()
        print(f"# nested {OUTER_FOLDS}-fold cross-validation by document (outer-fold results)")
        meta["cv"] = report_by_file(rows, nested_cv(rows, feats))
        print(f"(cv took {time.time() - t0:.0f}s)", file=sys.stderr)

    thr = pick_thresholds(rows, feats, oof_scores(rows, feats, OUTER_FOLDS))
    vec, models = fit(rows, feats)
    data = export(vec, models, thr, meta)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(args.out, "wb", mtime=0) as fh:  # mtime=0: byte-identical reruns
        fh.write(json.dumps(data, sort_keys=True, separators=(",", ":")).encode())
    print(
        f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB), thresholds {data['threshold']}"
    )
    print(f"throughput: {throughput(data, rows):.0f} clauses per CPU-second (CLAUDETTE sentences)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
