"""The plain baseline the flagger is compared with: TF-IDF word 1-2 grams and one logistic
regression per category (balanced class weights, default 0.5 threshold, nothing tuned), trained on
the tuning part of the labels and written as predictions for the test part, for the shared
scorers to score exactly as they score the shipped recipe (docs/flagging.md, "Against a plain
baseline").

    python tools/baseline_flagger.py --labels ../shared/labels --out /tmp/base
    python3 ../shared/tools/score_flags.py terms \
        /tmp/base/gold_terms.jsonl /tmp/base/pred_terms.jsonl

Needs the `train` extra (scikit-learn).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from monitor.evaluate import load_labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tuning_part, test_part = load_labels(args.labels, "tuning"), load_labels(args.labels, "test")
    for family, tuning in tuning_part.items():
        test = test_part[family]
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        x_tuning = vectorizer.fit_transform([r["text"] for r in tuning])
        x_test = vectorizer.transform([r["text"] for r in test])
        categories = sorted({c for r in tuning for c in r["labels"]})
        predicted: list[list[str]] = [[] for _ in test]
        for category in categories:
            # Incomplete rows only teach their own labels: they are not negatives.
            keep = [
                i
                for i, r in enumerate(tuning)
                if r.get("complete", True) or category in r["labels"]
            ]
            y = [category in tuning[i]["labels"] for i in keep]
            if len(set(y)) < 2:
                continue
            model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000)
            model.fit(x_tuning[keep], y)
            for i, yes in enumerate(model.predict(x_test)):
                if yes:
                    predicted[i].append(category)
        with (args.out / f"gold_{family}.jsonl").open("w") as gold:
            for r in test:
                gold.write(json.dumps(r) + "\n")
        with (args.out / f"pred_{family}.jsonl").open("w") as pred:
            for r, labels in zip(test, predicted, strict=True):
                pred.write(json.dumps({"text": r["text"], "labels": labels}) + "\n")
        print(f"{family}: {len(tuning)} tuning rows, {len(test)} test rows -> {args.out}")


if __name__ == "__main__":
    main()
