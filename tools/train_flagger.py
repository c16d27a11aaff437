"""Train the clause flagger and measure it honestly (docs/flagging.md has the protocol).

    python tools/train_flagger.py cv     [--labels DIR] [--C 4] [--no-embed] [--no-context]
    python tools/train_flagger.py test   [--labels DIR]   # once, with the frozen choices
    python tools/train_flagger.py ship   [--labels DIR] [--out monitor/data/flagger.npz]

- `cv`: grouped (by document) 5-fold cross-validation on the TUNING part only: out-of-fold
  logits, per-category thresholds picked on them. Every choice (blocks, C, class weights) is
  made on this output.
- `test`: trains on the tuning part (thresholds from its grouped out-of-fold scores), predicts
  the test part once and prints both scorers' figures (monitor.evaluate = score_flags.py and
  score_checklist.py rules).
- `ship`: the same recipe on all labels; writes the .npz the run-time flagger loads.

Features are `monitor.flag.ngrams` / `monitor.flag.embed` (run-time code), TF-IDF weighted and
L2-normalised per block exactly like `monitor.flag.model_scores`. Training rows per category
follow the scoring rules: incomplete rows only as positives; untagged CLAUDETTE neighbours of a
tagged sentence, rows of the other family's file, and known annotation gaps are left out rather
than taught as negatives. scikit-learn is used here only.
"""

from __future__ import annotations

import argparse
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

from monitor import evaluate as ev  # noqa: E402
from monitor import flag  # noqa: E402

MODEL_CATEGORIES = [c for fam in ev.FAMILIES.values() for c in fam["full"]]
FAMILY_OF = {c: f for f, fam in ev.FAMILIES.items() for c in fam["full"]}
DEAL_BREAKERS = ev.DEAL_BREAKERS
FOLDS = 5
MIN_DF = 2

Row = dict[str, Any]


class Config:
    C = 4.0
    class_weight: str | None = "balanced"
    embed = True
    context = True
    min_precision_deal_breaker = 0.85  # a margin over the 0.80 bar: thresholds are noisy
    cross_family = True
    min_recall_for_floor = 0.2  # below this recall the precision floor is given up (CV choice)


def load(labels: Path, part: str) -> list[Row]:
    rows: list[Row] = []
    for family, rs in ev.load_labels(labels, part).items():
        ctx = flag.row_contexts(rs)
        for r, (p, n) in zip(rs, ctx, strict=True):
            rows.append({**r, "_family": family, "_prev": p, "_next": n})
    return rows


class Features:
    """All feature blocks of a set of rows, computed once (CV refits only the vocabularies)."""

    def __init__(self, rows: Sequence[Row]) -> None:
        self.grams = {
            "clause": [flag.ngrams(r["text"]) for r in rows],
            "prev": [flag.ngrams(r["_prev"]) for r in rows],
            "next": [flag.ngrams(r["_next"]) for r in rows],
        }
        uniq = list(dict.fromkeys(t for r in rows for t in (r["text"], r["_prev"], r["_next"])))
        vecs = flag.embed(uniq)
        at = {t: i for i, t in enumerate(uniq)}
        self.emb = {
            "emb_clause": vecs[[at[r["text"]] for r in rows]],
            "emb_prev": vecs[[at[r["_prev"]] for r in rows]],
            "emb_next": vecs[[at[r["_next"]] for r in rows]],
        }


def text_blocks() -> tuple[str, ...]:
    return flag.TEXT_BLOCKS if Config.context else ("clause",)


def embed_blocks() -> tuple[str, ...]:
    if not Config.embed:
        return ()
    return flag.EMBED_BLOCKS if Config.context else ("emb_clause",)


class Vectorizer:
    def __init__(self, feats: Features, idx: np.ndarray) -> None:
        self.vocab: dict[str, dict[str, int]] = {}
        self.idf: dict[str, np.ndarray] = {}
        n = len(idx)
        for b in text_blocks():
            df = Counter(g for i in idx for g in feats.grams[b][i])
            words = sorted(g for g, k in df.items() if k >= MIN_DF)
            self.vocab[b] = {w: j for j, w in enumerate(words)}
            self.idf[b] = np.array([math.log((1 + n) / (1 + df[w])) + 1.0 for w in words])

    def transform(self, feats: Features, idx: np.ndarray) -> sparse.csr_matrix:
        mats = []
        for b in text_blocks():
            vocab, idf = self.vocab[b], self.idf[b]
            indptr, indices, data = [0], [], []
            for i in idx:
                cols = sorted({vocab[g] for g in feats.grams[b][i] if g in vocab})
                vals = idf[cols]
                norm = float(np.sqrt((vals**2).sum())) or 1.0
                indices.extend(cols)
                data.extend(vals / norm)
                indptr.append(len(indices))
            mats.append(sparse.csr_matrix((data, indices, indptr), shape=(len(idx), len(vocab))))
        for b in embed_blocks():
            mats.append(sparse.csr_matrix(feats.emb[b][idx].astype(np.float64)))
        return sparse.hstack(mats, format="csr")


