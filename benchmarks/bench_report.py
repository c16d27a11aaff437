"""Benchmark of the HTML report (`monitor/report.py`).

    python benchmarks/bench_report.py [--repeat N] [--documents 20] [--versions 1000] [--fresh]

Builds a synthetic history once (kept in benchmarks/out/, reused by later runs; --fresh makes it
again): `--documents` documents on documents/2 platforms, `--versions` versions in all, made by
`monitor.changes.record_text` from the real policy texts in tests/fixtures/ with generated edits
(reworded, added and deleted paragraphs) and an A/B flip back to the previous text every ninth
change (a revert). Two documents are failing. Then prints median wall-clock timings of:

1. full build, cold: no pages and no checklist cache (the very first `tos-monitor report`);
2. full build, new pages: no pages, checklist cache kept (e.g. after deleting reports/*.html);
3. full rebuild: over an existing site (`tos-monitor report` on a machine that runs nightly);
4. incremental update after a run in which one document changed (what `tos-monitor run` does);
   each repetition records one more version of a different document.

Targets (2-core machine): full site for 1,000 versions < 10 s, incremental < 1 s.

Making the history: `record_text` stores each change's flagged clauses, which flags every clause
of both versions (0.5 s a change, 10 minutes for 1,000). While generating, the flags are computed
on the changed blocks only, which yields the same kind of data in a fraction of the time; the
report reads them the same way. The report's own checklist work is measured in full.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import monitor.changes  # noqa: E402
from monitor.changes import record_text  # noqa: E402
from monitor.diff import diff_texts  # noqa: E402
from monitor.flag import change_flags  # noqa: E402
from monitor.report import CACHE_DIR, REPORT_DIR, build_site, update_site  # noqa: E402
from monitor.store import Store  # noqa: E402
from monitor.watchlist import Document  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
OUT = ROOT / "benchmarks" / "out"
GENERATOR = 1  # bump when the generated history changes, so a kept one is not reused
START = datetime(2024, 1, 1, 2, 30, tzinfo=UTC)
WORD_RE = re.compile(r"\w+")


# --- The synthetic history ------------------------------------------------------------------------


def base_texts() -> list[str]:
    """Real policy texts, one block per line as the extractor writes them (blank-line separated)."""
    texts = []
    for path in sorted(FIXTURES.glob("**/*.md.gz")):
        text = gzip.decompress(path.read_bytes()).decode("utf-8")
        blocks = [line.strip() for line in text.splitlines() if line.strip()]
        texts.append("\n\n".join(blocks) + "\n")
    return texts


def edit(text: str, rng: random.Random) -> str:
    """One night's edit: reword one to three paragraphs, sometimes add or drop one."""
    blocks = text.rstrip("\n").split("\n\n")
    prose = [i for i, b in enumerate(blocks) if len(b.split()) > 8 and not b.startswith("#")]
    vocabulary = WORD_RE.findall(text)[:5000]
    for i in rng.sample(prose, min(len(prose), rng.randint(1, 3))):
        words = blocks[i].split(" ")
        for _ in range(max(1, len(words) // 12)):
            words[rng.randrange(len(words))] = rng.choice(vocabulary)
        blocks[i] = " ".join(words)
    roll = rng.random()
    if roll < 0.25 and prose:
        blocks.insert(rng.choice(prose), " ".join(rng.choices(vocabulary, k=30)).capitalize() + ".")
    elif roll < 0.35 and len(prose) > 5:
        del blocks[rng.choice(prose)]
    return "\n\n".join(blocks) + "\n"


def flags_of_changed_blocks(old: str, new: str) -> dict[str, Any]:
    """change_flags() on the changed blocks only (see the module docstring)."""
    diff = diff_texts(old, new)
    olds = [
        o.get("old_text", o.get("text", ""))
        for o in diff["ops"]
        if o["op"] in ("removed", "modified")
    ]
    news = [
        o.get("new_text", o.get("text", ""))
        for o in diff["ops"]
        if o["op"] in ("added", "modified")
    ]
    return change_flags("\n".join(olds), "\n".join(news))


def documents(count: int) -> list[Document]:
    kinds = [("terms-of-service", "Terms of Service"), ("privacy-policy", "Privacy Policy")]
    return [
        Document(f"platform-{n // 2:02d}", kinds[n % 2][0], kinds[n % 2][1],
                 f"https://platform-{n // 2:02d}.example/{kinds[n % 2][0]}")
        for n in range(count)
    ]  # fmt: skip


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def register(store: Store, document: Document, failing: bool) -> None:
    row: dict[str, Any] = {
        "key": document.key, "platform": document.platform, "document": document.id,
        "platform_name": document.platform.replace("-", " ").title(), "name": document.name,
        "url": document.url, "render": "browser", "first_checked": stamp(START), "status": "ok",
    }  # fmt: skip
    if failing:
        row.update(status="failing", failing_since=stamp(START + timedelta(days=600)),
                   consecutive_failures=3, last_error_class="http-5xx",
                   last_error="HTTP 503 Service Unavailable")  # fmt: skip
    store.upsert_document(row)


def night(store: Store, moment: datetime, edits: dict[Document, str]) -> int:
    """One run recording `edits` (document -> text) and an unchanged fetch for the others."""
    run_id = store.start_run(stamp(moment), None)
    for document, text in edits.items():
        recorded = record_text(store, run_id, document, text, None, stamp(moment))
        fetch = {"run_id": run_id, "document_key": document.key, "started_at": stamp(moment),
                 "outcome": recorded.outcome, "version_id": recorded.version_id,
                 "change_id": recorded.change_id}  # fmt: skip
        store.add_fetch(fetch)
    return run_id


def make_history(home: Path, n_documents: int, n_versions: int) -> None:
    rng = random.Random(20261124)
    store = Store(home)
    docs = documents(n_documents)
    texts = base_texts()
    current = {d: texts[n % len(texts)] for n, d in enumerate(docs)}
    previous: dict[Document, str] = {}
    for n, document in enumerate(docs):
        register(store, document, failing=n in (3, 14))
    night(store, START, dict(current))
    versions, steps = n_documents, 0
    moment = START
    while versions < n_versions:
        document = docs[steps % n_documents]
        steps += 1
        moment += timedelta(hours=13)
        if steps % 9 == 0 and document in previous:  # an A/B flip back: a revert
            current[document], previous[document] = previous[document], current[document]
        else:
            previous[document], current[document] = current[document], edit(current[document], rng)
            versions += 1
        night(store, moment, {document: current[document]})
        if steps % 100 == 0:
            print(f"  {versions} versions", file=sys.stderr)
    store.close()


def history(n_documents: int, n_versions: int, fresh: bool) -> Path:
    home = OUT / f"report-history-{GENERATOR}-{n_documents}-{n_versions}"
    if fresh or not (home / "complete").exists():
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        print(f"making the history in {home} (once) ...", file=sys.stderr)
        started = time.perf_counter()
        monitor.changes.change_flags = flags_of_changed_blocks  # type: ignore[attr-defined]
        try:
            make_history(home, n_documents, n_versions)
        finally:
            monitor.changes.change_flags = change_flags  # type: ignore[attr-defined]
        (home / "complete").write_text(f"{time.perf_counter() - started:.0f} s\n")
    return home


# --- Timings -------------------------------------------------------------------------------------


Timing = tuple[float, float, Any]  # median wall seconds, median CPU seconds, last result


def timed(action: Callable[[], Any], before: Callable[[], None], repeat: int) -> Timing:
    """Wall and CPU time: CPU time (this process) shows the cost when other jobs share the cores."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        before()
        wall, cpu = time.perf_counter(), time.process_time()
        result = action()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--documents", type=int, default=20)
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--fresh", action="store_true", help="make the history again")
    args = parser.parse_args()

    source = history(args.documents, args.versions, args.fresh)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    home = OUT / "report-bench-home"
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(source, home)
    site = home / REPORT_DIR
    trash = home / "trash"
    trash.mkdir()
    store = Store(home)
    counts = {t: store.db.table(t).count for t in ("documents", "versions", "changes")}
    print(f"history: {counts['documents']} documents, {counts['versions']} versions, "
          f"{counts['changes']} changes")  # fmt: skip

    def no_site() -> None:
        # Moved away, deleted at the end: deleting thousands of files just before the timed
        # build would make the file system's clean-up part of the measured time.
        if site.exists():
            site.rename(trash / str(time.perf_counter_ns()))

    def no_pages() -> None:
        cache = site / CACHE_DIR
        no_site()
        site.mkdir()
        latest = max(trash.iterdir(), key=lambda p: p.stat().st_mtime_ns)
        (latest / CACHE_DIR).rename(cache)

    def build() -> Any:
        return build_site(store, workers=os.cpu_count() or 1)  # as `tos-monitor report` does

    results: list[tuple[str, Timing]] = [
        ("full build, cold (no pages, no checklist cache)", timed(build, no_site, args.repeat)),
        ("full build, new pages (checklist cache kept)", timed(build, no_pages, args.repeat)),
        ("full rebuild over the existing site", timed(build, lambda: None, args.repeat)),
    ]

    docs = documents(args.documents)
    rng = random.Random(7)
    moment = [START + timedelta(days=3650)]
    run_ids: list[int] = []

    def one_change() -> None:
        moment[0] += timedelta(days=1)
        document = docs[len(run_ids) % len(docs)]
        text = edit(store.version(store.document(document.key)["current_version_id"]).text, rng)
        run_ids.append(night(store, moment[0], {document: text}))

    incremental = timed(lambda: update_site(store, run_ids[-1]), one_change, args.repeat)
    results.append(("incremental update after a run with one change", incremental))

    size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file() and ".cache" not in p.parts)
    print(f"site: {len(list(site.rglob('*.html')))} pages, {size / 1e6:.0f} MB\n")
    print(f"load average before: {load}; median of {args.repeat} runs\n")
    print(f"{'':<50} {'wall s':>7} {'CPU s':>7}  pages written / rendered")
    for label, (wall, cpu, stats) in results:
        rendered = len(stats.written) + len(stats.unchanged)
        print(f"{label:<50} {wall:7.2f} {cpu:7.2f}  {len(stats.written)} / {rendered}")
    print(json.dumps({label: [round(wall, 3), round(cpu, 3)] for label, (wall, cpu, _) in results}))
    store.close()
    shutil.rmtree(trash)


if __name__ == "__main__":
    main()
