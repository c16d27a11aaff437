"""The HTML report: a static site in `reports/` (home folder) built from the records.

    build_site(store)          every page (`tos-monitor report`)
    update_site(store, run_id) only the pages a nightly run changed (called at the end of a run)

Pages (all plain files that work from file:// or any web server; see docs/report.md):

    index.html                          every document, its status, pending changes, checklists
    documents/<platform>.<doc>.html     a document's timeline of versions and changes
    changes/<id>.html                   one change: header, flags, inline / side-by-side diff
    versions/<id>.html                  the full text of one version
    platforms/<platform>.html           the reviewer checklist of a platform
    agency.html                         the agency's own pages: cookies and third parties
    assets/report.css, assets/report.js copied from templates/assets/

Policy text is hostile input: it only ever reaches a page through Jinja2 with autoescape on, and
no template marks page text safe.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from monitor.categories import CATEGORIES, SEVERITY_ORDER, Category, Family
from monitor.report.checklist import (
    Answers,
    ChecklistCache,
    answer_since,
    combine,
    merge_timelines,
)
from monitor.report.data import (
    SEVERITIES,
    ChangeInfo,
    DocumentInfo,
    PlatformInfo,
    Site,
    VersionInfo,
    load_diff,
    load_site,
    load_text,
)
from monitor.report.diffview import diff_view, heading_level, text_runs
from monitor.report.site import PAGE as AGENCY_PAGE
from monitor.report.site import context as agency_context
from monitor.report.site import load_agency
from monitor.report.svg import TimelineEvent, parse_time, sparkline, timeline
from monitor.report.write import BuildStats, SiteWriter, remove_temporaries, write_atomic
from monitor.resources import TEMPLATES, cache_dir
from monitor.store import Store

REPORT_DIR = "reports"
CACHE_DIR = ".cache"
LAST_BUILD = "last-build.json"
ASSETS = ("report.css", "report.js", "favicon.svg")
PENDING_ON_INDEX = 100  # the index lists this many pending changes; document pages list all


# --- Templates -----------------------------------------------------------------------------------


def when(value: str | None) -> str:
    """`2026-11-24T03:00:01.123Z` -> `2026-11-24 03:00 UTC` (UTC, like the records)."""
    if not value:
        return "—"
    return parse_time(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def day(value: str | None) -> str:
    return parse_time(value).astimezone(UTC).strftime("%Y-%m-%d") if value else "—"


def plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def short_title(category: Category) -> str:
    """ "Indemnification / hold harmless" -> "Indemnification": fits a table cell."""
    return category.title.split(" / ")[0].split(", ")[0]


def safe_href(url: str | None) -> str:
    """Only web links from the watchlist become links; anything else (javascript:) does not."""
    return url if url and url.startswith(("https://", "http://")) else "#"


class _CompiledTemplates(jinja2.FileSystemBytecodeCache):
    """Jinja's compiled templates, kept between runs in the user's cache folder: a quiet night's
    report update compiled the index's three templates again each night, after the browser had
    closed (measured in a warm 40-document run: 47 ms -> 26 ms for the update; a night with
    changes compiles the document, version and change templates too). Jinja checks each entry
    against its template's source and its own version; the folder is named by the templates'
    and the report code's fingerprint (so environment options are covered too), and folders of
    other fingerprints are removed when a new one is made. It is only a cache: an entry that
    cannot be read is compiled again, and where the folder cannot be written templates compile
    as before."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # noqa: BLE001 - a damaged entry is a miss, compiled again
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with suppress(OSError):
            super().dump_bytecode(bucket)


def _template_cache(templates: Path) -> _CompiledTemplates | None:
    base = cache_dir("report-templates")
    if base is None:
        return None
    folder = base / site_fingerprint(templates)
    try:
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            for other in base.iterdir():  # compiled by other versions of the templates or code
                if other != folder and other.is_dir():
                    shutil.rmtree(other, ignore_errors=True)
    except OSError:
        return None
    return _CompiledTemplates(str(folder))


