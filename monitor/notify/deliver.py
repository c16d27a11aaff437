"""Stage 7: tell the reviewers — one digest per reviewer and channel per run, fetch-failure alerts
to the admin, through Apprise (e-mail, Microsoft Teams workflows, Slack, ntfy, json:// ...).

Delivery loses nothing and repeats nothing:

* After a run, each change is queued once per reviewer as an *item* (`notify_items`); failures
  that reached `settings.failure_alert_after` runs are queued for the admin, once per streak,
  and relocations (a `select` that matched nothing, the text found elsewhere) once per document
  and proposed selector. A reviewer with changes still pending review after
  `settings.review_reminder_days` gets a reminder item, at most once per that many days.
* For every channel of a recipient, the items it has not delivered are rendered into one message
  (`notify_messages`), sent with a short in-run retry, and on success recorded per item and
  channel in `notify_deliveries`, whose primary key (item, channel) makes a second delivery
  impossible. A channel that failed keeps its items pending for the next run or
  `tos-monitor notify`; a channel that succeeded never sees them again.
* A channel added later does not receive the backlog that other channels already delivered
  (`notify_channels.since_item`), but does receive items no channel has delivered yet.

Secrets: watchlist URLs hold `${VAR}` placeholders filled from the environment only here, just
before use. Expanded URLs live in memory only. Every value that came from the environment, and
every password or private token Apprise parses out of a URL, is masked in what this module
records or logs, and Apprise's (and urllib3's) own log output is kept from the logs while it
sends, because at debug level it prints whole URLs.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import yaml

from monitor.notify import messages
from monitor.notify.messages import Content, Profile, Rendered
from monitor.notify.site import SiteNotice, site_notice
from monitor.pause import pause_at
from monitor.store import Store
from monitor.watchlist import Reviewer, Watchlist, page_label, reviewers_for, site_reviewers

log = logging.getLogger(__name__)

TRIES = 2  # attempts per message within one run
BACKOFF_SECONDS = 1.0  # pause between them; the next run (or `tos-monitor notify`) retries again
MIN_SECRET_CHARS = 4  # shorter values are not worth hiding, and masking them would garble text
MASK = "****"
# Teams rejects cards over ~28 KB; the card's own JSON and the title need some of that.
TEAMS_BODY_BUDGET = 24_000
TAG_ALL = "all"  # Apprise's reserved tag: every URL of the file
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Loggers that print URLs (with credentials) at debug level while a message is sent.
_GUARDED_LOGGERS = (
    "apprise",
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
    "urllib3.util.retry",
    "requests",
)


def now_utc() -> str:
    # Same format as monitor.fetch.now_utc, without importing the browser stage.
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --------------------------------------------------------------------------------------------
# Secrets


class Masker:
    """Replaces known secret values, in their raw and URL-encoded forms, by `MASK`."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, *values: str | None) -> None:
        for value in values:
            if value and len(value) >= MIN_SECRET_CHARS:
                self._values.update({value, quote(value, safe=""), unquote(value)})

    def __call__(self, text: str) -> str:
        # Longest first, so a secret that contains another is masked whole.
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, MASK)
        return text


class _Guard(logging.Filter):
    """While Apprise sends: keeps third-party records out of the logs, masked copies of their
    warnings and errors are kept as the failure's explanation."""

    def __init__(self, mask: Masker) -> None:
        super().__init__()
        self.mask = mask
        self.errors: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            self.errors.append(self.mask(record.getMessage()))
        return False


@contextmanager
def _guarded(mask: Masker) -> Iterator[_Guard]:
    guard = _Guard(mask)
    loggers = [logging.getLogger(name) for name in _GUARDED_LOGGERS]
    for logger in loggers:
        logger.addFilter(guard)
    try:
        yield guard
    finally:
        for logger in loggers:
            logger.removeFilter(guard)


def expand(template: str, env: dict[str, str], mask: Masker) -> tuple[str, list[str]]:
    """Fill `${VAR}`s; returns the URL and the names of unset variables (the URL is then
    unusable). Every value filled in becomes a secret of `mask`."""
    missing = [name for name in _PLACEHOLDER.findall(template) if name not in env]
    if missing:
        return "", sorted(set(missing))

    def fill(match: re.Match[str]) -> str:
        mask.add(env[match.group(1)])
        return env[match.group(1)]

    return _PLACEHOLDER.sub(fill, template), []


def _url_password(url: str) -> str:
    try:
        return urlsplit(url).password or ""
    except ValueError:  # e.g. a port that is not a number: Apprise will refuse the URL anyway
        return ""


def _private_values(plugin: Any) -> list[str]:
    """Passwords and the tokens Apprise itself treats as private (webhook ids, signatures)."""
    values = [str(getattr(plugin, "password", "") or "")]
    tokens = {**getattr(plugin, "template_tokens", {}), **getattr(plugin, "template_args", {})}
    for name, spec in tokens.items():
        if isinstance(spec, dict) and spec.get("private"):
            value = getattr(plugin, spec.get("map_to") or name, None)
            if isinstance(value, str):
                values.append(value)
    return values


# --------------------------------------------------------------------------------------------
# Channels


@dataclass(frozen=True)
class Channel:
    """One Apprise URL of one recipient, ready to use. `url` holds secrets: never store or log
    it; `key` ("mailto", "workflows", "mailto-2" ...) is what the database knows it by."""

    recipient: str
    key: str
    service: str
    profile: Profile
    url: str = field(repr=False)
    mask: Masker = field(repr=False, compare=False)
    attachments: bool = False


