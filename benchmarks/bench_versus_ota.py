"""tos-monitor against Open Terms Archive's engine on the same replay site, in one run.

    python benchmarks/bench_versus_ota.py                  # 9 documents, 12 nights, both tools
    python benchmarks/bench_versus_ota.py --no-ota         # tos-monitor only
    python benchmarks/bench_versus_ota.py --ota-dir DIR    # where the engine is installed

The site: N documents (default 9) made of real policy histories (successive versions of the same
document, from ../shared/corpus when present, else tests/fixtures/corpus), served on 127.0.0.1 as
pages with the nightly noise of benchmarks/bench_run.py (time stamps, tokens, promos; a quarter
put in by JavaScript after 300 ms). One snapshot per night for 12 nights: every night new noise,
on some nights a document moves to its next real version, and two flips (a document goes back to
an earlier wording: a real A -> B -> A blink, and a version reverted). Every night's pages are
generated once, up front, so both tools get the same bytes. Each night runs one tool after the
other (which one first alternates), so a shared machine's drifting load weighs on both alike;
`--order series` runs one tool's 12 nights, then the other's.

Each tool gets a fresh home and is run once per night as its users run it from cron:
- tos-monitor: `tos-monitor run --json` (its own find_chromium browser, default settings except
  the per-host bound raised to the concurrency, since every document is on one host here);
- Open Terms Archive: `ota track` with declarations for the same documents (`fetch`, `select`,
  `executeClientScripts`), versions and snapshots in local git repositories, no publishing, no
  notifier, no reporter, Chromium = the same browser through PUPPETEER_EXECUTABLE_PATH.

Printed per tool: per-night wall time, medians (all nights, quiet = noise-only nights, nights with
a change or flip), peak memory of the whole process tree (summed PSS from /proc/<pid>/smaps_rollup
over every descendant, sampled every ~100 ms), false alerts (a change reported for a document
whose text did not change that night), missed changes, and how each flip was taken; then the
ratio OTA / tos-monitor night by night.

Installing the engine (outside this repository; nothing of it is committed). Puppeteer's own
Chrome download must be skipped, the benchmark hands it the system headless shell:

    mkdir -p /work/ota-engine && cd /work/ota-engine && npm init -y
    PUPPETEER_SKIP_DOWNLOAD=1 npm install @opentermsarchive/engine

Puppeteer launches Chromium without flags, and Chromium refuses to start as root without
--no-sandbox, so PUPPETEER_EXECUTABLE_PATH points at a two-line script written to the run's
temporary folder that execs find_chromium()'s browser with the sandbox and network flags every
tool here uses. If the engine is not installed or does not run, tos-monitor's side still runs and
the reason is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_run import timed, write_watchlist  # noqa: E402

from monitor.fetch import CHROMIUM_FLAGS, find_chromium  # noqa: E402
from monitor.watchlist import Settings  # noqa: E402
from tests.sites import PageServer, policy_page, read_fixture_md  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "corpus"
# The shared corpus sits next to the checkout (../shared), or next to its parent for a worktree.
SHARED = next(
    (p / "shared" / "corpus" for p in ROOT.parents if (p / "shared" / "corpus").is_dir()),
    ROOT.parent / "shared" / "corpus",
)
OTA_BIN = Path("node_modules/@opentermsarchive/engine/bin/ota.js")
# The flags every Chromium here gets (sandbox off: we run as root), from the product's own list;
# tos-monitor's extra tuning (its --enable-features) is not given to the other tool, and
# Puppeteer chooses its own headless mode.
OTA_CHROMIUM_FLAGS = [
    flag for flag in CHROMIUM_FLAGS if not flag.startswith(("--headless", "--enable-features"))
]
SAMPLE_SECONDS = 0.1
NIGHT_TIMEOUT = 600


# ---------------------------------------------------------------------------------------------
# The site: real histories, a schedule of changes and flips, noise every night


def histories() -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The A -> B -> A blink (three texts) and the documents' version histories (oldest first),
    each with where it comes from."""
    if SHARED.exists():
        flip = sorted((SHARED / "flapping" / "instagram-terms-of-service").glob("*.md"))
        docs = [sorted(d.glob("*.md")) for d in sorted(SHARED.glob("*/*")) if d.is_dir()]
        docs = [d for d in docs if len(d) >= 2 and "flapping" not in str(d[0])]
    else:
        flip = sorted((FIXTURES / "instagram-terms-of-service-flip").glob("*.md.gz"))
        docs = [sorted((FIXTURES / "facebook-terms-of-service").glob("*.md.gz"))]
    blink = [read_fixture_md(p) for p in flip]
    texts: list[tuple[str, list[str]]] = []
    for paths in docs:
        versions: list[str] = []
        for path in paths:
            text = read_fixture_md(path)
            if not versions or text != versions[-1]:  # keep only real changes
                versions.append(text)
        if len(versions) >= 2:
            source = paths[0].parent
            texts.append((f"{source.parent.name}/{source.name}", versions))
    return blink, texts