@lru_cache(maxsize=4)
def environment(templates: Path = TEMPLATES) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates),
        bytecode_cache=_template_cache(templates),
        autoescape=True,  # every template, .html or .svg: policy text is hostile
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(when=when, day=day, short_title=short_title, safe_href=safe_href)
    env.globals.update(
        plural=plural,
        categories=CATEGORIES,
        severities=SEVERITIES,
        heading_level=heading_level,
    )
    return env


def site_fingerprint(templates: Path = TEMPLATES) -> str:
    """Templates and report code: when they change, the next update rebuilds every page."""
    digest = hashlib.sha256()
    files = sorted(templates.rglob("*")) + sorted(Path(__file__).parent.glob("*.py"))
    for path in files:
        # Python's caches are no template (an installed monitor/_templates may hold them).
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


# --- Page data ---------------------------------------------------------------------------------


@dataclass
class DocumentAnswer:
    document: DocumentInfo
    item: dict[str, Any]  # one entry of the checklist: answer, evidence, ...
    since: str | None


@dataclass
class Question:
    category: Category
    answer: str
    since: str | None
    documents: list[DocumentAnswer]
    reviewed: str | None = None  # the platform's answer when it was last reviewed

    @property
    def changed_since_review(self) -> bool:
        return self.reviewed is not None and self.reviewed != self.answer


# Which questions a document answers, by its type (`document_type`: from its id and display name,
# as the index's Type column shows it). The flagger's answers cannot tell: on the corpus's 72
# versions, terms of service answer 50-83% of the privacy questions (they speak of data and
# cookies too), so "the family whose questions its text answers most" calls 19 of 36 terms
# documents privacy policies. A document of another type shows every question.
TYPE_FAMILIES: dict[str, Family] = {
    "Privacy policy": "privacy",
    "Cookie policy": "privacy",
    "Terms of service": "terms",
    "Community guidelines": "terms",
}


@dataclass
class RowChecklist:
    """The index's checklist cell of one document: the platform's answers to the questions of
    the document's family, the most severe of them one by one, the rest counted."""

    family: Family | None  # None: a document of no known type, every question
    shown: list[tuple[Category, str]]  # (question, the platform's answer)
    others: dict[str, int]  # answer -> how many of the family's other questions got it

    @property
    def others_label(self) -> str:
        return f"Other {self.family} questions" if self.family else "Other questions"


def row_checklist(document: DocumentInfo, answers: dict[str, str]) -> RowChecklist | None:
    """The checklist cell of `document`'s row, from its platform's `answers` (None: no text yet)."""
    if not answers:
        return None
    family = TYPE_FAMILIES.get(document.type)
    questions = [c for c in CATEGORIES.values() if family is None or c.family == family]
    top = min(SEVERITY_ORDER[c.severity] for c in questions)
    others = dict.fromkeys(("yes", "no", "unclear"), 0)
    for cat in questions:
        if SEVERITY_ORDER[cat.severity] != top:
            others[answers[cat.id]] += 1
    shown = [(c, answers[c.id]) for c in questions if SEVERITY_ORDER[c.severity] == top]
    return RowChecklist(family, shown, others)


def snapshot_href(root: str, path: str) -> str:
    """Link from a page to a file of the home folder (snapshots/...), one level above reports/."""
    return f"{root}../{quote(path)}" if path else ""