@dataclass
class Resolution:
    channels: list[Channel] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # masked, for logs and `validate`
    missing: list[str] = field(default_factory=list)  # "where: ${VAR} is not set"


def _apprise() -> Any:
    # Imported on first use: loading Apprise's ~190 plugins takes a noticeable fraction of a
    # second, which runs without channels (and the tests of other stages) should not pay.
    import apprise

    return apprise


def resolve(reviewer: Reviewer, env: dict[str, str] | None = None) -> Resolution:
    """The reviewer's channels with placeholders filled from `env` (default: os.environ)."""
    env = dict(os.environ) if env is None else env
    result = Resolution()
    mask = Masker()
    sources = _config_urls(reviewer, env, mask, result) if reviewer.notify_config else [
        (f"reviewers.{reviewer.id}.notify[{n}]", url) for n, url in enumerate(reviewer.notify)
    ]  # fmt: skip
    seen: dict[str, int] = {}
    for where, template in sources:
        url, missing = expand(template, env, mask)
        if missing:
            result.missing.extend(f"{where}: ${{{name}}} is not set" for name in missing)
            continue
        channel = _channel(reviewer.id, where, url, mask, seen, result)
        if channel is not None:
            result.channels.append(channel)
    return result


def _channel(
    recipient: str, where: str, url: str, mask: Masker, seen: dict[str, int], result: Resolution
) -> Channel | None:
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    mask.add(_url_password(url))
    with _guarded(mask) as guard:
        plugin = _apprise().Apprise.instantiate(url) if scheme else None
    if plugin is None:
        reason = f" ({guard.errors[-1]})" if guard.errors else ""
        shown = f"{scheme}://…" if scheme else "not a URL"
        result.problems.append(f"{where}: Apprise cannot use this URL: {shown}{reason}")
        return None
    mask.add(*_private_values(plugin))
    seen[scheme] = seen.get(scheme, 0) + 1
    key = scheme if seen[scheme] == 1 else f"{scheme}-{seen[scheme]}"
    profile = profile_for(plugin, scheme)
    attachments = bool(getattr(plugin, "attachment_support", False)) and profile.attach
    return Channel(recipient, key, str(plugin.service_name), profile, url, mask, attachments)