# Night -> events. ("next", i): document i moves to its next real version; ("blink", i, k):
# document 0 shows text k of the blink; ("back", i): document i goes back to its first wording.
SCHEDULE: dict[int, list[tuple]] = {
    3: [("next", 2)],
    5: [("next", 3), ("next", 4)],
    6: [("blink", 0, 1)],  # A -> B: a change
    7: [("blink", 0, 2)],  # B -> A: a flip back to an earlier wording
    9: [("next", 5), ("next", 1)],
    10: [("back", 2)],  # a flip back to the wording of night 1
}


@dataclass
class Night:
    number: int
    pages: dict[str, bytes]  # path -> body, generated once for both tools
    changed: set[int] = field(default_factory=set)  # documents with a new wording
    flipped: set[int] = field(default_factory=set)  # documents back to an earlier wording

    @property
    def kind(self) -> str:
        if self.number == 1:
            return "first"
        return "changes" if self.changed or self.flipped else "quiet"


def build_nights(n: int, nights: int, seed: int = 1) -> tuple[list[Night], list[bool], list[str]]:
    rng = random.Random(seed)
    blink, docs = histories()
    fallback = not SHARED.exists()
    # Document 0 is the real blink; the others cycle through the real histories, each starting
    # at a version late enough in its history to have a next one.
    versions: list[list[str]] = [blink]
    names = ["flapping/instagram-terms-of-service (real A, B, A)"]
    for i in range(1, n):
        name, history = docs[(i - 1) % len(docs)]
        names.append(f"{name} ({len(history)} versions)")
        if fallback:  # one history only: keep the documents distinct
            history = [f"# Document {i}\n\n{t}" for t in history]
        versions.append(history)
    position = [0] * n
    js = [i % 4 == 0 for i in range(n)]
    seen: list[list[str]] = [[] for _ in range(n)]
    result = []
    for number in range(1, nights + 1):
        changed, flipped = set(), set()
        for event in SCHEDULE.get(number, []):
            doc = event[1]
            if doc >= n:
                continue
            before = versions[doc][position[doc]]
            if event[0] == "next":
                position[doc] = min(position[doc] + 1, len(versions[doc]) - 1)
            elif event[0] == "blink":
                position[doc] = event[2]
            elif event[0] == "back":
                position[doc] = 0
            after = versions[doc][position[doc]]
            if after == before:
                continue
            (flipped if after in seen[doc] else changed).add(doc)
        pages = {}
        for i in range(n):
            text = versions[i][position[i]]
            if text not in seen[i]:
                seen[i].append(text)
            pages[f"/doc{i}"] = policy_page(text, rng, js=js[i]).encode("utf-8")
        result.append(Night(number, pages, changed, flipped))
    return result, js, names


def publish(server: PageServer, night: Night) -> None:
    from tests.sites import Route

    for path, body in night.pages.items():
        server.routes[path] = Route(body)


# ---------------------------------------------------------------------------------------------
# Running a tool's night and measuring it


@dataclass
class NightResult:
    wall: float
    peak_mb: float
    reported: dict[int, str]  # document -> how the tool reported it ("new", "revert", ...)
    failures: int