class Builder:
    """Renders pages of one site state into `reports/`."""

    def __init__(self, store: Store, stats: BuildStats, now: datetime | None = None):
        self.store = store
        self.out = store.home / REPORT_DIR
        self.site: Site = load_site(store)
        self.agency = load_agency(store)  # None until the agency site was audited
        self.writer = SiteWriter(self.out, stats)
        self.cache = ChecklistCache(self.out / CACHE_DIR)
        self.now = now or datetime.now(UTC)
        self.env = environment()
        self.generated = self.now.strftime("%Y-%m-%d %H:%M UTC")

    def render(self, template: str, relative: str, **context: Any) -> None:
        root = "../" * relative.count("/")
        html = self.env.get_template(template).render(root=root, **context)
        self.writer.write(relative, html)

    # checklists ---------------------------------------------------------------------------------
    def answers(self, document: DocumentInfo, version: VersionInfo) -> Answers:
        return self.cache.answers_of(
            document.key, version.sha256, lambda: load_text(self.store, version.id)
        )

    def checklist(self, document: DocumentInfo) -> list[dict[str, Any]] | None:
        current = document.current
        if current is None:
            return None
        return self.cache.checklist_of(
            document.key, current.sha256, lambda: load_text(self.store, current.id)
        )

    def current_answers(self, platform: PlatformInfo) -> dict[str, str]:
        """Category -> the platform's combined answer now (documents never fetched left out)."""
        answers = [self.answers(d, d.current) for d in platform.documents if d.current]
        if not answers:
            return {}
        return {cat: combine(a.get(cat, "unclear") for a in answers) for cat in CATEGORIES}

    def answer_timeline(self, document: DocumentInfo) -> list[tuple[str, Answers]]:
        return [(began, self.answers(document, v)) for began, v, _ in document.states()]

    def last_review(self, platform: PlatformInfo) -> ChangeInfo | None:
        """The platform's change with the most recent decision (on any of its documents)."""
        reviewed = [c for d in platform.documents for c in d.changes if c.review]
        return max(reviewed, key=lambda c: c.review.id if c.review else 0, default=None)

    def reviewed_answers(
        self,
        platform: PlatformInfo,
        change: ChangeInfo,
        timelines: dict[str, list[tuple[str, Answers]]],
    ) -> dict[str, str]:
        """The platform's answers as they were reviewed: the reviewed change's document at the
        change's new version, every other document at its version current when the decision
        was recorded. Only cached per-version answers (the timelines) are read."""
        if change.review is None:
            return {}
        decided = parse_time(change.review.decided_at)
        answers = []
        for document in platform.documents:
            reviewed = document.version(change.to_version_id)
            if document.key == change.document_key and reviewed is not None:
                answers.append(self.answers(document, reviewed))
                continue
            held = [
                a for began, a in timelines.get(document.key, []) if parse_time(began) <= decided
            ]
            if held:
                answers.append(held[-1])
        if not answers:
            return {}
        return {cat: combine(a.get(cat, "unclear") for a in answers) for cat in CATEGORIES}

    def questions(self, platform: PlatformInfo, review: ChangeInfo | None = None) -> list[Question]:
        documents = [d for d in platform.documents if d.current]
        timelines = {d.key: self.answer_timeline(d) for d in documents}
        merged = merge_timelines(timelines)
        reviewed = self.reviewed_answers(platform, review, timelines) if review else {}
        checklists = {
            d.key: {item["category"]: item for item in self.checklist(d) or []} for d in documents
        }
        questions = []
        for category in CATEGORIES.values():
            per_document = [
                DocumentAnswer(
                    d, checklists[d.key][category.id], answer_since(timelines[d.key], category.id)
                )
                for d in documents
            ]
            answer = combine(a.item["answer"] for a in per_document)
            since = answer_since(merged, category.id)
            questions.append(
                Question(category, answer, since, per_document, reviewed.get(category.id))
            )
        return questions

    # pages --------------------------------------------------------------------------------------
    def filling_checklists(self, workers: int) -> AbstractContextManager[None]:
        """Every version's answers, flagged in `workers` processes when many are missing."""
        versions = {
            d.key: [(v.sha256, v.id) for v in d.versions] for d in self.site.documents.values()
        }
        current = {
            d.key: d.current.sha256 for d in self.site.documents.values() if d.current is not None
        }
        return self.cache.filling(self.store.home / "monitor.db", versions, workers, current)

    def assets(self) -> None:
        for name in ASSETS:
            self.writer.write(f"assets/{name}", (TEMPLATES / "assets" / name).read_bytes())

    def index(self) -> None:
        documents = sorted(
            self.site.documents.values(),
            key=lambda d: (d.row.get("last_changed") or "", d.key),
            reverse=True,
        )
        platforms = list(self.site.platforms.values())
        answers = {p.id: self.current_answers(p) for p in platforms}
        pending = sorted(
            (c for d in documents for c in d.open_changes), key=lambda c: c.id, reverse=True
        )
        self.render(
            "index.html",
            "index.html",
            documents=documents,
            documents_by_key=self.site.documents,
            platforms=platforms,
            checklists={d.key: row_checklist(d, answers[d.platform]) for d in documents},
            sparklines={p.id: self.platform_sparkline(p) for p in platforms},
            pending=pending[:PENDING_ON_INDEX],
            pending_total=len(pending),
            failing=[d for d in documents if d.failing],
            agency=self.agency,
            generated=self.generated,
        )

    def agency_page(self) -> None:
        if self.agency is not None:
            self.render(
                AGENCY_PAGE, AGENCY_PAGE, **agency_context(self.agency), generated=self.generated
            )

    def platform_sparkline(self, platform: PlatformInfo) -> Any:
        times = [parse_time(c.detected_at) for d in platform.documents for c in d.changes]
        return sparkline(times, self.now)

    def platform(self, platform: PlatformInfo) -> None:
        review = self.last_review(platform)
        self.render(
            "platform.html",
            f"platforms/{platform.id}.html",
            platform=platform,
            questions=self.questions(platform, review),
            review=review,
            reviewed_document=self.site.documents[review.document_key] if review else None,
            generated=self.generated,
        )

    def document(self, document: DocumentInfo) -> None:
        root = "../"
        events = [
            TimelineEvent(
                at=parse_time(began),
                lane=version.ordinal - 1,
                kind=change.kind if change else "baseline",
                severity=change.severity if change else "none",
                href=f"{root}changes/{change.id}.html" if change else "",
                title=_event_title(change, version) if change else "",
            )
            for began, version, change in document.states()
        ]
        self.render(
            "document.html",
            f"documents/{document.slug}.html",
            document=document,
            platform=self.site.platforms[document.platform],
            picture=timeline(events, len(document.versions), self.now),
            snapshot_href=snapshot_href,
            generated=self.generated,
        )

    def change(self, change: ChangeInfo) -> None:
        document = self.site.documents[change.document_key]
        self.render(
            "change.html",
            f"changes/{change.id}.html",
            document=document,
            change=change,
            old=document.version(change.from_version_id),
            new=document.version(change.to_version_id),
            view=diff_view(load_diff(self.store, change.id)),
            flagged=flagged_clauses(change.flags),
            answer_changes=self.answer_changes(document, change),
            snapshot_href=snapshot_href,
        )

    def answer_changes(self, document: DocumentInfo, change: ChangeInfo) -> list[AnswerChange]:
        """The checklist answers of this document that the change turns, each with the
        clauses of its category the change added, removed or modified (the reason)."""
        old = document.version(change.from_version_id)
        new = document.version(change.to_version_id)
        if old is None or new is None:
            return []
        before, after = self.answers(document, old), self.answers(document, new)
        reasons = {cat.id: items for cat, items in flagged_clauses(change.flags)}
        return [
            AnswerChange(
                cat,
                before.get(cat.id, "unclear"),
                after.get(cat.id, "unclear"),
                reasons.get(cat.id, []),
            )
            for cat in CATEGORIES.values()
            if before.get(cat.id, "unclear") != after.get(cat.id, "unclear")
        ]

    def version(self, version: VersionInfo) -> None:
        document = self.site.documents[version.document_key]
        self.render(
            "version.html",
            f"versions/{version.id}.html",
            document=document,
            version=version,
            runs=text_runs(
                (heading_level(block), block)
                for block in load_text(self.store, version.id).split("\n")
                if block.strip()
            ),
            snapshot_href=snapshot_href,
        )