def _config_urls(
    reviewer: Reviewer, env: dict[str, str], mask: Masker, result: Resolution
) -> list[tuple[str, str]]:
    """URLs of an Apprise YAML file whose tags match the reviewer's (any of them; none or
    `all` means every URL). `${VAR}`s in the file are filled like those in the watchlist."""
    where = f"reviewers.{reviewer.id}.notify.config"
    try:
        data = yaml.safe_load(Path(reviewer.notify_config).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        result.problems.append(f"{where}: cannot read {reviewer.notify_config}: {exc}")
        return []
    # Fill the placeholders in the parsed data, not the text: a value with a ':' or '#' cannot
    # change the file's structure this way.
    missing: list[str] = []
    data = _expand_tree(data, env, mask, missing)
    if missing:
        result.missing.extend(f"{where}: ${{{name}}} is not set" for name in sorted(set(missing)))
        return []
    config = _apprise().AppriseConfig()
    with _guarded(mask) as guard:
        loaded = config.add_config(yaml.safe_dump(data), format="yaml")
        services = config.services() if loaded else []
    if not loaded:
        reason = guard.errors[-1] if guard.errors else "not an Apprise YAML configuration"
        result.problems.append(f"{where}: {reviewer.notify_config}: {reason}")
        return []
    wanted = set(reviewer.notify_tags)
    urls = [
        (f"{where}[{n}]", service.url())
        for n, service in enumerate(services)
        if not wanted or TAG_ALL in wanted or wanted & set(service.tags)
    ]
    if not urls:
        tags = ", ".join(sorted(wanted)) or "any"
        result.problems.append(f"{where}: no URL in {reviewer.notify_config} has tags {tags}")
    return urls


def _expand_tree(node: Any, env: dict[str, str], mask: Masker, missing: list[str]) -> Any:
    if isinstance(node, str):
        value, absent = expand(node, env, mask)
        missing.extend(absent)
        return value
    if isinstance(node, list):
        return [_expand_tree(item, env, mask, missing) for item in node]
    if isinstance(node, dict):
        # Keys too: in Apprise's YAML a URL is often the key of its own options.
        return {
            _expand_tree(key, env, mask, missing): _expand_tree(value, env, mask, missing)
            for key, value in node.items()
        }
    return node


# How each kind of channel gets its messages: by service first, else by the body format the
# plugin prefers. E-mail gets the full HTML digest (no size limit worth the name); Teams a short
# Markdown card; other services Markdown (or text) within what the service accepts.
PROFILES_BY_SCHEME: dict[str, Profile] = {
    "workflows": Profile("teams", TEAMS_BODY_BUDGET, messages.json_length),
    "workflow": Profile("teams", TEAMS_BODY_BUDGET, messages.json_length),
}
PROFILES_BY_FORMAT: dict[str, Profile] = {
    "html": Profile("html", None, attach=True),
    "markdown": Profile("markdown"),
    "text": Profile("text"),
}


def profile_for(plugin: Any, scheme: str) -> Profile:
    if scheme in PROFILES_BY_SCHEME:
        return PROFILES_BY_SCHEME[scheme]
    base = PROFILES_BY_FORMAT[preferred_format(plugin)]
    if base.format == "html":
        return base
    return Profile(base.format, int(getattr(plugin, "body_maxlen", 0)) or None)


def _formats(plugin: Any) -> list[str]:
    declared = plugin.notify_format
    items = declared if isinstance(declared, (list, tuple)) else [declared]
    return [str(getattr(f, "value", f)) for f in items]


def preferred_format(plugin: Any) -> str:
    """The plugin's own default (honouring a `?format=` in the URL), except that services
    which also take Markdown get Markdown rather than bare text (json://, for one)."""
    resolve_format = getattr(plugin, "resolve_format", None)  # Apprise >= 2
    chosen = str(resolve_format(None).value) if resolve_format else _formats(plugin)[0]
    if chosen == "text" and "markdown" in _formats(plugin):
        return "markdown"
    return chosen


# --------------------------------------------------------------------------------------------
# Queue


def _add_item(store: Store, row: dict[str, Any]) -> bool:
    """Queue an item unless this recipient already has it (unique recipient + ref)."""
    before = store.db.conn.total_changes
    store.db.table("notify_items").insert(row, ignore=True)
    return store.db.conn.total_changes > before


def enqueue(store: Store, watchlist: Watchlist, run_id: int, now: str) -> int:
    """Queue what the run found: its changes for their reviewers, failure streaks and recoveries
    for the admin. Returns the number of new items."""
    added = 0
    with store.transaction():
        for row in store.db.query(
            "select c.id, c.document_key, c.quiet, d.platform from changes c "
            "join documents d on d.key = c.document_key where c.run_id in "
            "(select value from json_each(?)) order by c.id",
            # Also the changes of runs killed before their alerts went out.
            [json.dumps(store.unreported_runs(run_id))],
        ):
            # A quiet change is a repeat flip between two texts already reported once.
            if row["quiet"] or row["platform"] not in watchlist.platforms:
                continue
            for rid in reviewers_for(watchlist, row["platform"]):
                added += _add_item(store, {
                    "recipient": rid, "kind": "change", "ref": f"change:{row['id']}",
                    "change_id": row["id"], "document_key": row["document_key"],
                    "run_id": run_id, "created_at": now,
                })  # fmt: skip
        added += _enqueue_site_changes(store, watchlist, run_id, now)
        added += _enqueue_failures(store, watchlist, run_id, now)
        added += _enqueue_site_failures(store, watchlist, run_id, now)
        added += _enqueue_relocations(store, watchlist, run_id, now)
        added += _enqueue_reminders(store, watchlist, run_id, now)
    return added


def _enqueue_site_changes(store: Store, watchlist: Watchlist, run_id: int, now: str) -> int:
    """The agency site's cookie and third-party changes of this run, for the site's reviewers
    (a quiet one, the same change recorded lately, is in the records and the report only)."""
    added = 0
    for row in store.db.query(
        "select id, page from site_changes where run_id = ? and not quiet order by id", [run_id]
    ):
        for rid in site_reviewers(watchlist):
            added += _add_item(store, {
                "recipient": rid, "kind": "site-change", "ref": f"site-change:{row['id']}",
                "run_id": run_id, "created_at": now,
                "details": json.dumps({"site_change_id": row["id"], "page": row["page"]}),
            })  # fmt: skip
    return added


def _enqueue_relocations(store: Store, watchlist: Watchlist, run_id: int, now: str) -> int:
    """Tell the admin when a document's `select` matched nothing this run and the text was
    found at another selector: once per document and proposed selector."""
    admin = watchlist.settings.admin
    if not admin:
        return 0
    documents = {d.key: d for d in watchlist.documents()}
    added = 0
    for fetch in store.run_fetches(run_id):
        document = documents.get(fetch["document_key"])
        if document is None or not fetch["relocated"]:
            continue
        details = {"old_selectors": list(document.select), "proposed_selector": fetch["relocated"],
                   "relocated_at": fetch["started_at"] or now}  # fmt: skip
        added += _add_item(store, {
            "recipient": admin, "kind": "relocated",
            "ref": f"relocated:{document.key}@{fetch['relocated']}",
            "document_key": document.key, "run_id": run_id, "created_at": now,
            "details": json.dumps(details),
        })  # fmt: skip
    return added


def _decided(store: Store) -> set[int]:
    """Changes with a review decision (monitor.review; imported here, not at the top: it
    imports the fetch stage, which `tos-monitor notify` does not need otherwise)."""
    from monitor.review import PENDING, latest_decisions

    return {cid for cid, d in latest_decisions(store).items() if d.decision != PENDING}


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _enqueue_reminders(store: Store, watchlist: Watchlist, run_id: int, now: str) -> int:
    """A reminder for each reviewer with changes detected more than `review_reminder_days`
    ago that still have no review decision, at most once per that many days per reviewer."""
    days = watchlist.settings.review_reminder_days
    if days <= 0:
        return 0
    cutoff = _stamp(datetime.strptime(now, "%Y-%m-%dT%H:%M:%S.%fZ") - timedelta(days=days))
    decided = _decided(store)
    waiting: dict[str, list[int]] = {}
    for row in store.db.query(
        "select c.id, d.platform from changes c join documents d on d.key = c.document_key "
        "where c.detected_at < ? and coalesce(c.quiet, 0) = 0 order by c.id",
        [cutoff],
    ):
        if row["id"] in decided or row["platform"] not in watchlist.platforms:
            continue
        for rid in reviewers_for(watchlist, row["platform"]):
            waiting.setdefault(rid, []).append(row["id"])
    added = 0
    for rid, change_ids in waiting.items():
        recent = store.db.execute(
            "select 1 from notify_items where recipient = ? and kind = 'reminder' and "
            "created_at > ? limit 1",
            [rid, cutoff],
        ).fetchone()
        if recent:
            continue
        added += _add_item(store, {
            "recipient": rid, "kind": "reminder", "ref": f"reminder:{now}", "run_id": run_id,
            "created_at": now, "details": json.dumps({"change_ids": change_ids}),
        })  # fmt: skip
    return added


def _enqueue_failures(store: Store, watchlist: Watchlist, run_id: int, now: str) -> int:
    admin = watchlist.settings.admin
    if not admin:
        return 0
    keys = {d.key for d in watchlist.documents()}
    added = 0
    for doc in store.documents():
        if doc["key"] not in keys:
            continue
        failing = doc.get("status") == "failing" and doc.get("failing_since")
        if failing and (doc.get("consecutive_failures") or 0) >= (
            watchlist.settings.failure_alert_after
        ):
            added += _add_item(store, _failure_item(store, admin, doc, run_id, now))
        elif doc.get("status") == "ok":
            added += _enqueue_recoveries(store, doc, run_id, now)
    return added


def _enqueue_site_failures(store: Store, watchlist: Watchlist, run_id: int, now: str) -> int:
    """Agency pages are alerted like documents: to the admin once a page has failed on
    `failure_alert_after` audits in a row (once per streak), and again when it loads again."""
    admin, site = watchlist.settings.admin, watchlist.agency_site
    if not admin or site is None:
        return 0
    added = 0
    for page in site.pages:
        audits = store.site_audits(page)
        streak = []
        for audit in reversed(audits):
            if audit["status"] == "ok":
                break
            streak.append(audit)
        if not streak:
            added += _enqueue_site_recoveries(store, page, audits, run_id, now)
            continue
        if len(streak) < watchlist.settings.failure_alert_after:
            continue
        last, since = streak[0], streak[-1]["started_at"]
        details = {"page": page, "failing_since": since, "failures": len(streak),
                   "error_class": last["error_class"] or "", "message": last["message"] or "",
                   "http_status": last["http_status"]}  # fmt: skip
        added += _add_item(store, {
            "recipient": admin, "kind": "failure", "ref": f"site-failure:{page}@{since}",
            "run_id": run_id, "created_at": now, "details": json.dumps(details),
        })  # fmt: skip
    return added


def _enqueue_site_recoveries(
    store: Store, page: str, audits: list[dict[str, Any]], run_id: int, now: str
) -> int:
    added = 0
    for item in store.db.query(
        "select recipient, ref, details from notify_items where kind = 'failure' and ref like ?",
        [f"site-failure:{page}@%"],
    ):
        details = {**json.loads(item["details"]), "recovered_at": audits[-1]["started_at"]}
        added += _add_item(store, {
            "recipient": item["recipient"], "kind": "recovered",
            "ref": item["ref"].replace("site-failure:", "site-recovered:", 1),
            "run_id": run_id, "created_at": now, "details": json.dumps(details),
        })  # fmt: skip
    return added


def _failure_item(
    store: Store, admin: str, doc: dict[str, Any], run_id: int, now: str
) -> dict[str, Any]:
    last = store.last_fetch(doc["key"])
    details = {
        "failing_since": doc["failing_since"],
        "failures": doc.get("consecutive_failures") or 0,
        "error_class": doc.get("last_error_class") or "",
        "message": doc.get("last_error") or "",
        "http_status": last["http_status"] if last else None,
    }
    # One alert per streak: the streak is named by the time it started.
    ref = f"failure:{doc['key']}@{doc['failing_since']}"
    return {
        "recipient": admin, "kind": "failure", "ref": ref, "document_key": doc["key"],
        "run_id": run_id, "created_at": now, "details": json.dumps(details),
    }  # fmt: skip


def _enqueue_recoveries(store: Store, doc: dict[str, Any], run_id: int, now: str) -> int:
    """A "fetched again" note for each alerted streak of this (now working) document."""
    added = 0
    for item in store.db.query(
        "select recipient, ref, details from notify_items where kind = 'failure' and "
        "document_key = ?",
        [doc["key"]],
    ):
        details = {**json.loads(item["details"]), "recovered_at": doc.get("last_checked") or now}
        added += _add_item(store, {
            "recipient": item["recipient"], "kind": "recovered",
            "ref": item["ref"].replace("failure:", "recovered:", 1),
            "document_key": doc["key"], "run_id": run_id, "created_at": now,
            "details": json.dumps(details),
        })  # fmt: skip
    return added


def register(store: Store, channel: Channel, now: str) -> None:
    """Remember a channel; a new one starts after the items queued so far (see module doc)."""
    table = store.db.table("notify_channels")
    with store.transaction():
        existing = list(table.rows_where("recipient = ? and channel = ?",
                                         [channel.recipient, channel.key]))  # fmt: skip
        if existing:
            table.update((channel.recipient, channel.key),
                         {"last_seen": now, "service": channel.service})  # fmt: skip
            return
        since = store.db.execute("select coalesce(max(id), 0) from notify_items").fetchone()[0]
        table.insert({
            "recipient": channel.recipient, "channel": channel.key, "service": channel.service,
            "since_item": since, "first_seen": now, "last_seen": now,
        })  # fmt: skip


_PENDING_SQL = """
select i.* from notify_items i
where i.recipient = :recipient
  and not exists (select 1 from notify_deliveries d where d.item_id = i.id and d.channel = :channel)
  and (i.id > coalesce((select since_item from notify_channels c
                        where c.recipient = :recipient and c.channel = :channel), 0)
       or not exists (select 1 from notify_deliveries d where d.item_id = i.id))
order by i.id
"""


def pending_items(store: Store, recipient: str, channel: str) -> list[dict[str, Any]]:
    return list(store.db.query(_PENDING_SQL, {"recipient": recipient, "channel": channel}))


# --------------------------------------------------------------------------------------------
# Content


KIND_OF_ITEM = {
    "change": "digest",
    "reminder": "digest",
    "site-change": "digest",
    "failure": "alert",
    "recovered": "alert",
    "relocated": "alert",
}


def build_content(
    store: Store, watchlist: Watchlist, recipient: str, kind: str, items: Sequence[dict[str, Any]]
) -> Content:
    reviewer = watchlist.reviewers.get(recipient)
    name = reviewer.name if reviewer else recipient
    report_url = watchlist.settings.report_url
    if kind == "digest":
        changes = [c for c in (_change(store, i, report_url) for i in items
                               if i["kind"] == "change") if c is not None]  # fmt: skip
        changes.sort(key=lambda c: (min((messages.SEVERITY_ORDER[h.severity]
                                         for h in c.categories), default=9), c.title))  # fmt: skip
        shown = {c.change_id for c in changes}
        awaiting = [a for a in _awaiting(store, items, report_url) if a.change_id not in shown]
        site = _site_changes(store, watchlist, items, report_url)
        return Content("digest", name, changes=tuple(changes), report_url=report_url,
                       awaiting=tuple(awaiting), site=tuple(site))  # fmt: skip
    failures = [_failure(store, item) for item in items]
    return Content("alert", name, failures=tuple(failures), report_url=report_url)


def _change(store: Store, item: dict[str, Any], report_url: str) -> messages.ChangeNotice | None:
    rows = list(store.db.table("changes").rows_where("id = ?", [item["change_id"]]))
    if not rows:
        return None
    change = rows[0]
    document = store.document(change["document_key"]) or {"document": change["document_key"]}
    reverted_to = ""
    if change.get("kind") == "revert":
        version = store.version(change["to_version_id"])
        reverted_to = version.first_seen if version else ""
    return messages.change_notice(change, document, report_url, reverted_to)


def _site_changes(
    store: Store, watchlist: Watchlist, items: Sequence[dict[str, Any]], report_url: str
) -> list[SiteNotice]:
    """The agency site changes the `site-change` items name, persistent cookies first."""
    ids = [json.loads(i.get("details") or "{}").get("site_change_id") for i in items
           if i["kind"] == "site-change"]  # fmt: skip
    ids = [i for i in ids if isinstance(i, int)]
    if not ids:
        return []
    site = watchlist.agency_site.name if watchlist.agency_site else "Agency site"
    rows = store.db.table("site_changes").rows_where(
        f"id in ({', '.join('?' for _ in ids)})", ids, order_by="id"
    )
    notices = [site_notice(row, site, report_url) for row in rows]
    order = {"new-cookie": 0, "cookie-lifetime-changed": 1, "new-third-party": 2,
             "cookie-gone": 3, "third-party-gone": 4}  # fmt: skip
    return sorted(notices, key=lambda n: (not (n.kind == "new-cookie" and n.persistent),
                                          order.get(n.kind, 9)))  # fmt: skip


def _awaiting(
    store: Store, items: Sequence[dict[str, Any]], report_url: str
) -> list[messages.AwaitingNotice]:
    """The changes the reminders in `items` name that still have no decision now."""
    ids: set[int] = set()
    for item in items:
        if item["kind"] == "reminder":
            ids.update(json.loads(item.get("details") or "{}").get("change_ids", []))
    if not ids:
        return []
    decided = _decided(store)
    out = []
    for change in store.db.table("changes").rows_where(
        f"id in ({', '.join('?' for _ in ids)})", sorted(ids), order_by="detected_at, id"
    ):
        if change["id"] in decided:
            continue
        doc = store.document(change["document_key"]) or {}
        out.append(messages.AwaitingNotice(
            change_id=change["id"],
            platform=doc.get("platform_name") or doc.get("platform") or change["document_key"],
            document=doc.get("name") or doc.get("document") or "",
            detected_at=change.get("detected_at") or "",
            link=messages.change_link(report_url, change["id"]),
        ))  # fmt: skip
    return out


def _failure(store: Store, item: dict[str, Any]) -> messages.FailureNotice:
    details = json.loads(item.get("details") or "{}")
    doc = store.document(item["document_key"]) or {}
    if item["kind"] == "relocated":
        return messages.FailureNotice(
            document_key=item["document_key"],
            platform=doc.get("platform_name") or doc.get("platform") or item["document_key"],
            document=doc.get("name") or doc.get("document") or "",
            url=doc.get("url") or "",
            failing_since="",
            failures=0,
            error_class="relocated",
            message="",
            hint=messages.HINTS["relocated"],
            proposed_selector=details.get("proposed_selector") or "",
            old_selectors=tuple(details.get("old_selectors") or ()),
            relocated_at=details.get("relocated_at") or "",
        )
    error_class, message = details.get("error_class", ""), details.get("message", "")
    if details.get("page"):  # an agency page of the site audit, not a document
        return messages.FailureNotice(
            document_key="",
            platform="Agency site",
            document=page_label(details["page"]),
            url=details["page"],
            failing_since=details.get("failing_since", ""),
            failures=int(details.get("failures") or 0),
            error_class=error_class,
            message=message,
            hint=messages.failure_hint(error_class, message, details.get("http_status")),
            recovered_at=details.get("recovered_at", "") if item["kind"] == "recovered" else "",
        )
    return messages.FailureNotice(
        document_key=item["document_key"],
        platform=doc.get("platform_name") or doc.get("platform") or item["document_key"],
        document=doc.get("name") or doc.get("document") or "",
        url=doc.get("url") or "",
        failing_since=details.get("failing_since", ""),
        failures=int(details.get("failures") or 0),
        error_class=error_class,
        message=message,
        hint=messages.failure_hint(error_class, message, details.get("http_status")),
        recovered_at=details.get("recovered_at", "") if item["kind"] == "recovered" else "",
    )


def change_pages(store: Store, content: Content) -> list[str]:
    """The report's pages of the changes in `content` that exist (reports/changes/<id>.html), as
    Apprise attachment URLs named `change-<id>.html` (a bare "12.html" says nothing in a mail)."""
    folder = (store.home / "reports" / "changes").resolve()
    return [
        f"{(folder / f'{c.change_id}.html').as_uri()}?name=change-{c.change_id}.html"
        for c in content.changes
        if (folder / f"{c.change_id}.html").is_file()
    ]


# --------------------------------------------------------------------------------------------
# Delivery


@dataclass(frozen=True)
class Outcome:
    recipient: str
    channel: str
    kind: str
    status: str  # "sent" or "failed"
    attempts: int
    message_id: int
    items: int
    error: str = ""
    subject: str = ""


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status != "sent"]


