"""`eval-flags` prints the figures of the project's scorers, and the labels split is fixed.

The scorers are copies of ../shared/tools/score_flags.py and score_checklist.py
(tests/fixtures/scorers/README.md), run as the reviewer runs them on the same rows.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from monitor import evaluate as ev

SCORERS = Path(__file__).parent / "fixtures" / "scorers"
ROWS = [json.loads(line) for line in (SCORERS / "rows.jsonl").read_text().splitlines()]


def _files(tmp_path: Path, family: str, rows: list[dict]) -> tuple[Path, Path]:
    gold, pred = tmp_path / f"{family}.jsonl", tmp_path / f"{family}.pred.jsonl"
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pred.write_text("".join(json.dumps({**r, "labels": r["predicted"]}) + "\n" for r in rows))
    return gold, pred


def _scorer(name: str, family: str, gold: Path, pred: Path) -> list[str]:
    out = subprocess.run(
        [sys.executable, str(SCORERS / name), family, str(gold), str(pred)],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.splitlines()


@pytest.mark.parametrize("family", ["privacy", "terms"])
def test_figures_match_both_scorers(tmp_path: Path, family: str) -> None:
    rows = [r for r in ROWS if r["family"] == family]
    gold, pred = _files(tmp_path, family, rows)
    expected = _scorer("score_flags.py", family, gold, pred) + _scorer(
        "score_checklist.py", family, gold, pred
    )
    result = ev.evaluate_rows(family, rows, predict=lambda rs: [r["predicted"] for r in rs])
    assert result.text.splitlines()[1:] == expected
    # and the figures are not trivial: some categories are short, some perfect
    assert 0.0 < result.flags.macro_f1 < 1.0


def test_cli_agrees_with_scorers_on_flagger_output(tmp_path: Path) -> None:
    """`tos-monitor flag` + the scorers == `tos-monitor eval-flags` (same flagger, same rows)."""
    rows = [
        {k: v for k, v in r.items() if k != "predicted"} for r in ROWS if r["family"] == "terms"
    ]
    gold = tmp_path / "terms.jsonl"
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pred = tmp_path / "pred.jsonl"
    cli = [sys.executable, "-m", "monitor"]
    subprocess.run([*cli, "flag", "--input", str(gold), "--output", str(pred)], check=True)
    expected = _scorer("score_flags.py", "terms", gold, pred) + _scorer(
        "score_checklist.py", "terms", gold, pred
    )
    out = subprocess.run(
        [*cli, "eval-flags", str(gold), "--part", "all"], capture_output=True, text=True
    )
    assert out.returncode in (0, 1), out.stderr
    assert out.stdout.splitlines()[1:] == expected


def test_split_is_fixed_by_document() -> None:
    # The same document is always in the same part, whatever rows come with it.
    assert ev.part_of("CLAUDETTE-50EN (Galassi et al. 2024)", "Amazon") == ev.part_of(
        "CLAUDETTE-50EN (Galassi et al. 2024)", "Amazon"
    )
    docs = [("src", f"doc{i}") for i in range(400)]
    test = [d for d in docs if ev.part_of(*d) == "test"]
    assert 70 < len(test) < 130  # about a quarter
    rows = [{"source": s, "doc": d, "text": "x", "labels": []} for s, d in docs]
    assert len(ev.select_part(rows, "test")) + len(ev.select_part(rows, "tuning")) == 400
    assert {r["doc"] for r in ev.select_part(rows, "test")} == {d for _, d in test}


def test_bad_labels_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "terms.jsonl"
    bad.write_text('{"text": "a", "labels": [], "source": "s", "doc": "d"}\nnot json\n')
    out = subprocess.run(
        [sys.executable, "-m", "monitor", "eval-flags", "--labels", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert f"{bad}:2: not JSON" in out.stderr
