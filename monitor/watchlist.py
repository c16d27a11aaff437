"""Stage 1: read and check `watchlist.yaml` — which platforms, which documents, who reviews them.

A wrong watchlist is refused before anything is fetched, with the file, line and key named, so a
typo found at 2 a.m. by cron reads like a compiler error rather than a silent skip.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

RENDER_MODES = ("browser", "http")
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# The agency's own privacy policy is watched as document `privacy-policy` of a platform with this
# id (`agency/privacy-policy`), so it is fetched, flagged, reported and routed like a platform's;
# `--only agency` checks it and audits the agency's pages. The id is reserved when the watchlist
# has an `agency_site`.
AGENCY_ID = "agency"
AGENCY_POLICY_ID = "privacy-policy"


class WatchlistError(Exception):
    """One or more problems in a watchlist; `str()` lists them as `file:line: key: problem`."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Document:
    platform: str
    id: str
    name: str
    url: str
    select: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    render: str = "browser"
    locale: str = "en-US"
    timezone: str = "America/Chicago"
    ignore: tuple[str, ...] = ()
    timeout: float = 30.0
    min_chars: int = 200

    @property
    def key(self) -> str:
        return f"{self.platform}/{self.id}"


@dataclass(frozen=True)
class Reviewer:
    id: str
    name: str
    notify: tuple[str, ...] = ()  # Apprise URLs, or:
    notify_config: str = ""  # an Apprise YAML config file (docs/notify.md)
    notify_tags: tuple[str, ...] = ()  # ... of whose URLs those with any of these tags


@dataclass(frozen=True)
class Platform:
    id: str
    name: str
    reviewers: tuple[str, ...]
    documents: tuple[Document, ...]


@dataclass(frozen=True)
class Settings:
    report_url: str = ""
    admin: str = ""
    default_reviewer: str = ""
    concurrency: int = 4
    per_host: int = 1
    user_agent: str = ""
    chromium: str = ""
    chromium_args: tuple[str, ...] = ()
    locale: str = "en-US"
    timezone: str = "America/Chicago"
    timeout: float = 30.0
    min_chars: int = 200
    failure_alert_after: int = 2
    attach_change_pages: bool = False
    review_reminder_days: int = 7


@dataclass(frozen=True)
class AgencySite:
    """The agency's own site (`agency_site`): pages whose cookies and third parties are audited
    every night (monitor/audit.py), and who reviews what is found there."""

    name: str
    reviewers: tuple[str, ...]
    pages: tuple[str, ...]
    privacy_policy: Document | None = None


@dataclass
class Watchlist:
    path: Path
    settings: Settings = field(default_factory=Settings)
    reviewers: dict[str, Reviewer] = field(default_factory=dict)
    platforms: dict[str, Platform] = field(default_factory=dict)
    agency_site: AgencySite | None = None

    def scopes(self) -> list[str]:
        """What `run --only` accepts: platform ids, and `agency` for the agency's own site."""
        extra = [AGENCY_ID] if self.agency_site and AGENCY_ID not in self.platforms else []
        return [*self.platforms, *extra]

    def documents(self, only: str | None = None) -> Iterator[Document]:
        for platform in self.platforms.values():
            if only is None or platform.id == only:
                yield from platform.documents