def send_once(channel: Channel, rendered: Rendered, attach: Sequence[str]) -> str:
    """One attempt; returns "" on success, else the (masked) reason."""
    apprise = _apprise()
    with _guarded(channel.mask) as guard:
        try:
            # A fresh plugin per attempt: a plugin instance throttles its own repeated sends.
            plugin = apprise.Apprise.instantiate(channel.url)
            if plugin is None:
                return "Apprise could not load the channel's URL"
            ok = plugin.notify(
                body=rendered.body,
                title=rendered.subject,
                body_format=rendered.format,
                attach=apprise.AppriseAttachment(list(attach)) if attach else None,
            )
        except Exception as exc:  # a plugin bug must not cost the other channels their turn
            return channel.mask(f"{type(exc).__name__}: {exc}")
    if ok:
        return ""
    return guard.errors[-1] if guard.errors else f"{channel.service} did not accept the message"


# One attempt at sending a rendered message; "" on success, else the reason. It gets the content
# too, for a channel that writes more than the rendered body (the demo's outbox adds the plain
# text part of an e-mail).
Sender = Callable[[Channel, Content, Rendered, Sequence[str]], str]


def send_with_apprise(
    channel: Channel, content: Content, rendered: Rendered, attach: Sequence[str]
) -> str:
    return send_once(channel, rendered, attach)


