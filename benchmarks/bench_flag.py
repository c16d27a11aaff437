"""Throughput of the run-time flagger: clauses per second on one core.

    taskset -c 0 .venv/bin/python benchmarks/bench_flag.py [--labels DIR] [--repeat 3]

Flags every sentence of the CLAUDETTE terms and OPP-115 segments in ../shared/labels (or, without
them, the clauses of the policy texts in tests/fixtures/) in document order with their
neighbours, as `flag_text` does. Prints: model load time, a cold pass (fresh process state: first
embedding calls included) and the best of `--repeat` warm passes, in clauses per second of
wall-clock time and per CPU-second (the honest figure when the shared machine is loaded: wall-clock
then measures the other jobs). Target: >= 500 clauses/s on one core. Run under `taskset -c 0`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor import flag  # noqa: E402
from monitor.evaluate import load_labels  # noqa: E402


def inputs(labels: Path) -> list[flag.ClauseInput]:
    if labels.exists():
        rows = [r for rs in load_labels(labels, "all").values() for r in rs]
        return [
            flag.ClauseInput(r["text"], "", p, n)
            for r, (p, n) in zip(rows, flag.row_contexts(rows), strict=True)
        ]
    texts = sorted((ROOT / "tests" / "fixtures").rglob("*.md"))
    return [i for t in texts for i in flag.clause_inputs(flag.split_clauses(t.read_text()))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", type=Path, default=Path("/work/shared/labels"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    items = inputs(args.labels)
    t0 = time.perf_counter()
    model = flag.default_model()
    flag._embedder()
    print(f"model load (npz + WordLlama): {time.perf_counter() - t0:.2f} s")
    t0, c0 = time.perf_counter(), time.process_time()
    flag.flag_inputs(items, model)
    cold, cold_cpu = time.perf_counter() - t0, time.process_time() - c0
    n = len(items)
    print(f"{n} clauses, cold pass: {n / cold:.0f} clauses/s wall, {n / cold_cpu:.0f} per CPU-s")
    runs = [_timed(items, model) for _ in range(args.repeat)]
    wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
    print(f"warm, best of {args.repeat}: {n / wall:.0f} clauses/s wall, {n / cpu:.0f} per CPU-s")
    return 0


def _timed(items: list[flag.ClauseInput], model: flag.Model | None) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    flag.flag_inputs(items, model)
    return time.perf_counter() - t0, time.process_time() - c0


if __name__ == "__main__":
    raise SystemExit(main())