# Each schema maps a key to (python type(s), description); the description doubles as the error
# wording, and README's configuration section documents the same keys.
SETTINGS_KEYS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "report_url": (str, "URL where the reports/ folder is published"),
    "admin": (str, "reviewer id who hears about fetch failures"),
    "default_reviewer": (str, "reviewer id for platforms that name none"),
    "concurrency": (int, "pages fetched at once"),
    "per_host": (int, "requests at once to one host"),
    "user_agent": (str, "User-Agent header"),
    "chromium": (str, "path to the Chromium executable"),
    "chromium_args": (list, "extra Chromium command-line flags"),
    "locale": (str, "browser locale, e.g. en-US"),
    "timezone": (str, "browser time zone, e.g. America/Chicago"),
    "timeout": ((int, float), "seconds allowed per document"),
    "min_chars": (int, "texts shorter than this are failures"),
    "failure_alert_after": (int, "consecutive failed runs before the admin is alerted"),
    "attach_change_pages": (bool, "attach each change's page to e-mail digests"),
    "review_reminder_days": (int, "days a change may await review before a reminder; 0: none"),
}
REVIEWER_KEYS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "name": (str, "display name"),
    "notify": ((list, str, dict), "Apprise URLs, or {config: FILE, tags: [...]}"),
}
NOTIFY_CONFIG_KEYS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "config": (str, "Apprise YAML configuration file"),
    "tags": ((str, list), "use the file's URLs that carry any of these tags"),
}
PLATFORM_KEYS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "name": (str, "display name"),
    "reviewer": ((str, list), "reviewer id or list of ids"),
    "documents": (dict, "documents of this platform"),
}
DOCUMENT_KEYS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "name": (str, "display name"),
    "url": (str, "address of the document"),
    "select": ((str, list), "CSS selectors to keep"),
    "remove": ((str, list), "CSS selectors to drop"),
    "render": (str, "browser or http"),
    "locale": (str, "browser locale"),
    "timezone": (str, "browser time zone"),
    "ignore": ((str, list), "regular expressions removed from the text before comparing"),
    "timeout": ((int, float), "seconds allowed for this document"),
    "min_chars": (int, "texts shorter than this are failures"),
}
AGENCY_SITE_KEYS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "name": (str, "the agency's name"),
    "reviewer": ((str, list), "reviewer id or list of ids (the PIO)"),
    "pages": (list, "addresses of the agency's pages to audit"),
    "privacy_policy": ((str, dict), "address of the agency's privacy policy, or a document"),
}
TOP_KEYS = {"settings", "reviewers", "platforms", "agency_site"}