def deliver(
    store: Store,
    channel: Channel,
    content: Content,
    item_ids: Sequence[int],
    run_id: int | None,
    attach: Sequence[str] = (),
    send: Sender = send_with_apprise,
) -> Outcome:
    """Render, record, send with retries, and record the result (and the deliveries). `send`
    is one attempt (see `Sender`)."""
    rendered = messages.render(
        messages.FORMATS[channel.profile.format], content, channel.profile.budget,
        channel.profile.measure,
    )  # fmt: skip
    attach = list(attach) if channel.attachments else []
    messages_table = store.db.table("notify_messages")
    with store.transaction():
        message_id = int(messages_table.insert({
            "run_id": run_id, "created_at": now_utc(), "recipient": channel.recipient,
            "channel": channel.key, "service": channel.service, "kind": content.kind,
            "subject": rendered.subject, "format": rendered.format,
            "change_ids": json.dumps([c.change_id for c in content.changes]),
            "item_ids": json.dumps(list(item_ids)), "attachments": len(attach),
            "chars": len(rendered.body), "truncated": int(rendered.truncated),
            "attempts": 0, "status": "sending",
        }).last_rowid or 0)  # fmt: skip
    pause_at("notify")
    error, attempts = "", 0
    for attempts in range(1, TRIES + 1):
        error = send(channel, content, rendered, attach)
        if not error:
            break
        if attempts < TRIES:
            time.sleep(BACKOFF_SECONDS)
    _finish(store, channel, message_id, item_ids, attempts, error)
    _log_outcome(channel, content.kind, attempts, error)
    return Outcome(channel.recipient, channel.key, content.kind, "failed" if error else "sent",
                   attempts, message_id, len(item_ids), error, rendered.subject)  # fmt: skip


