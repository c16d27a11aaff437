"""How many bytes an unchanged night adds to `monitor.db`, per document.

    python benchmarks/bench_storage.py                  # 1,000 documents, 30 unchanged nights
    python benchmarks/bench_storage.py --documents 200 --nights 10 --keep /tmp/bench-home

Builds a real home folder with `monitor.store.Store` and the nightly run's own per-document code
(`monitor.check.register_document` and `check_document`, which records the fetch with
`_record_fetch`); only the browser is replaced by a stand-in that serves each document's page the
way the real fetcher does: the whole page the first night, then, as the visible text's fingerprint
equals the one the store knows, an empty page that says "same as known". Documents, URLs, locales
and time zones are the shipped watchlist's (`watchlist.yaml`: keys like `facebook/terms-of-service`,
URLs like `https://www.facebook.com/legal/terms/plain_text_terms`, `en-US`, `America/Chicago`),
repeated with numbered platforms to reach the asked count.

Prints the database file's growth over the unchanged nights (after the checkpoint each run ends
with), per document and night; the same from SQLite's `dbstat` table, split by table and index; and
the projection for 1,000 documents over a year of unchanged nights (target: under 50 MB, i.e.
under 137 bytes per document and night). No timing: this is about bytes (it takes about a minute
for the defaults).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.check import check_document, register_document  # noqa: E402
from monitor.fetch import FetchResult, Page, input_fingerprint  # noqa: E402
from monitor.store import Store  # noqa: E402
from monitor.watchlist import Document, Platform, Watchlist, load  # noqa: E402

TARGET_MB_PER_YEAR = 50
START = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)


def make_documents(count: int) -> list[Document]:
    """The shipped watchlist's documents; beyond its 26, the same with numbered platforms
    (`facebook-2/terms-of-service`, `https://www.facebook.com/legal/terms/...?copy=2`)."""
    shipped = list(load(ROOT / "watchlist.yaml").documents())
    documents = []
    for n in range(count):
        # Selectors only shape the stand-in page's HTML, which is not stored on unchanged nights.
        base = replace(shipped[n % len(shipped)], select=(), remove=())
        copy = n // len(shipped)
        if copy == 0:
            documents.append(base)
        else:
            url = base.url + ("&" if "?" in base.url else "?") + f"copy={copy}"
            documents.append(replace(base, platform=f"{base.platform}-{copy}", url=url))
    return documents


def make_watchlist(documents: list[Document]) -> Watchlist:
    platforms: dict[str, list[Document]] = {}
    for document in documents:
        platforms.setdefault(document.platform, []).append(document)
    return Watchlist(
        ROOT / "watchlist.yaml",
        platforms={
            p: Platform(p, p.replace("-", " ").title(), ("web",), tuple(docs))
            for p, docs in platforms.items()
        },
    )


def policy_text(document: Document) -> str:
    paragraph = (
        f"These terms govern your use of {document.platform}. By using the service you agree "
        "to them. We may change them; we will tell you when we do. Disputes are settled in the "
        "courts of the State of California."
    )
    return f"# {document.name}\n\n" + "\n\n".join([paragraph] * 3) + "\n"


class StandInPool:
    """The browser's part of a fetch, as `FetchPool.fetch` returns it, for one night."""

    def __init__(self, night: int, rng: random.Random):
        self.night, self.rng = night, rng

    def _started_at(self) -> str:
        moment = START + timedelta(days=self.night, seconds=self.rng.uniform(0, 900))
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    async def fetch(self, document: Document, known: str | None = None) -> FetchResult:
        result = FetchResult(document, document.url, self._started_at(), document.render)
        result.duration_ms = self.rng.randint(1_200, 6_000)
        result.final_url, result.http_status = document.url, 200
        text = policy_text(document)
        title = f"{document.name} | {document.platform.title()}"
        body = "".join(
            f"<h1>{line[2:]}</h1>" if line.startswith("# ") else f"<p>{line}</p>"
            for line in text.splitlines()
            if line
        )
        # As the browser does: the page's only <main> is the extraction input it fingerprints.
        reduced = f"<html><body><main>{body}</main></body></html>"
        fingerprint = input_fingerprint(document, "main", title, reduced)
        if fingerprint == known:
            result.page = Page("", 200, document.url, "text/html", title, fingerprint=known)
        else:
            html = f"<html><head><title>{title}</title></head><body><main>{body}</main></body>"
            result.page = Page(
                html, 200, document.url, "text/html", title,
                reduced=reduced, region="main", fingerprint=fingerprint,
            )  # fmt: skip
        return result