def _event_title(change: ChangeInfo, version: VersionInfo) -> str:
    what = "Revert to" if change.kind == "revert" else "Change to"
    return f"{day(change.detected_at)}: {what} version {version.ordinal} ({change.severity})"


@dataclass(frozen=True)
class AnswerChange:
    """One checklist answer a change turns ("unclear" -> "yes"), and the clauses behind it."""

    category: Category
    before: str
    after: str
    clauses: list[dict[str, Any]]  # items of `flagged_clauses` for this category


def flagged_clauses(flags: dict[str, Any]) -> list[tuple[Category, list[dict[str, Any]]]]:
    """The change's flagged clauses grouped by category, deal breakers first."""
    groups: dict[str, list[dict[str, Any]]] = {cat: [] for cat in CATEGORIES}
    for kind in ("added", "removed"):
        for entry in flags.get(kind, []):
            for cat in entry.get("categories", []):
                item = {"kind": kind, "text": entry["text"], "heading": entry.get("heading", "")}
                groups.setdefault(cat, []).append(item)
    for entry in flags.get("modified", []):
        for cat in entry.get("categories", []):
            groups.setdefault(cat, []).append(
                {
                    "kind": "modified",
                    "text": entry["new"]["text"],
                    "old_text": entry["old"]["text"],
                    "heading": entry.get("heading", ""),
                }
            )
    return [(CATEGORIES[c], items) for c, items in groups.items() if items and c in CATEGORIES]