def _finish(
    store: Store, channel: Channel, message_id: int, item_ids: Sequence[int], attempts: int,
    error: str,
) -> None:  # fmt: skip
    stamp = now_utc()
    row: dict[str, Any] = {"attempts": attempts, "last_attempt_at": stamp}
    row.update({"status": "failed", "last_error": error} if error else
               {"status": "sent", "sent_at": stamp, "last_error": None})  # fmt: skip
    with store.transaction():
        store.db.table("notify_messages").update(message_id, row)
        if not error:
            store.db.table("notify_deliveries").insert_all(
                ({"item_id": item_id, "channel": channel.key, "recipient": channel.recipient,
                  "message_id": message_id, "delivered_at": stamp} for item_id in item_ids),
                ignore=True,
            )  # fmt: skip


def _retire(store: Store, channel: Channel, item_ids: Sequence[int]) -> None:
    """Mark items done on a channel without a message (a reminder with nothing left)."""
    stamp = now_utc()
    with store.transaction():
        store.db.table("notify_deliveries").insert_all(
            ({"item_id": item_id, "channel": channel.key, "recipient": channel.recipient,
              "message_id": None, "delivered_at": stamp} for item_id in item_ids),
            ignore=True,
        )  # fmt: skip


def _log_outcome(channel: Channel, kind: str, attempts: int, error: str) -> None:
    if error:
        log.warning("%s to %s via %s failed after %d attempts%s: %s",
                    kind, channel.recipient, channel.key, attempts, _kept(kind),
                    error)  # fmt: skip
    else:
        log.info("%s sent to %s via %s", kind, channel.recipient, channel.key)


