"""Warm nights of a watchlist laid out like the shipped one: documents spread over hosts.

    python benchmarks/bench_hosts.py                       # 10 hosts x 2 documents, 200 ms
    python benchmarks/bench_hosts.py --hosts 5 --per 4 --latency 0
    python benchmarks/bench_hosts.py --bundle 300         # each page loads its host's 300 KB
                                                           # script, as platforms' pages do

The shipped watchlist lists each platform's documents together (26 documents on 15 hosts, 10
of them with two or three) and keeps the default `per_host: 1`, `concurrency: 4`. This builds
such a site: one local server per host (each its own port, so its own host to the run), real
policy texts with nightly noise (`bench_run.py`'s pages, none JavaScript-rendered), each page
answered after `--latency` ms as a remote server would, listed host by host. It runs a first
night, then `--repeat` warm nights (fresh noise, no policy changed), each from a copy of the
first night's home, and prints their wall times. With `--bundle`, each page also loads a
script shared by its host's pages (cacheable for an hour, answered after the same latency), and
the benchmark prints how often a night downloaded it: a platform's documents share their script
bundles, which a run should download once a night, not once per document. Traffic stays on
127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_run import corpus_texts, page_text, timed  # noqa: E402

from tests.sites import PageServer, Route, policy_page  # noqa: E402


def night(home: Path) -> float:
    """One `tos-monitor run` in `home`, timed as bench_run times its nights (nothing sampling)."""
    wall, _, _, err, status = timed(
        [sys.executable, "-m", "monitor", "run", "--json"],
        ROOT,
        {**os.environ, "TOS_MONITOR_HOME": str(home)},
        sample_seconds=None,
    )
    if status not in (0, 1):
        raise SystemExit(f"run failed ({status}): {err}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--per", type=int, default=2, help="documents per host")
    parser.add_argument("--latency", type=float, default=200, help="ms before each answer")
    parser.add_argument("--repeat", type=int, default=5, help="warm nights")
    parser.add_argument(
        "--bundle", type=int, default=0, metavar="KB", help="a shared script of this size per host"
    )
    args = parser.parse_args()

    rng = random.Random(1)
    texts = corpus_texts()
    servers = [PageServer() for _ in range(args.hosts)]
    policies = [page_text(texts, n, rng) for n in range(args.hosts * args.per)]

    script = '<script src="/bundle.js"></script>' if args.bundle else ""
    for server in servers if args.bundle else []:
        filler = "/* " + "x" * (args.bundle * 1024) + " */\n"
        server.routes["/bundle.js"] = Route(
            (filler + "window.bundleLoaded = true;\n").encode(),
            content_type="text/javascript",
            delay=args.latency / 1000,
            headers={"Cache-Control": "public, max-age=3600"},
        )

    def publish() -> None:  # new noise every night, the same policies
        for n, text in enumerate(policies):
            page = policy_page(text, rng).replace("</head>", script + "</head>", 1)
            servers[n // args.per].page(f"/doc{n}", page, delay=args.latency / 1000)

    def bundles() -> int:
        return sum(server.hits.get("/bundle.js", 0) for server in servers)

    publish()
    documents = {
        f"doc{n}": {"url": servers[n // args.per].url(f"/doc{n}"), "select": ["#policy"]}
        for n in range(len(policies))
    }
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        watchlist = {
            "settings": {"admin": "web", "concurrency": 4, "per_host": 1},
            "reviewers": {"web": {"name": "Web"}},
            "platforms": {"p": {"name": "P", "reviewer": "web", "documents": documents}},
        }
        (home / "watchlist.yaml").write_text(yaml.safe_dump(watchlist, sort_keys=False))
        first = night(home)
        walls, downloads = [], []
        for repeat in range(args.repeat):
            publish()
            twin = Path(tmp) / f"night{repeat}"
            shutil.copytree(home, twin, symlinks=True)
            before = bundles()
            walls.append(night(twin))
            downloads.append(bundles() - before)
    for server in servers:
        server.close()
    print(
        f"{args.hosts} hosts x {args.per} documents, per_host 1, concurrency 4, "
        f"latency {args.latency:g} ms: first night {first:.2f} s; warm median "
        f"{statistics.median(walls):.2f} s ({min(walls):.2f}-{max(walls):.2f}, "
        f"{len(walls)} nights)"
    )
    if args.bundle:
        print(
            f"  each page loads its host's {args.bundle} KB script: downloaded "
            f"{statistics.median(downloads):g} times a night for {len(policies)} documents on "
            f"{args.hosts} hosts"
        )


if __name__ == "__main__":
    main()