# --- Builds --------------------------------------------------------------------------------------


@contextmanager
def _build_lock(out: Path) -> Iterator[None]:
    """One builder at a time per site: a manual `report` waits for the nightly update."""
    (out / CACHE_DIR).mkdir(parents=True, exist_ok=True)
    with open(out / CACHE_DIR / "build.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        remove_temporaries(out)  # a build killed part-way left them; none is being written now
        yield


def build_site(store: Store, now: datetime | None = None, workers: int = 1) -> BuildStats:
    """Render every page of the site.

    `workers` > 1 flags the versions whose checklist answers are not cached yet in that many
    processes (see `ChecklistCache.fill` for the one condition on the calling program).
    """
    stats = BuildStats("full")
    with _build_lock(store.home / REPORT_DIR):
        builder = Builder(store, stats, now)
        _render_all(builder, workers)
        builder.cache.save()
        _mark_built(builder.out)
        return _record_stats(builder.out, stats)


def _render_all(builder: Builder, workers: int) -> None:
    site = builder.site
    builder.assets()
    with builder.filling_checklists(workers):
        # The pages that need no checklist answers, while workers flag versions.
        for document in site.documents.values():
            for version in document.versions:
                builder.version(version)
    for document in site.documents.values():
        for change in document.changes:
            builder.change(change)  # shows the answers it turns: after the workers
        builder.document(document)
    for platform in site.platforms.values():
        builder.platform(platform)
    builder.agency_page()
    builder.index()


def _mark_built(out: Path) -> None:
    data = json.dumps({"fingerprint": site_fingerprint()}).encode()
    write_atomic(out / CACHE_DIR / "site.json", data)


def _record_stats(out: Path, stats: BuildStats) -> BuildStats:
    """Keep what the last build did (`.cache/last-build.json`): the nightly update has no other
    place to say which pages it rewrote."""
    stats.finish()
    write_atomic(out / CACHE_DIR / LAST_BUILD, json.dumps(stats.as_json(), indent=1).encode())
    return stats


def _built_fingerprint(out: Path) -> str | None:
    try:
        return str(json.loads((out / CACHE_DIR / "site.json").read_text())["fingerprint"])
    except (FileNotFoundError, ValueError, KeyError):
        return None


@dataclass
class Affected:
    documents: set[str]
    changes: set[int]
    versions: set[int]


def affected_by_run(store: Store, site: Site, run_id: int) -> Affected:
    """What one run changed: documents with a new version, change or failure, or that recovered
    from failing (their status changed); the run's changes and the change before each (its
    "next change" link); the run's new versions."""
    # With the runs killed before their report was updated: their pages are owed too.
    runs = set(store.unreported_runs(run_id))
    documents: set[str] = set()
    for each in sorted(runs):
        for row in store.run_fetches(each):
            key, outcome = row["document_key"], row["outcome"]
            if outcome != "unchanged" or _failed_before(store, key, each):
                documents.add(key)
    # A run killed between a version's transaction and its fetch row left no fetch to tell.
    documents |= {
        key for key, doc in site.documents.items() if any(v.run_id in runs for v in doc.versions)
    }
    changes = {c.id for c in site.changes.values() if c.run_id in runs}
    changes |= {p for c in list(changes) if (p := site.changes[c].previous_id) is not None}
    versions = {
        v.id
        for key in documents
        if key in site.documents
        for v in site.documents[key].versions
        if v.run_id in runs
    }
    return Affected(documents & set(site.documents), changes, versions)


def _failed_before(store: Store, key: str, run_id: int) -> bool:
    previous = store.last_fetch(key, before_run=run_id)
    return previous is not None and previous["outcome"] == "failed"


def update_site(
    store: Store, run_id: int, now: datetime | None = None, workers: int = 1
) -> BuildStats:
    """Re-render only the pages a run changed; the whole site when it was never built or the
    templates or report code changed since (`workers` as for `build_site`)."""
    out = store.home / REPORT_DIR
    if not (out / "index.html").exists() or _built_fingerprint(out) != site_fingerprint():
        return build_site(store, now, workers)
    stats = BuildStats("incremental")
    with _build_lock(out):
        builder = Builder(store, stats, now)
        affected = affected_by_run(store, builder.site, run_id)
        for version_id in sorted(affected.versions):
            builder.version(builder.site.versions[version_id])
        for change_id in sorted(affected.changes):
            builder.change(builder.site.changes[change_id])
        platforms = set()
        for key in sorted(affected.documents):
            document = builder.site.documents[key]
            builder.document(document)
            platforms.add(document.platform)
        for platform in sorted(platforms):
            builder.platform(builder.site.platforms[platform])
        builder.agency_page()  # every run audits the site: a page left alone if its bytes match
        builder.index()
        builder.cache.save()
        return _record_stats(out, stats)


def update_for_review(store: Store, change_id: int, now: datetime | None = None) -> BuildStats:
    """Re-render what shows a change's decision: its page, its document, the platform's page
    (its "last reviewed" line and the answers changed since) and the index."""
    out = store.home / REPORT_DIR
    if not (out / "index.html").exists() or _built_fingerprint(out) != site_fingerprint():
        return build_site(store, now)
    stats = BuildStats("incremental")
    with _build_lock(out):
        builder = Builder(store, stats, now)
        change = builder.site.changes.get(change_id)
        if change is not None:
            builder.change(change)
            document = builder.site.documents.get(change.document_key)
            if document is not None:
                builder.document(document)
                builder.platform(builder.site.platforms[document.platform])
        builder.index()
        builder.cache.save()
        return _record_stats(out, stats)


def update_after_run(store: Store, run_id: int, workers: int = 1) -> BuildStats | None:
    """The nightly run's hook: a report problem is reported, never fails the recorded run."""
    try:
        return update_site(store, run_id, workers=workers)
    except Exception as exc:  # noqa: BLE001 - the records are safe; the report can be rebuilt
        print(
            f"warning: the report was not updated ({type(exc).__name__}: {exc}); "
            "run 'tos-monitor report' to rebuild it",
            file=sys.stderr,
        )
        return None