def night(home: Path, watchlist: Watchlist, documents: list[Document], n: int) -> dict[str, int]:
    """One run as `monitor.run._run` records it, without the report and notifications."""
    store = Store(home)
    store.db.execute("PRAGMA synchronous=OFF")  # speed only: the file's layout is the same
    rng = random.Random(n)
    pool = StandInPool(n, rng)
    stamp = (START + timedelta(days=n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    run_id = store.start_run(stamp, None)
    for document in documents:
        register_document(store, watchlist, document)

    async def all_documents() -> list[str]:
        stage_seconds: dict[str, float] = {}
        outcomes = []
        for document in documents:
            outcome = await check_document(store, pool, run_id, document, stage_seconds)  # type: ignore[arg-type]
            outcomes.append(outcome.recorded.outcome if outcome.recorded else "failed")
        return outcomes

    outcomes = asyncio.run(all_documents())
    counts = {k: outcomes.count(k) for k in ("baseline", "unchanged", "new", "failed")}
    stats = {"wall_seconds": 61.234, "launch_seconds": 0.812, "fetch_seconds": 3012.113,
             "extract_seconds": 0.0, "store_seconds": 1.734, "diff_seconds": 0.0,
             "flag_seconds": 0.0}  # fmt: skip
    store.finish_run(
        run_id,
        stamp,
        {"documents": len(documents), "unchanged": counts["unchanged"] + counts["baseline"],
         "changed": counts["new"], "failed": counts["failed"]},
        stats,
    )  # fmt: skip
    store.close()
    return counts


def dbstat(home: Path) -> dict[str, int]:
    store = Store(home)
    try:
        rows = store.db.execute("select name, sum(pgsize) from dbstat group by name").fetchall()
        return {name: int(size) for name, size in rows}
    finally:
        store.close()


def fetch_row_bytes(home: Path) -> dict[str, Any]:
    """The last fetch row, as the table stores it: which columns hold a value."""
    store = Store(home)
    try:
        row = store.db.execute("select * from fetches order by id desc limit 1").fetchone()
        names = [d[0] for d in store.db.execute("select * from fetches limit 0").description]
        return {k: v for k, v in zip(names, row, strict=True) if v is not None}
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--nights", type=int, default=30, help="unchanged nights after the first")
    parser.add_argument("--keep", type=Path, help="build the home folder here and keep it")
    args = parser.parse_args()

    documents = make_documents(args.documents)
    watchlist = make_watchlist(documents)
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        home = args.keep or Path(tmp)
        home.mkdir(parents=True, exist_ok=True)
        if (home / "monitor.db").exists():
            sys.exit(f"{home} already has a monitor.db: give an empty folder")
        first = night(home, watchlist, documents, 0)
        assert first["baseline"] == len(documents), first
        size_before, pages_before = (home / "monitor.db").stat().st_size, dbstat(home)
        for n in range(1, args.nights + 1):
            counts = night(home, watchlist, documents, n)
            assert counts["unchanged"] == len(documents), f"night {n}: {counts}"
        size_after, pages_after = (home / "monitor.db").stat().st_size, dbstat(home)
        example = fetch_row_bytes(home)

    rows = len(documents) * args.nights
    grown = size_after - size_before
    per_night = grown / rows
    print(f"{len(documents):,} documents, {args.nights} unchanged nights after the first "
          f"({rows:,} fetches)")  # fmt: skip
    print(f"monitor.db grew {grown / 1e6:.2f} MB: {per_night:.1f} bytes per document and night")
    print()
    print("dbstat, growth over the unchanged nights (pages of 4 KB; B = bytes per document-night):")
    names = sorted(set(pages_before) | set(pages_after))
    growth = {n: pages_after.get(n, 0) - pages_before.get(n, 0) for n in names}
    for name in sorted(names, key=lambda n: -growth[n]):
        if growth[name]:
            print(f"  {name:<40} {growth[name] / 1e3:>10,.0f} KB  {growth[name] / rows:6.1f} B")
    total = sum(growth.values())
    print(f"  {'total':<40} {total / 1e3:>10,.0f} KB  {total / rows:6.1f} B")
    print()
    print("a stored unchanged-night fetch row (columns holding a value):")
    for key, value in example.items():
        print(f"  {key} = {value!r}")
    print()
    per_year = per_night * 1000 * 365 / 1e6
    verdict = "under" if per_year < TARGET_MB_PER_YEAR else "ABOVE"
    print(f"projected: 1,000 documents x 365 unchanged nights = {per_year:.1f} MB "
          f"({verdict} the {TARGET_MB_PER_YEAR} MB target)")  # fmt: skip


if __name__ == "__main__":
    main()