class TosMonitor:
    name = "tos-monitor"

    def __init__(self, home: Path, server: PageServer, n: int, concurrency: int):
        self.home = home
        # The watchlist bench_run writes: three in four documents name their element.
        write_watchlist(home, server, n, concurrency)
        script = Path(sys.executable).with_name("tos-monitor")
        self.command = [str(script) if script.exists() else sys.executable, "run", "--json"]
        if not script.exists():
            self.command[1:1] = ["-m", "monitor"]

    def night(self) -> NightResult:
        env = {**os.environ, "TOS_MONITOR_HOME": str(self.home)}
        wall, peak, out, err, code = timed(self.command, ROOT, env, SAMPLE_SECONDS, NIGHT_TIMEOUT)
        if code not in (0, 1):
            raise RuntimeError(f"tos-monitor run failed ({code}): {err[-2000:]}")
        summary = json.loads(out)
        reported = {
            int(c["document"][3:]): c["kind"] for c in summary["changes"] if c["kind"] != "baseline"
        }
        return NightResult(wall, peak, reported, len(summary["failures"]))


class OpenTermsArchive:
    name = "Open Terms Archive"

    def __init__(self, work: Path, engine: Path, server: PageServer, n: int, scripts: str):
        self.work = work
        self.engine = engine
        (work / "declarations").mkdir(parents=True)
        (work / "config").mkdir()
        for i in range(n):
            terms = {
                "fetch": server.url(f"/doc{i}"),
                "select": "#policy",
                # "all": every page in Chromium, as tos-monitor renders them (like for like);
                # "js": only the JavaScript-rendered ones, as OTA's contributors declare.
                "executeClientScripts": scripts == "all" or i % 4 == 0,
            }
            service = {"name": f"Doc{i}", "terms": {"Terms of Service": terms}}
            (work / "declarations" / f"Doc{i}.json").write_text(json.dumps(service, indent=2))
        git_store = {"publish": False, "author": {"name": "Bench", "email": "bench@localhost"}}
        config = {
            "@opentermsarchive/engine": {
                "collectionPath": "./",
                "recorder": {
                    "versions": {
                        "storage": {
                            "type": "git",
                            "git": {
                                **git_store,
                                "path": "./data/versions",
                                "snapshotIdentiferTemplate": "./data/snapshots/%SNAPSHOT_ID",
                            },
                        }
                    },
                    "snapshots": {
                        "storage": {"type": "git", "git": {**git_store, "path": "./data/snapshots"}}
                    },
                },
                "logger": {"sendMailOnError": False},
            }
        }
        (work / "config" / "default.json").write_text(json.dumps(config, indent=2))
        browser = find_chromium(Settings())
        wrapper = work / "chromium.sh"
        flags = " ".join(OTA_CHROMIUM_FLAGS)
        wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(browser)} {flags} "$@"\n')
        wrapper.chmod(0o755)
        self.env = {**os.environ, "PUPPETEER_EXECUTABLE_PATH": str(wrapper)}
        # No token, no API key: the notifier and the reporter stay off (the engine says so).
        for service in ("SENDINBLUE_API_KEY", "GITHUB_TOKEN", "GITLAB_TOKEN"):
            self.env.pop(f"OTA_ENGINE_{service}", None)
        self.command = ["node", str(engine / OTA_BIN), "track"]
        self.seen = 0

    def commits(self) -> list[str]:
        repo = self.work / "data" / "versions"
        if not (repo / ".git").exists():
            return []
        out = subprocess.run(
            ["git", "-C", str(repo), "log", "--reverse", "--format=%s"],
            capture_output=True,
            text=True,
        ).stdout
        return out.splitlines()

    def night(self) -> NightResult:
        wall, peak, out, err, code = timed(
            self.command, self.work, self.env, SAMPLE_SECONDS, NIGHT_TIMEOUT
        )
        if code != 0:
            raise RuntimeError(f"ota track failed ({code}): {(err or out)[-2000:]}")
        commits = self.commits()
        new, self.seen = commits[self.seen :], len(commits)
        reported = {}
        for subject in new:
            # "Record new changes of Doc3 Terms of Service"; "First record of" is the baseline.
            if subject.startswith("Record new changes of Doc"):
                reported[int(subject.split("Doc")[1].split()[0])] = "new"
        failures = sum(1 for line in (out + err).splitlines() if " error " in line.lower())
        return NightResult(wall, peak, reported, failures)