def deliver_channel(
    store: Store,
    watchlist: Watchlist,
    channel: Channel,
    run_id: int | None,
    send: Sender = send_with_apprise,
) -> list[Outcome]:
    """Everything pending for one channel: at most one digest and one alert message; `send`
    makes each attempt (Apprise's, unless the channel delivers elsewhere: the demo's outbox)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in pending_items(store, channel.recipient, channel.key):
        groups.setdefault(KIND_OF_ITEM[item["kind"]], []).append(item)
    outcomes = []
    for kind, items in groups.items():
        content = build_content(store, watchlist, channel.recipient, kind, items)
        ids = [item["id"] for item in items]
        if all(i["kind"] == "reminder" for i in items) and not content.awaiting:
            # Reminders whose changes have all been decided since: nothing left to say.
            _retire(store, channel, ids)
            continue
        attach = change_pages(store, content) if watchlist.settings.attach_change_pages else []
        outcomes.append(deliver(store, channel, content, ids, run_id, attach, send))
    return outcomes


def resolve_all(watchlist: Watchlist, only: str | None = None) -> dict[str, Resolution]:
    return {
        rid: resolve(reviewer)
        for rid, reviewer in watchlist.reviewers.items()
        if only is None or rid == only
    }


def deliver_pending(store: Store, watchlist: Watchlist) -> Report:
    """Send everything pending, on every channel that resolves (`tos-monitor notify`)."""
    resolutions = resolve_all(watchlist)
    _register_all(store, resolutions, now_utc())
    return _deliver_all(store, watchlist, resolutions, None, Report())


def notify_after_run(watchlist: Watchlist, store: Store, run_id: int) -> Report:
    """The run's last step. Never raises: the run's records are already safe, and whatever
    could not be delivered stays pending (and recorded) for the next run."""
    report = Report()
    try:
        now = now_utc()
        resolutions = resolve_all(watchlist)
        # Channels first, so that one seen for the first time counts this run's items as its own.
        _register_all(store, resolutions, now)
        enqueue(store, watchlist, run_id, now)
        return _deliver_all(store, watchlist, resolutions, run_id, report)
    except Exception as exc:
        log.error("notifications failed: %s: %s (pending items are kept for the next run)",
                  type(exc).__name__, _mask_all(watchlist)(str(exc)))  # fmt: skip
        report.problems.append(f"notifications failed: {type(exc).__name__}")
        return report


def _register_all(store: Store, resolutions: dict[str, Resolution], now: str) -> None:
    for resolution in resolutions.values():
        for channel in resolution.channels:
            register(store, channel, now)


def _deliver_all(
    store: Store,
    watchlist: Watchlist,
    resolutions: dict[str, Resolution],
    run_id: int | None,
    report: Report,
) -> Report:
    for resolution in resolutions.values():
        report.problems.extend(resolution.problems + resolution.missing)
        for channel in resolution.channels:
            report.outcomes.extend(deliver_channel(store, watchlist, channel, run_id))
    for problem in report.problems:
        log.warning("notification channel not usable: %s", problem)
    return report


def _mask_all(watchlist: Watchlist) -> Masker:
    """Every environment value any notify URL refers to, for errors outside one channel."""
    mask = Masker()
    templates = [u for r in watchlist.reviewers.values() for u in r.notify]
    for name in {n for t in templates for n in _PLACEHOLDER.findall(t)}:
        mask.add(os.environ.get(name))
    return mask


# --------------------------------------------------------------------------------------------
# Commands: test, pending, check


def send_test(store: Store, watchlist: Watchlist, reviewer: str | None = None) -> Report:
    report = Report()
    for rid, resolution in resolve_all(watchlist, reviewer).items():
        report.problems.extend(resolution.problems + resolution.missing)
        name = watchlist.reviewers[rid].name
        for channel in resolution.channels:
            content = Content("test", name, channel=channel.key)
            report.outcomes.append(deliver(store, channel, content, [], None))
    return report


@dataclass(frozen=True)
class Pending:
    recipient: str
    channel: str
    items: list[dict[str, Any]]
    last_error: str = ""
    last_attempt_at: str = ""


def pending(store: Store, watchlist: Watchlist) -> tuple[list[Pending], list[str]]:
    """What waits, per recipient and channel, and the channel problems that keep it waiting.
    Items of recipients or channels no longer configured are listed under channel "?"."""
    found: list[Pending] = []
    problems: list[str] = []
    covered: set[int] = set()
    for rid, resolution in resolve_all(watchlist).items():
        problems.extend(resolution.problems + resolution.missing)
        for channel in resolution.channels:
            items = pending_items(store, rid, channel.key)
            covered.update(i["id"] for i in items)
            last = list(store.db.query(
                "select last_error, last_attempt_at from notify_messages where recipient = ? "
                "and channel = ? and status = 'failed' order by id desc limit 1",
                [rid, channel.key],
            ))  # fmt: skip
            error = last[0] if last and items else {}
            found.append(Pending(rid, channel.key, items, error.get("last_error") or "",
                                 error.get("last_attempt_at") or ""))  # fmt: skip
    orphans = [
        row for row in store.db.query(
            "select * from notify_items i where not exists "
            "(select 1 from notify_deliveries d where d.item_id = i.id) order by id"
        ) if row["id"] not in covered
    ]  # fmt: skip
    for rid in sorted({row["recipient"] for row in orphans}):
        found.append(Pending(rid, "?", [r for r in orphans if r["recipient"] == rid]))
    return found, problems


def format_pending(found: list[Pending], problems: list[str]) -> str:
    lines = []
    for entry in found:
        if not entry.items:
            lines.append(f"{entry.recipient} via {entry.channel}: nothing pending")
            continue
        what = ", ".join(_item_label(i) for i in entry.items[:10])
        more = f" and {len(entry.items) - 10} more" if len(entry.items) > 10 else ""
        lines.append(f"{entry.recipient} via {entry.channel}: {len(entry.items)} pending: "
                     f"{what}{more}")  # fmt: skip
        if entry.last_error:
            lines.append(f"  last attempt {entry.last_attempt_at} failed: {entry.last_error}")
        if entry.channel == "?":
            lines.append("  (no configured channel of this recipient can deliver these)")
    lines.extend(f"problem: {p}" for p in problems)
    return "\n".join(lines) or "no recipients configured"


def format_report(report: Report) -> str:
    lines = []
    for o in report.outcomes:
        tries = f"{o.attempts} attempt{'s' if o.attempts != 1 else ''}"
        if o.status == "sent":
            lines.append(f"sent {o.kind} to {o.recipient} via {o.channel} ({tries})")
        else:
            lines.append(f"FAILED {o.kind} to {o.recipient} via {o.channel} after {tries}"
                         f"{_kept(o.kind)}: {o.error}")  # fmt: skip
    lines.extend(f"problem: {p}" for p in report.problems)
    return "\n".join(lines) or "nothing to send"


def _kept(kind: str) -> str:
    return "" if kind == "test" else " (kept pending)"


def _item_label(item: dict[str, Any]) -> str:
    if item["kind"] == "change":
        return f"change #{item['change_id']} ({item['document_key']})"
    if item["kind"] == "reminder":
        n = len(json.loads(item.get("details") or "{}").get("change_ids", []))
        return f"reminder ({n} change{'' if n == 1 else 's'} awaiting review)"
    if item["kind"] == "site-change":
        return f"agency site change ({json.loads(item.get('details') or '{}').get('page', '')})"
    what = item["document_key"] or json.loads(item.get("details") or "{}").get("page", "")
    return f"{item['kind']} {what}"


def check(watchlist: Watchlist, env: dict[str, str] | None = None) -> list[str]:
    """For `validate`: URLs Apprise cannot use, config files that cannot be read, and unset
    variables (by name, never a value: the watchlist can be checked where the secrets are not).

    Warnings, not errors: `validate` fails exactly when `run` would refuse to start, and a run
    must not stop recording the platforms' terms over a notification problem. The run logs them
    too, and what they hold back stays pending (`tos-monitor notify --pending`)."""
    warnings: list[str] = []
    lines = _notify_lines(watchlist.path)
    for rid, reviewer in watchlist.reviewers.items():
        resolution = resolve(reviewer, env)
        where = f"{watchlist.path}:{lines[rid]}" if rid in lines else str(watchlist.path)
        warnings.extend(f"{where}: {p}" for p in resolution.problems + resolution.missing)
    return warnings


def _notify_lines(path: Path) -> dict[str, int]:
    """Line of each reviewer's `notify` key, so problems read like the watchlist's own."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, yaml.YAMLError):
        return {}
    lines: dict[str, int] = {}
    for key, value in _pairs(root):
        if key == "reviewers":
            for rid, reviewer in _pairs(value):
                for field_name, node in _pairs(reviewer):
                    if field_name == "notify":
                        lines[rid] = node.start_mark.line + 1
    return lines


def _pairs(node: Any) -> list[tuple[str, Any]]:
    if not isinstance(node, yaml.MappingNode):
        return []
    return [(str(k.value), v) for k, v in node.value]