class _Checker:
    """Walks the YAML node tree so every problem can carry the line it stands on."""

    def __init__(self, path: Path):
        self.path = path
        self.problems: list[str] = []
        # A loader used only for its constructor: a value is built from its node as loading the
        # whole file would build it. (Serializing each node and loading it again took 2 s of a
        # 1,000-document watchlist's start.)
        self._constructor = yaml.SafeLoader("")

    def error(self, node: yaml.Node | None, where: str, message: str) -> None:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        self.problems.append(f"{self.path}{line}: {where}: {message}")

    def mapping(self, node: yaml.Node, where: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Keys of a mapping node, refusing duplicates (PyYAML would keep the last silently)."""
        if not isinstance(node, yaml.MappingNode):
            self.error(node, where, "expected a mapping (key: value)")
            return {}
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in out:
                self.error(
                    key_node,
                    f"{where}.{key}",
                    f"duplicate key (first at line {out[key][0].start_mark.line + 1})",
                )
                continue
            out[key] = (key_node, value_node)
        return out

    def fields(
        self,
        node: yaml.Node,
        where: str,
        schema: dict[str, tuple[type | tuple[type, ...], str]],
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, (key_node, value_node) in self.mapping(node, where).items():
            if key not in schema:
                known = ", ".join(sorted(schema))
                self.error(key_node, f"{where}.{key}", f"unknown key (known keys: {known})")
                continue
            value = self._constructor.construct_object(value_node, deep=True)
            expected, _ = schema[key]
            names = expected if isinstance(expected, tuple) else (expected,)
            if (isinstance(value, bool) and bool not in names) or not isinstance(value, expected):
                wanted = " or ".join(t.__name__ for t in names)
                self.error(value_node, f"{where}.{key}", f"expected {wanted}, got {value!r}")
                continue
            if isinstance(value, list) and not all(isinstance(v, str) for v in value):
                self.error(value_node, f"{where}.{key}", "expected a list of strings")
                continue
            values[key] = value
        return values


def _strings(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


# libyaml's parser when PyYAML was built with it (the wheels are): the same nodes, with the same
# line marks for messages, ten times faster than the pure-Python one on a long watchlist.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(path: str | os.PathLike[str]) -> Watchlist:
    """Parse and check a watchlist; raise WatchlistError listing every problem found."""
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WatchlistError([f"{path}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WatchlistError([f"{path}: cannot read: {exc}"]) from None
    try:
        try:
            root = yaml.compose(source, Loader=_LOADER)
        except yaml.YAMLError:
            # Parsed again by PyYAML's own parser, whose messages say what it found instead.
            root = yaml.compose(source, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise WatchlistError([f"{path}{line}: invalid YAML: {problem}"]) from None
    if root is None:
        raise WatchlistError([f"{path}: the watchlist is empty"])
    return _build(path, root)


def _build(path: Path, root: yaml.Node) -> Watchlist:
    check = _Checker(path)
    top = check.mapping(root, "watchlist")
    for key, (key_node, _) in top.items():
        if key not in TOP_KEYS:
            known = ", ".join(sorted(TOP_KEYS))
            check.error(key_node, key, f"unknown key (known keys: {known})")
    settings = _settings(check, top.get("settings"))
    reviewers = _reviewers(check, top.get("reviewers"))
    platforms = _platforms(check, top.get("platforms"), settings)
    agency = _agency_site(check, top.get("agency_site"), settings)
    if "platforms" not in top and agency is None:
        check.error(None, "platforms", "missing: list at least one platform to watch")
    if agency is not None and AGENCY_ID in platforms:
        key_node = check.mapping(top["platforms"][1], "platforms")[AGENCY_ID][0]
        check.error(
            key_node,
            f"platforms.{AGENCY_ID}",
            f"the platform id {AGENCY_ID!r} is reserved for agency_site (its privacy policy is "
            f"watched as {AGENCY_ID}/{AGENCY_POLICY_ID}): rename this platform",
        )
    elif agency is not None and agency.privacy_policy is not None:
        # Registered like a platform: fetched, flagged, reported and routed as one.
        platforms[AGENCY_ID] = Platform(
            AGENCY_ID, agency.name, agency.reviewers, (agency.privacy_policy,)
        )
    watchlist = Watchlist(path, settings, reviewers, platforms, agency)
    _check_routing(check, watchlist, top)
    if check.problems:
        raise WatchlistError(check.problems)
    return watchlist


def _settings(check: _Checker, entry: tuple[yaml.Node, yaml.Node] | None) -> Settings:
    if entry is None:
        return Settings()
    values = check.fields(entry[1], "settings", SETTINGS_KEYS)
    if values.get("review_reminder_days", 0) < 0:
        check.error(entry[1], "settings.review_reminder_days", "must be 0 (off) or more")
        values.pop("review_reminder_days")
    for key in ("concurrency", "per_host", "failure_alert_after"):
        if key in values and values[key] < 1:
            check.error(entry[1], f"settings.{key}", "must be at least 1")
            values.pop(key)
    if "timeout" in values:
        values["timeout"] = float(values["timeout"])
    if "chromium_args" in values:
        values["chromium_args"] = tuple(values["chromium_args"])
    return Settings(**values)


def _reviewers(check: _Checker, entry: tuple[yaml.Node, yaml.Node] | None) -> dict[str, Reviewer]:
    reviewers: dict[str, Reviewer] = {}
    if entry is None:
        return reviewers
    for rid, (_, node) in check.mapping(entry[1], "reviewers").items():
        values = check.fields(node, f"reviewers.{rid}", REVIEWER_KEYS)
        notify = values.get("notify")
        if isinstance(notify, dict):
            reviewers[rid] = _config_reviewer(check, rid, values.get("name", rid), node)
            continue
        reviewers[rid] = Reviewer(rid, values.get("name", rid), _strings(notify))
    return reviewers


def _config_reviewer(check: _Checker, rid: str, name: str, node: yaml.Node) -> Reviewer:
    """`notify: {config: FILE, tags: [...]}`; a relative FILE is next to the watchlist."""
    notify_node = next(value for key, value in node.value if key.value == "notify")
    where = f"reviewers.{rid}.notify"
    values = check.fields(notify_node, where, NOTIFY_CONFIG_KEYS)
    config = ""
    if "config" not in values:
        check.error(notify_node, f"{where}.config", "missing: the Apprise configuration file")
    else:
        config = str(check.path.parent / values["config"])  # an absolute path stays as it is
    return Reviewer(rid, name, (), config, _strings(values.get("tags")))


def _platforms(
    check: _Checker, entry: tuple[yaml.Node, yaml.Node] | None, settings: Settings
) -> dict[str, Platform]:
    platforms: dict[str, Platform] = {}
    if entry is None:
        return platforms
    for pid, (key_node, node) in check.mapping(entry[1], "platforms").items():
        where = f"platforms.{pid}"
        if not ID_PATTERN.match(pid):
            check.error(key_node, where, "platform ids use lower-case letters, digits, - and _")
        values = check.fields(node, where, PLATFORM_KEYS)
        docs_entry = check.mapping(node, where).get("documents") if "documents" in values else None
        if docs_entry is None:
            check.error(node, f"{where}.documents", "missing: list at least one document")
            documents: tuple[Document, ...] = ()
        else:
            documents = _documents(check, pid, docs_entry[1], settings)
        platforms[pid] = Platform(
            pid, values.get("name", pid), _strings(values.get("reviewer")), documents
        )
    return platforms


def _documents(
    check: _Checker, pid: str, node: yaml.Node, settings: Settings
) -> tuple[Document, ...]:
    documents = []
    for did, (key_node, doc_node) in check.mapping(node, f"platforms.{pid}.documents").items():
        where = f"platforms.{pid}.documents.{did}"
        if not ID_PATTERN.match(did):
            check.error(key_node, where, "document ids use lower-case letters, digits, - and _")
        documents.append(_document(check, pid, did, where, doc_node, settings))
    return tuple(documents)


def _document(
    check: _Checker, pid: str, did: str, where: str, doc_node: yaml.Node, settings: Settings
) -> Document:
    values = check.fields(doc_node, where, DOCUMENT_KEYS)
    url = values.get("url", "")
    if "url" not in values:
        check.error(doc_node, f"{where}.url", "missing: the address of the document")
    elif not _is_web_url(url):
        check.error(doc_node, f"{where}.url", f"not an http(s) URL: {url!r}")
    render = values.get("render", "browser")
    if render not in RENDER_MODES:
        check.error(doc_node, f"{where}.render", f"must be browser or http, got {render!r}")
    # Imported here, not with the module: it is a tenth of a second that a run's start spends
    # before Chromium's driver can start (`monitor.run`), while a watchlist loads beside it.
    import soupsieve

    for key in ("select", "remove"):
        for selector in _strings(values.get(key)):
            try:
                soupsieve.compile(selector)
            except soupsieve.SelectorSyntaxError as exc:
                message = str(exc).splitlines()[0]
                check.error(doc_node, f"{where}.{key}", f"bad CSS selector {selector!r}: {message}")
    for pattern in _strings(values.get("ignore")):
        try:
            re.compile(pattern)
        except re.error as exc:
            check.error(doc_node, f"{where}.ignore", f"bad regular expression: {exc}")
    return Document(
        platform=pid,
        id=did,
        name=values.get("name", did.replace("-", " ").title()),
        url=url,
        select=_strings(values.get("select")),
        remove=_strings(values.get("remove")),
        render=render,
        locale=values.get("locale", settings.locale),
        timezone=values.get("timezone", settings.timezone),
        ignore=_strings(values.get("ignore")),
        timeout=float(values.get("timeout", settings.timeout)),
        min_chars=values.get("min_chars", settings.min_chars),
    )


def _is_web_url(url: str) -> bool:
    return bool(re.match(r"^https?://[^/\s]+", url))


def _agency_site(
    check: _Checker, entry: tuple[yaml.Node, yaml.Node] | None, settings: Settings
) -> AgencySite | None:
    """`agency_site`: name, reviewer, pages (a list of URLs), privacy_policy (a URL, or a
    document mapping like a platform's, for a `select` or other keys)."""
    if entry is None:
        return None
    node = entry[1]
    values = check.fields(node, "agency_site", AGENCY_SITE_KEYS)
    nodes = check.mapping(node, "agency_site")
    pages: list[str] = []
    if "pages" not in nodes:
        check.error(node, "agency_site.pages", "missing: list the agency pages to audit")
    elif "pages" in values:
        pages_node = nodes["pages"][1]
        items = pages_node.value if isinstance(pages_node, yaml.SequenceNode) else []
        for n, (item, url) in enumerate(zip(items, values["pages"], strict=True)):
            if not _is_web_url(url):
                check.error(item, f"agency_site.pages[{n}]", f"not an http(s) URL: {url!r}")
            elif url in pages:
                check.error(item, f"agency_site.pages[{n}]", f"listed twice: {url!r}")
            else:
                pages.append(url)
        if not items:
            check.error(pages_node, "agency_site.pages", "list at least one page to audit")
    policy = None
    if "privacy_policy" in values:
        policy_node = nodes["privacy_policy"][1]
        where = "agency_site.privacy_policy"
        if isinstance(policy_node, yaml.ScalarNode):
            # A bare URL: a document with every other key at its default.
            policy_node = yaml.MappingNode(
                "tag:yaml.org,2002:map",
                [(yaml.ScalarNode("tag:yaml.org,2002:str", "url"), policy_node)],
                start_mark=policy_node.start_mark,
                end_mark=policy_node.end_mark,
            )
        policy = _document(check, AGENCY_ID, AGENCY_POLICY_ID, where, policy_node, settings)
    return AgencySite(
        name=values.get("name", "Agency site"),
        reviewers=_strings(values.get("reviewer")),
        pages=tuple(pages),
        privacy_policy=policy,
    )


def _check_routing(
    check: _Checker, watchlist: Watchlist, top: dict[str, tuple[yaml.Node, yaml.Node]]
) -> None:
    """Every name must resolve, and every change must reach somebody."""
    known = watchlist.reviewers
    settings_node = top["settings"][1] if "settings" in top else None
    for key in ("admin", "default_reviewer"):
        rid = getattr(watchlist.settings, key)
        if rid and rid not in known:
            check.error(settings_node, f"settings.{key}", f"unknown reviewer {rid!r}")
    platforms_node = top["platforms"][1] if "platforms" in top else None
    nodes = check.mapping(platforms_node, "platforms") if platforms_node is not None else {}
    routes = [
        (f"platforms.{p.id}", nodes[p.id][1] if p.id in nodes else None, p.reviewers)
        for p in watchlist.platforms.values()
        if p.id in nodes  # the agency's pseudo-platform is checked as agency_site
    ]
    if watchlist.agency_site is not None:
        site_node = top["agency_site"][1]
        # The reviewer's own line, if it has one (read without re-checking the mapping).
        pairs = site_node.value if isinstance(site_node, yaml.MappingNode) else []
        node = next((v for k, v in pairs if k.value == "reviewer"), site_node)
        routes.append(("agency_site", node, watchlist.agency_site.reviewers))
    for where, node, reviewers in routes:
        for rid in reviewers:
            if rid not in known:
                names = ", ".join(sorted(known)) or "none defined"
                check.error(
                    node, f"{where}.reviewer", f"unknown reviewer {rid!r} (reviewers: {names})"
                )
        if not reviewers and not watchlist.settings.default_reviewer:
            check.error(
                node,
                f"{where}.reviewer",
                "missing: no reviewer and no settings.default_reviewer, "
                "so its changes would reach nobody",
            )


def reviewers_for(watchlist: Watchlist, platform_id: str) -> tuple[str, ...]:
    platform = watchlist.platforms[platform_id]
    if platform.reviewers:
        return platform.reviewers
    default = watchlist.settings.default_reviewer
    return (default,) if default else ()


def page_label(url: str) -> str:
    """ "the home page" for a site's root, else "the page /path": how a reader names a page."""
    parts = urlsplit(url)
    if parts.path in ("", "/") and not parts.query:
        return "the home page"
    return f"the page {parts.path}{'?' + parts.query if parts.query else ''}"


def site_reviewers(watchlist: Watchlist) -> tuple[str, ...]:
    """Who hears about the agency site's cookies and third parties (the PIO, usually)."""
    site = watchlist.agency_site
    if site is None:
        return ()
    if site.reviewers:
        return site.reviewers
    default = watchlist.settings.default_reviewer
    return (default,) if default else ()


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: str, env: dict[str, str] | None = None) -> str:
    """Fill `${VAR}` from the environment; a missing one raises KeyError(name)."""
    env = dict(os.environ) if env is None else env

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise KeyError(name)
        return env[name]

    return _VAR.sub(fill, value)