def ota_unavailable(engine: Path) -> str | None:
    if not shutil.which("node"):
        return "node is not installed"
    if not shutil.which("git"):
        return "git is not installed (the engine's recorder needs it)"
    if not (engine / OTA_BIN).exists():
        return (
            f"the engine is not installed in {engine} (no {OTA_BIN}); install it with: "
            f"mkdir -p {engine} && cd {engine} && npm init -y && "
            "PUPPETEER_SKIP_DOWNLOAD=1 npm install @opentermsarchive/engine"
        )
    return None


# ---------------------------------------------------------------------------------------------
# Reporting


@dataclass
class Score:
    false_alerts: int = 0
    missed: int = 0
    flips_as_new: int = 0
    flips_recognised: int = 0
    flips_unreported: int = 0


def score(nights: list[Night], results: list[NightResult]) -> Score:
    s = Score()
    for night, result in zip(nights, results, strict=False):
        if night.number == 1:
            continue
        for doc, kind in result.reported.items():
            if doc in night.flipped:
                if kind == "revert":
                    s.flips_recognised += 1
                else:
                    s.flips_as_new += 1
            elif doc not in night.changed:
                s.false_alerts += 1
        s.missed += len(night.changed - set(result.reported))
        s.flips_unreported += len(night.flipped - set(result.reported))
    return s


def median_of(nights: list[Night], results: list[NightResult], kind: str | None) -> float:
    walls = [
        r.wall
        for night, r in zip(nights, results, strict=False)
        if kind is None or night.kind == kind
    ]
    return statistics.median(walls) if walls else float("nan")