def usable(rows: Sequence[Row], cat: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows that may teach category `cat` and their 0/1 targets (see module docstring)."""
    near = ev.near_tagged(rows)
    y = np.array([cat in r["labels"] for r in rows], dtype=int)
    neg = np.array(
        [
            not t
            and (
                r["_family"] == FAMILY_OF[cat]
                # terms sentences teach the privacy models what is not privacy (otherwise
                # "Welcome to our website." is flagged ad-tracking); not the other way round:
                # OPP-115 never tagged terms topics ("we may change this policy")
                or (Config.cross_family and FAMILY_OF[cat] == "privacy")
            )
            and bool(r.get("complete"))
            and (r["doc"], r.get("pos"), cat) not in near
            for r, t in zip(rows, y, strict=True)
        ]
    )
    return (y == 1) | neg, y


def fit(rows: Sequence[Row], feats: Features, idx: np.ndarray) -> tuple[Vectorizer, dict]:
    vec = Vectorizer(feats, idx)
    X = vec.transform(feats, idx)
    sub = [rows[i] for i in idx]
    models = {}
    for cat in MODEL_CATEGORIES:
        use, y = usable(sub, cat)
        lr = LogisticRegression(
            C=Config.C, solver="liblinear", class_weight=Config.class_weight, max_iter=1000
        )
        lr.fit(X[use], y[use])
        models[cat] = (lr.coef_[0].copy(), float(lr.intercept_[0]))
    return vec, models


def decision(vec: Vectorizer, models: dict, feats: Features, idx: np.ndarray) -> np.ndarray:
    X = vec.transform(feats, idx)
    return np.column_stack([X @ models[c][0] + models[c][1] for c in MODEL_CATEGORIES])


def oof(rows: Sequence[Row], feats: Features, idx: np.ndarray) -> np.ndarray:
    """Grouped out-of-fold logits of rows[idx] (folds by document)."""
    groups = [f"{rows[i]['source']}|{rows[i]['doc']}" for i in idx]
    out = np.zeros((len(idx), len(MODEL_CATEGORIES)))
    for tr, te in GroupKFold(n_splits=FOLDS).split(idx, groups=groups):
        vec, models = fit(rows, feats, idx[tr])
        out[te] = decision(vec, models, feats, idx[te])
    return out


def pick_thresholds(rows: Sequence[Row], scores: np.ndarray) -> np.ndarray:
    """Per category, the logit threshold with the best F1 under the scoring rules.

    Deal breakers must also keep precision >= min_precision_deal_breaker (the target is 0.80).
    """
    out = np.zeros(len(MODEL_CATEGORIES))
    for k, cat in enumerate(MODEL_CATEGORIES):
        use, y = usable(rows, cat)
        pos = y == 1
        neg = use & ~pos
        s = scores[:, k]
        best = (-1.0, float(s.max()) + 1.0, 0.0)
        free = (-1.0, float(s.max()) + 1.0, 0.0)  # F1-best without the precision floor
        for t in np.unique(np.round(s[pos], 3)):
            pred = s >= t
            tp = int((pred & pos).sum())
            fp = int((pred & neg).sum())
            p = tp / (tp + fp) if tp + fp else 0.0
            r = tp / max(1, int(pos.sum()))
            f1 = 2 * p * r / (p + r) if p + r else 0.0
            if f1 > free[0]:
                free = (f1, float(t), r)
            if cat in DEAL_BREAKERS and p < Config.min_precision_deal_breaker:
                continue
            if f1 > best[0]:
                best = (f1, float(t), r)
        if best[2] < Config.min_recall_for_floor:
            # The floor cannot be met at any useful recall (arbitration: CLAUDETTE tags one key
            # sentence of a section): a checklist that never says "yes" misses the deal breaker
            # in every document, so take the F1-best threshold and report the precision short.
            best = free
        out[k] = best[1] - 1e-6
    return out


def labels_of(rows: Sequence[Row], scores: np.ndarray, thr: np.ndarray) -> list[list[str]]:
    """The run-time decision (monitor.flag.flag_inputs) on precomputed logits."""
    out = []
    for r, z in zip(rows, scores, strict=True):
        cats = {c for c, v, t in zip(MODEL_CATEGORIES, z, thr, strict=True) if v >= t}
        cats |= {c for c in flag.pattern_hits(r["text"]) if c in flag.PATTERN_ONLY}
        out.append(sorted(cats))
    return out


def report(rows: Sequence[Row], preds: Sequence[list[str]]) -> dict[str, Any]:
    figures = {}
    for family in ev.FAMILIES:
        idx = [i for i, r in enumerate(rows) if r["_family"] == family]
        gold = [rows[i] for i in idx]
        pr = [preds[i] for i in idx]
        fs, cs = ev.score_flags(family, gold, pr), ev.score_checklist(family, gold, pr)
        print(f"== {family}: {len(gold)} rows, {len({(r['source'], r['doc']) for r in gold})} docs")
        print(ev.format_flag_score(fs))
        print(ev.format_checklist_score(cs))
        figures[family] = {"macro_f1": round(fs.macro_f1, 3), "doc_acc": round(cs.mean_accuracy, 3)}
    return figures


def cmd_cv(rows: list[Row]) -> None:
    """Grouped out-of-fold logits of the tuning part; thresholds picked on the same out-of-fold
    logits (one number per category, so the optimism is small; the test part has none)."""
    feats = Features(rows)
    scores = oof(rows, feats, np.arange(len(rows)))
    _dump("cv", tuning_oof=scores)
    thr = pick_thresholds(rows, scores)
    print(f"# grouped {FOLDS}-fold CV on the tuning part, {config()}")
    print(json.dumps(report(rows, labels_of(rows, scores, thr))))


def train(rows: list[Row], name: str) -> tuple[Features, Vectorizer, dict, np.ndarray]:
    feats = Features(rows)
    idx = np.arange(len(rows))
    scores = oof(rows, feats, idx)
    _dump(name, oof=scores)
    thr = pick_thresholds(rows, scores)
    vec, models = fit(rows, feats, idx)
    return feats, vec, models, thr


def cmd_test(labels: Path) -> None:
    tuning, test = load(labels, "tuning"), load(labels, "test")
    if REUSE and DUMP is not None:  # the logits of an earlier run: only thresholds re-picked
        thr = pick_thresholds(tuning, np.load(DUMP / "test-train.npz")["oof"])
        scores = np.load(DUMP / "test-scores.npz")["scores"]
    else:
        _, vec, models, thr = train(tuning, "test-train")
        scores = decision(vec, models, Features(test), np.arange(len(test)))
        _dump("test-scores", scores=scores)
    preds = labels_of(test, scores, thr)
    print(f"# trained on the tuning part, scored on the test part, {config()}")
    print(json.dumps(report(test, preds)))
    if PRED_DIR is not None:  # gold + predictions, for ../shared/tools/score_*.py
        PRED_DIR.mkdir(parents=True, exist_ok=True)
        for family in ev.FAMILIES:
            pairs = [(r, p) for r, p in zip(test, preds, strict=True) if r["_family"] == family]
            with (PRED_DIR / f"gold_{family}.jsonl").open("w") as g:
                g.writelines(
                    json.dumps({k: v for k, v in r.items() if not k.startswith("_")}) + "\n"
                    for r, _ in pairs
                )
            with (PRED_DIR / f"pred_{family}.jsonl").open("w") as f:
                f.writelines(json.dumps({"text": r["text"], "labels": p}) + "\n" for r, p in pairs)


def cmd_ship(labels: Path, out: Path) -> None:
    rows = load(labels, "all")
    _, vec, models, thr = train(rows, "ship")
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    blocks = [*text_blocks(), *embed_blocks()]
    if blocks != [*flag.TEXT_BLOCKS, *flag.EMBED_BLOCKS]:
        raise SystemExit("ship needs all blocks (the run-time flagger applies all of them)")
    coef = np.column_stack([models[c][0] for c in MODEL_CATEGORIES])
    for b in flag.TEXT_BLOCKS:
        words = sorted(vec.vocab[b], key=vec.vocab[b].__getitem__)
        n = len(words)
        arrays[f"vocab_{b}"] = np.frombuffer("\n".join(words).encode(), dtype=np.uint8)
        arrays[f"idf_{b}"] = vec.idf[b].astype(np.float32)
        arrays[f"w_{b}"] = coef[offset : offset + n].astype(np.float32)
        offset += n
    for b in flag.EMBED_BLOCKS:
        arrays[f"w_{b}"] = coef[offset : offset + flag.EMBED_DIM].astype(np.float32)
        offset += flag.EMBED_DIM
    assert offset == coef.shape[0]
    header = {
        "feature_version": flag.FEATURE_VERSION,
        "categories": MODEL_CATEGORIES,
        "meta": {"rows": len(rows), "config": config(), "labels": "all (tuning + test)"},
    }
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    arrays["bias"] = np.array([models[c][1] for c in MODEL_CATEGORIES], dtype=np.float32)
    arrays["threshold"] = thr.astype(np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as fh:
        np.savez_compressed(fh, **arrays)
    named = dict(zip(MODEL_CATEGORIES, thr.round(3).tolist(), strict=True))
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB), thresholds {named}")


DUMP: Path | None = None
REUSE = False
PRED_DIR: Path | None = None


def _dump(name: str, **arrays: np.ndarray) -> None:
    """Keep raw logits (--dump DIR) so threshold rules can be compared without retraining."""
    if DUMP is not None:
        DUMP.mkdir(parents=True, exist_ok=True)
        np.savez(DUMP / f"{name}.npz", **arrays)


def cmd_rethreshold(labels: Path, out: Path) -> None:
    """Re-pick the thresholds of a shipped model from the logits its `ship --dump` kept (the
    model's own grouped out-of-fold logits on all labels), without retraining."""
    if DUMP is None:
        raise SystemExit("rethreshold needs --dump DIR (from the ship run)")
    rows = load(labels, "all")
    thr = pick_thresholds(rows, np.load(DUMP / "ship.npz")["oof"])
    with np.load(out, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["threshold"] = thr.astype(np.float32)
    with out.open("wb") as fh:
        np.savez_compressed(fh, **arrays)
    print(f"thresholds of {out}: {dict(zip(MODEL_CATEGORIES, thr.round(3).tolist(), strict=True))}")


def config() -> str:
    return (
        f"C={Config.C} class_weight={Config.class_weight} embed={Config.embed} "
        f"context={Config.context} min_precision_deal_breaker={Config.min_precision_deal_breaker} "
        f"min_recall_for_floor={Config.min_recall_for_floor} cross_family={Config.cross_family}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["cv", "test", "ship", "rethreshold"])
    ap.add_argument("--labels", type=Path, default=Path("/work/shared/labels"))
    ap.add_argument("--out", type=Path, default=ROOT / "monitor" / "data" / flag.MODEL_RESOURCE)
    ap.add_argument("--C", type=float, default=Config.C)
    ap.add_argument("--no-balance", action="store_true")
    ap.add_argument("--no-embed", action="store_true")
    ap.add_argument("--no-context", action="store_true")
    ap.add_argument("--min-precision", type=float, default=Config.min_precision_deal_breaker)
    ap.add_argument("--min-recall-for-floor", type=float, default=Config.min_recall_for_floor)
    ap.add_argument("--no-cross-family", action="store_true")
    ap.add_argument("--dump", type=Path, help="keep raw logits in this directory")
    ap.add_argument("--reuse", action="store_true", help="test: logits from --dump, no training")
    ap.add_argument("--pred-dir", type=Path, help="test: write gold/pred files for the scorers")
    args = ap.parse_args(argv)
    global DUMP, REUSE, PRED_DIR
    DUMP, REUSE, PRED_DIR = args.dump, args.reuse, args.pred_dir
    Config.C, Config.embed, Config.context = args.C, not args.no_embed, not args.no_context
    Config.class_weight = None if args.no_balance else "balanced"
    Config.min_precision_deal_breaker = args.min_precision
    Config.min_recall_for_floor = args.min_recall_for_floor
    Config.cross_family = not args.no_cross_family
    t0 = time.time()
    if args.command == "cv":
        cmd_cv(load(args.labels, "tuning"))
    elif args.command == "test":
        cmd_test(args.labels)
    elif args.command == "ship":
        cmd_ship(args.labels, args.out)
    else:
        cmd_rethreshold(args.labels, args.out)
    print(f"({time.time() - t0:.0f}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