def summary_rows(nights: list[Night], runs: dict[str, list[NightResult]]) -> None:
    print(
        "\n| tool | per night (median) | quiet night | night with changes | first night "
        "| peak memory, whole tree (PSS) | false alerts | missed | flips |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, results in runs.items():
        s = score(nights, results)
        changes = [r.wall for n, r in zip(nights, results, strict=False) if n.kind == "changes"]
        changes_median = (
            f"{statistics.median(changes):.2f} s ({min(changes):.2f}-{max(changes):.2f} s)"
            if changes
            else "-"
        )
        flips = f"{s.flips_as_new} taken as new, {s.flips_recognised} as reverts" + (
            f", {s.flips_unreported} unreported" if s.flips_unreported else ""
        )
        print(
            f"| {name} | {median_of(nights, results, None):.2f} s "
            f"| {median_of(nights, results, 'quiet'):.2f} s "
            f"| {changes_median} "
            f"| {results[0].wall:.2f} s | {max(r.peak_mb for r in results):.0f} MB "
            f"| {s.false_alerts} | {s.missed} | {flips} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=9, help="documents (default 9)")
    parser.add_argument("--nights", type=int, default=12)
    parser.add_argument("--concurrency", type=int, default=4, help="tos-monitor's concurrency")
    parser.add_argument(
        "--ota-dir",
        type=Path,
        default=Path(os.environ.get("OTA_ENGINE_DIR", "/work/ota-engine")),
        help="folder where @opentermsarchive/engine is npm-installed (or $OTA_ENGINE_DIR)",
    )
    parser.add_argument("--no-ota", action="store_true", help="run tos-monitor only")
    parser.add_argument(
        "--order",
        choices=["nightly", "series"],
        default="nightly",
        help="nightly (default): each night both tools, one after the other; series: one "
        "tool's nights, then the other's",
    )
    parser.add_argument(
        "--ota-scripts",
        choices=["all", "js"],
        default="all",
        help="which OTA declarations set executeClientScripts: every page (like tos-monitor's "
        "browser rendering, default) or only the JavaScript-rendered ones",
    )
    args = parser.parse_args()

    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f}, Python {sys.version.split()[0]}, browser {find_chromium(Settings())}"
    )
    nights, js, names = build_nights(args.n, args.nights)
    sizes = [len(b) for b in nights[0].pages.values()]
    source = "../shared/corpus" if SHARED.exists() else "tests/fixtures/corpus"
    print(
        f"site: {args.n} documents from {source} ({sum(js)} JavaScript-rendered), pages "
        f"{min(sizes) // 1024}-{max(sizes) // 1024} KB, {args.nights} nights"
    )
    for i, name in enumerate(names):
        print(f"  doc{i}: {name}{', JavaScript-rendered' if js[i] else ''}")
    for night in nights:
        what = []
        if night.changed:
            what.append("new wording: " + ", ".join(f"doc{i}" for i in sorted(night.changed)))
        if night.flipped:
            what.append("flip back: " + ", ".join(f"doc{i}" for i in sorted(night.flipped)))
        print(f"  night {night.number:2}: {night.kind:<8} {'; '.join(what) or 'noise only'}")

    skipped = "--no-ota given" if args.no_ota else ota_unavailable(args.ota_dir)
    if not skipped:
        version = json.loads((args.ota_dir / OTA_BIN.parent.parent / "package.json").read_text())[
            "version"
        ]
    server = PageServer()
    runs: dict[str, list[NightResult]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ota-") as tmp:
        tools: list[TosMonitor | OpenTermsArchive] = []
        (Path(tmp) / "tos").mkdir()
        tools.append(TosMonitor(Path(tmp) / "tos", server, args.n, args.concurrency))
        if not skipped:
            tools.append(
                OpenTermsArchive(Path(tmp) / "ota", args.ota_dir, server, args.n, args.ota_scripts)
            )
        names = {
            tool: tool.name if tool.name == "tos-monitor" else f"{tool.name} engine {version}"
            for tool in tools
        }
        results: dict[TosMonitor | OpenTermsArchive, list[NightResult]] = {t: [] for t in tools}

        def run_night(tool: TosMonitor | OpenTermsArchive, night: Night) -> None:
            publish(server, night)
            result = tool.night()
            results[tool].append(result)
            reported = ", ".join(f"doc{d} {k}" for d, k in sorted(result.reported.items()))
            print(
                f"  {names[tool][:18]:<18} night {night.number:2} ({night.kind:<7}) "
                f"{result.wall:6.2f} s  peak {result.peak_mb:4.0f} MB  "
                f"reported: {reported or '-'}"
                + (f"  failures {result.failures}" if result.failures else ""),
                flush=True,
            )

        def run_ota(tool: OpenTermsArchive, night: Night) -> bool:
            nonlocal skipped
            try:
                run_night(tool, night)
                return True
            except RuntimeError as error:
                skipped = f"the engine did not run: {error}"
                print(f"  {skipped}")
                return False

        print()
        if args.order == "series":  # one tool's 12 nights, then the other's
            for tool in tools:
                load = os.getloadavg()
                print(f"{names[tool]} (load average at its start {load[0]:.2f} {load[1]:.2f}):")
                for night in nights:
                    if isinstance(tool, TosMonitor):
                        run_night(tool, night)
                    elif not run_ota(tool, night):
                        break
        else:
            # Night by night, one tool after the other on the same bytes (which one goes first
            # alternates): the load of a shared machine drifts over minutes, and this way each
            # night's ratio is measured under the same load.
            for night in nights:
                order = tools if night.number % 2 else tools[::-1]
                for tool in order:
                    if isinstance(tool, TosMonitor):
                        run_night(tool, night)
                    elif not skipped:
                        run_ota(tool, night)
        for tool in tools:
            if not (isinstance(tool, OpenTermsArchive) and skipped):
                runs[names[tool]] = results[tool]
    server.close()

    summary_rows(nights, runs)
    if skipped:
        print(f"\nOpen Terms Archive skipped: {skipped}")
    elif len(runs) == 2:
        tos, ota = runs.values()
        ratios = [o.wall / t.wall for t, o in zip(tos, ota, strict=False)]
        print("\nOTA / tos-monitor wall time, night by night:")
        print(
            "  " + "  ".join(f"{n.number}: {r:.2f}" for n, r in zip(nights, ratios, strict=False))
        )
        for kind in (None, "quiet", "changes"):
            label = kind or "all nights"
            ratio = median_of(nights, ota, kind) / median_of(nights, tos, kind)
            print(f"  median ratio ({label}): {ratio:.2f}")
        peak = max(r.peak_mb for r in ota) / max(r.peak_mb for r in tos)
        print(f"  peak memory ratio: {peak:.2f}")
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
