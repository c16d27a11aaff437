"""The agency site audit end to end: real Chromium against an agency site on 127.0.0.1 that sets a
session cookie and persistent cookies by header and by script, and loads a script and a pixel from
127.0.0.2, a third party that sets its own cookie; night after night a cookie is added, one removed,
a lifetime changed, a page fails. The PIO's digest goes through a real SMTP server (aiosmtpd).
Every cookie and storage value is a unique token that must appear nowhere the tool writes."""

from __future__ import annotations

import asyncio
import html
import json
import re
import secrets
import sqlite3
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.audit import (
    Cookie,
    PageAudit,
    ThirdParty,
    lifetime_changed,
    parse_set_cookie,
    record,
    site_key,
)
from monitor.store import SCHEMA_VERSION, Store
from monitor.watchlist import WatchlistError, load, site_reviewers
from tests.conftest import RESOLVER_RULES, run_cli
from tests.sites import PageServer, Route, policy_page
from tests.test_notify import SmtpSink

REPORT_URL = "https://reports.agency.example.gov/tos/"
DAY = 86400
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
PRIVACY = """# Privacy notice

## Cookies
This site uses a cookie to remember your display preferences. We do not use advertising cookies.

## Contact
Write to the agency's records officer with any question about this notice.
"""


class AgencySite:
    """The agency's pages on 127.0.0.1 and a third party on 127.0.0.2, rewritten night by night.
    Each night serves fresh values; all of them are kept in `values`."""

    def __init__(self) -> None:
        self.site = PageServer()
        self.third = PageServer("127.0.0.2")
        self.values: set[str] = set()
        # What the pages do tonight: tests flip these between nights.
        self.ad_id = False  # the pixel also sets a persistent `ad_id`
        self.theme = True  # the home page's own script sets `agency_theme`
        self.pref_max_age = 365 * DAY  # the home page's header cookie `agency_pref`
        self.beacon = False  # /services loads a beacon from the third party
        self.services_status = 200
        self.hostile = False  # a script sets a cookie and a storage key named like markup
        self.publish()

    def value(self) -> str:
        token = f"val{secrets.token_hex(10)}"
        self.values.add(token)
        return token

    def publish(self) -> None:
        third, site = self.third, self.site
        pixel_cookies = [("Set-Cookie", f"tp_uid={self.value()}; Max-Age={395 * DAY}; Path=/; "
                                        "SameSite=None; Secure")]  # fmt: skip
        if self.ad_id:
            pixel_cookies.append(("Set-Cookie", f"ad_id={self.value()}; Max-Age={395 * DAY}; "
                                                "Path=/; SameSite=None; Secure"))  # fmt: skip
        third.routes["/pixel.gif"] = Route(PIXEL, content_type="image/gif", headers=pixel_cookies)
        third.routes["/beacon.gif"] = Route(PIXEL, content_type="image/gif")
        widget = f"document.cookie = 'widget_seen={self.value()}; max-age={90 * DAY}; path=/';"
        third.routes["/widget.js"] = Route(widget.encode(), content_type="text/javascript")
        own = [f"localStorage.setItem('consent', '{self.value()}');",
               f"sessionStorage.setItem('tab', '{self.value()}');"]  # fmt: skip
        if self.theme:
            own.append(f"document.cookie = 'agency_theme={self.value()}; max-age={30 * DAY}; "
                       "path=/';")  # fmt: skip
        if self.hostile:
            # \\x3c is "<" for the script, so the page's own HTML holds no "</script>".
            own.append(f"document.cookie = '\\x3cscript\\x3ealert(1)\\x3c/script\\x3e="
                       f"{self.value()}; max-age=3600';")  # fmt: skip
            own.append(f"localStorage.setItem('\\x3cimg src=x onerror=alert(2)\\x3e', "
                       f"'{self.value()}');")  # fmt: skip
        home = f"""<!DOCTYPE html><html lang="en"><head><title>Example Agency</title>
<script>{" ".join(own)}</script>
<script src="{third.url("/widget.js")}"></script></head>
<body><main><h1>Example Agency</h1><p>Services for residents.</p>
<img src="{third.url("/pixel.gif")}" alt=""></main></body></html>"""
        site.routes["/"] = Route(home.encode(), headers=[
            ("Set-Cookie", f"agency_session={self.value()}; Path=/; HttpOnly"),
            ("Set-Cookie", f"agency_pref={self.value()}; Max-Age={self.pref_max_age}; Path=/"),
        ])  # fmt: skip
        beacon = f'<img src="{third.url("/beacon.gif")}" alt="">' if self.beacon else ""
        services = f"""<!DOCTYPE html><html lang="en"><head><title>Services</title></head>
<body><main><h1>Services</h1>{beacon}</main></body></html>"""
        site.routes["/services"] = Route(
            services.encode() if self.services_status == 200 else b"down",
            status=self.services_status,
            headers=[("Set-Cookie", f"svc_session={self.value()}; Path=/services")],
        )
        site.page("/privacy", policy_page(PRIVACY))

    def close(self) -> None:
        self.site.close()
        self.third.close()


@pytest.fixture
def agency() -> Iterator[AgencySite]:
    site = AgencySite()
    yield site
    site.close()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


def write_watchlist(home: Path, agency: AgencySite, smtp: SmtpSink | None = None) -> None:
    mailto = (
        [
            f"mailto://127.0.0.1:{smtp.port}?from=monitor@agency.example.gov&to=pio@agency.example.gov"
        ]
        if smtp
        else []
    )
    data = {
        "settings": {"admin": "web", "report_url": REPORT_URL, "timeout": 10, "min_chars": 40,
                     "concurrency": 2, "per_host": 2, "chromium_args": [RESOLVER_RULES]},
        "reviewers": {"web": {"name": "Web Team", "notify": []},
                      "pio": {"name": "Agency PIO", "notify": mailto}},
        "platforms": {},
        "agency_site": {
            "name": "Example Agency",
            "reviewer": "pio",
            "pages": [agency.site.url("/"), agency.site.url("/services")],
            "privacy_policy": agency.site.url("/privacy"),
        },
    }  # fmt: skip
    (home / "watchlist.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def night(home: Path, agency: AgencySite, outputs: list[str]) -> tuple[int, dict[str, Any]]:
    agency.publish()
    result = run_cli(home, "run", "--json")
    assert result.returncode in (0, 1), result.stderr
    outputs += [result.stdout, result.stderr]
    return result.returncode, json.loads(result.stdout)


def cookies_json(home: Path, outputs: list[str]) -> dict[str, Any]:
    result = run_cli(home, "cookies", "--json")
    assert result.returncode == 0, result.stderr
    outputs.append(result.stdout)
    return json.loads(result.stdout)


def changes_of(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted((c["page"], c["kind"], c["name"]) for c in summary["site_changes"])


def text_part(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None
    return " ".join(part.get_content().split())


def html_part(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def page_text(path: Path) -> str:
    """A report page's visible text, tags removed and entities decoded, spaces folded."""
    source = path.read_text(encoding="utf-8")
    main = source[source.index("<main") : source.index("</main>")]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", main)).split())


COOKIE_KEYS = {"page", "name", "domain", "party", "persistent", "lifetime_days", "secure",
               "http_only", "same_site", "set_by", "first_seen"}  # fmt: skip
HOST_KEYS = {"page", "host", "types", "first_seen"}


def test_nightly_audit_finds_cookies_and_third_parties_and_tells_the_pio(
    agency: AgencySite, smtp: SmtpSink, tmp_path: Path
) -> None:
    write_watchlist(tmp_path, agency, smtp)
    home_url, services_url = agency.site.url("/"), agency.site.url("/services")
    outputs: list[str] = []

    # Night 1: the baseline. Every cookie, as the browser stores it, and who set it.
    code, summary = night(tmp_path, agency, outputs)
    assert code == 0 and summary["failures"] == []
    assert summary["site_changes"] == [], "a page's first audit is its baseline"
    assert smtp.envelopes == [], "a baseline is not news"
    first = cookies_json(tmp_path, outputs)
    assert all(set(c) == COOKIE_KEYS for c in first["cookies"])
    assert all(set(h) == HOST_KEYS for h in first["third_party_hosts"])
    home = {c["name"]: c for c in first["cookies"] if c["page"] == home_url}
    assert set(home) == {"agency_session", "agency_pref", "agency_theme", "widget_seen", "tp_uid"}
    assert home["agency_session"] | {"first_seen": ""} == {
        "page": home_url, "name": "agency_session", "domain": "127.0.0.1", "party": "first-party",
        "persistent": False, "lifetime_days": None, "secure": False, "http_only": True,
        "same_site": "Lax", "set_by": "response from 127.0.0.1", "first_seen": "",
    }  # fmt: skip
    assert (home["agency_pref"]["persistent"], home["agency_pref"]["lifetime_days"],
            home["agency_pref"]["set_by"]) == (True, 365, "response from 127.0.0.1")  # fmt: skip
    assert (home["agency_theme"]["lifetime_days"], home["agency_theme"]["set_by"]) == (
        30, "script from 127.0.0.1")  # fmt: skip
    # A first-party cookie written by the third party's script: the case the PIO must see.
    assert (home["widget_seen"]["party"], home["widget_seen"]["domain"],
            home["widget_seen"]["lifetime_days"], home["widget_seen"]["set_by"]) == (
        "first-party", "127.0.0.1", 90, "script from 127.0.0.2")  # fmt: skip
    assert {k: home["tp_uid"][k] for k in ("domain", "party", "persistent", "lifetime_days",
                                           "secure", "same_site", "set_by")} == {
        "domain": "127.0.0.2", "party": "third-party", "persistent": True, "lifetime_days": 395,
        "secure": True, "same_site": "None", "set_by": "response from 127.0.0.2",
    }  # fmt: skip
    names = [c["name"] for c in first["cookies"] if c["page"] == home_url]
    assert names[-1] == "agency_session", "persistent cookies first"
    services = [c for c in first["cookies"] if c["page"] == services_url]
    assert [(c["name"], c["persistent"]) for c in services] == [("svc_session", False)]
    services_baseline_at = services[0]["first_seen"]
    assert [(h["page"], h["host"], h["types"]) for h in first["third_party_hosts"]] == [
        (home_url, "127.0.0.2", ["image", "script"])
    ]
    baseline_at = home["agency_pref"]["first_seen"]
    assert baseline_at.startswith("20") and baseline_at.endswith("Z")

    # Night 2: the pixel starts setting `ad_id`, and /services starts calling the third party.
    agency.ad_id, agency.beacon = True, True
    code, summary = night(tmp_path, agency, outputs)
    assert code == 0
    assert changes_of(summary) == [(home_url, "new-cookie", "ad_id"),
                                   (services_url, "new-third-party", "127.0.0.2")]  # fmt: skip
    [ad_id] = [c for c in summary["site_changes"] if c["name"] == "ad_id"]
    assert (ad_id["party"], ad_id["persistent"], ad_id["lifetime_days"], ad_id["set_by"]) == (
        "third-party", True, 395, "response from 127.0.0.2")  # fmt: skip
    [mail] = smtp.messages
    assert smtp.envelopes[0].rcpt_tos == ["pio@agency.example.gov"]
    assert "Example Agency" in mail["Subject"] and "ad_id" in mail["Subject"]
    text = text_part(mail)  # Apprise's plain-text alternative of the HTML body
    assert ("The home page started setting a persistent cookie ad_id for 395 days, set by a "
            "response from 127.0.0.2 (third-party).") in text  # fmt: skip
    assert "The page /services started calling the third party 127.0.0.2 (image)." in text
    assert "review that decision with the Public Information Officer (PIO)" in text
    assert "consistent with the agency's own privacy policy" in text
    assert f"{REPORT_URL}agency.html" in text
    body = html_part(mail)
    assert "<code>ad_id</code>" in body and f'href="{REPORT_URL}agency.html"' in body
    ad_id_seen = next(c for c in cookies_json(tmp_path, outputs)["cookies"]
                      if c["name"] == "ad_id")["first_seen"]  # fmt: skip
    assert ad_id_seen > baseline_at

    # Night 3: the home page's own script stops setting `agency_theme`; the beacon goes away.
    agency.theme, agency.beacon = False, False
    code, summary = night(tmp_path, agency, outputs)
    assert changes_of(summary) == [(home_url, "cookie-gone", "agency_theme"),
                                   (services_url, "third-party-gone", "127.0.0.2")]  # fmt: skip
    text = text_part(smtp.messages[-1])
    assert "The home page no longer sets the cookie agency_theme (it was a persistent cookie " \
        "for 30 days, first-party)." in text  # fmt: skip
    assert "The page /services no longer calls the third party 127.0.0.2 (image)." in text

    # Night 4: `agency_pref` now lasts 90 days instead of a year.
    agency.pref_max_age = 90 * DAY
    code, summary = night(tmp_path, agency, outputs)
    assert changes_of(summary) == [(home_url, "cookie-lifetime-changed", "agency_pref")]
    [change] = summary["site_changes"]
    assert (change["was_lifetime_days"], change["lifetime_days"]) == (365, 90)
    assert "The home page changed the cookie agency_pref from a persistent cookie for 365 " \
        "days to a persistent cookie for 90 days" in text_part(smtp.messages[-1])  # fmt: skip
    assert len(smtp.messages) == 3

    # Night 5: /services fails. A failure with its class, exit status 1, and nothing "gone".
    agency.services_status = 503
    code, summary = night(tmp_path, agency, outputs)
    assert code == 1
    assert summary["site_changes"] == []
    assert [(f["platform"], f["page"], f["error"]) for f in summary["failures"]] == [
        ("agency", services_url, "http-5xx")
    ]
    report = page_text(tmp_path / "reports" / "agency.html")
    assert "Failing at its last audit" in report and "http-5xx" in report
    assert "svc_session" in report, "a failing page still shows what its last audit found"
    assert len(smtp.messages) == 3, "a failure is not a site change"

    # Night 6: /services is back: compared with its last successful audit, nothing changed.
    agency.services_status = 200
    code, summary = night(tmp_path, agency, outputs)
    assert code == 0 and summary["site_changes"] == [] and summary["failures"] == []

    latest = cookies_json(tmp_path, outputs)
    now = {(c["page"], c["name"]): c for c in latest["cookies"]}
    assert (home_url, "agency_theme") not in now
    assert now[(home_url, "ad_id")]["first_seen"] == ad_id_seen
    assert now[(home_url, "agency_pref")]["first_seen"] == baseline_at
    assert now[(home_url, "agency_pref")]["lifetime_days"] == 90
    assert now[(services_url, "svc_session")]["first_seen"] == services_baseline_at

    # The report's page: persistent first, what disappeared and when, linked from the index.
    index = (tmp_path / "reports" / "index.html").read_text()
    assert 'href="agency.html"' in index
    # The agency's privacy policy is a row like a platform's, asked the privacy questions.
    assert 'href="platforms/agency.html">Other privacy questions</a>' in index
    report = page_text(tmp_path / "reports" / "agency.html")
    assert "Example Agency: cookies and third parties" in report
    assert "Failing" not in report
    set_now = report[report.index("Cookies set now") : report.index("Cookies no longer set")]
    assert set_now.index("ad_id") < set_now.index("agency_pref") < set_now.index("agency_session")
    gone = report[report.index("Cookies no longer set") : report.index("Third parties called")]
    assert "agency_theme" in gone and re.search(r"\d{4}-\d\d-\d\d \d{4}-\d\d-\d\d", gone)
    hosts_gone = report[report.rindex("Third parties no longer called") :]
    assert re.match(r"Third parties no longer called Host .* 127\.0\.0\.2 image "
                    r"\d{4}-\d\d-\d\d \d{4}-\d\d-\d\d Storage keys", hosts_gone)  # fmt: skip
    assert "localStorage of 127.0.0.1 : consent" in report
    assert "review that decision with the Public Information Officer" in report

    # No value, anywhere the tool wrote or printed.
    everything = "\n".join([*outputs, database_dump(tmp_path), *files_text(tmp_path),
                            *(m.as_string() for m in smtp.messages)])  # fmt: skip
    leaked = [v for v in agency.values if v in everything]
    assert leaked == [] and len(agency.values) > 40


def database_dump(home: Path) -> str:
    with sqlite3.connect(home / "monitor.db") as db:
        return "\n".join(db.iterdump())


def files_text(home: Path) -> list[str]:
    """Every file under the home folder (reports, snapshots, caches), decompressed if gzip."""
    import gzip

    out = []
    for path in home.rglob("*"):
        if path.is_file() and not path.name.startswith("monitor.db"):
            data = path.read_bytes()
            out.append((gzip.decompress(data) if path.suffix == ".gz" else data).decode(
                "utf-8", errors="replace"))  # fmt: skip
    return out


def test_hostile_cookie_and_storage_names_are_escaped_everywhere(
    agency: AgencySite, tmp_path: Path
) -> None:
    agency.hostile = True
    write_watchlist(tmp_path, agency)
    outputs: list[str] = []
    night(tmp_path, agency, outputs)
    page = (tmp_path / "reports" / "agency.html").read_text()
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    table = run_cli(tmp_path, "cookies")
    assert table.returncode == 0 and "<script>alert(1)</script>" in table.stdout
    assert "\x1b" not in table.stdout
    leaked = [v for v in agency.values if v in page + table.stdout + "".join(outputs)]
    assert leaked == []


def test_a_page_that_never_loaded_has_no_baseline_until_it_does_and_the_admin_hears(
    agency: AgencySite, smtp: SmtpSink, tmp_path: Path
) -> None:
    write_watchlist(tmp_path, agency)
    data = yaml.safe_load((tmp_path / "watchlist.yaml").read_text())
    data["settings"]["failure_alert_after"] = 1
    data["reviewers"]["web"]["notify"] = [
        f"mailto://127.0.0.1:{smtp.port}?from=monitor@agency.example.gov&to=web@agency.example.gov"
    ]
    (tmp_path / "watchlist.yaml").write_text(yaml.safe_dump(data))
    agency.services_status = 404
    outputs: list[str] = []
    code, summary = night(tmp_path, agency, outputs)
    assert code == 1 and [f["error"] for f in summary["failures"]] == ["http-4xx"]
    assert [c["page"] for c in cookies_json(tmp_path, outputs)["cookies"]].count(
        agency.site.url("/services")) == 0  # fmt: skip
    assert "never audited successfully" in run_cli(tmp_path, "cookies").stdout
    [alert] = smtp.messages
    assert alert["Subject"] == "[TOS monitor] Fetch failing: Agency site the page /services " \
        "(http-4xx)"  # fmt: skip
    assert "The page is gone or has moved (404)" in text_part(alert)

    agency.services_status = 200
    code, summary = night(tmp_path, agency, outputs)
    assert code == 0 and summary["site_changes"] == [], "its first success is its baseline"
    assert smtp.messages[-1]["Subject"] == "[TOS monitor] Fetched again: Agency site the page " \
        "/services"  # fmt: skip
    assert len(smtp.messages) == 2


def test_only_agency_audits_the_site_and_its_policy_and_nothing_else(
    agency: AgencySite, tmp_path: Path, server: PageServer
) -> None:
    write_watchlist(tmp_path, agency)
    data = yaml.safe_load((tmp_path / "watchlist.yaml").read_text())
    server.page("/terms", policy_page("# Terms\n\nThese terms govern the use of the service."))
    data["platforms"] = {"example": {"name": "Example", "reviewer": "web", "documents": {
        "terms": {"url": server.url("/terms")}}}}  # fmt: skip
    (tmp_path / "watchlist.yaml").write_text(yaml.safe_dump(data))
    result = run_cli(tmp_path, "run", "--json", "--only", "agency")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["documents"] == 1 and summary["stats"]["site_pages"] == 2
    assert server.hits.get("/terms") is None
    result = run_cli(tmp_path, "run", "--json", "--only", "example")
    assert json.loads(result.stdout)["stats"]["site_pages"] == 0
    history = run_cli(tmp_path, "history", "agency", "privacy-policy")
    assert history.returncode == 0 and "baseline" in history.stdout.lower()


# --------------------------------------------------------------------------------------------
# Recording rules, on real SQLite files (no browser needed to decide what counts as a change)


def cookie(name: str, days: float | None, now: float, **kw: Any) -> Cookie:
    return Cookie(
        name=name, domain=kw.get("domain", "agency.example.gov"), path="/",
        party=kw.get("party", "first-party"), persistent=days is not None,
        expires=now + days * DAY if days is not None else None, lifetime_days=days,
        secure=False, http_only=False, same_site="Lax", set_by="response",
        set_by_host="agency.example.gov",
    )  # fmt: skip


def test_a_fixed_expiry_date_or_a_rolling_lifetime_is_not_a_lifetime_change() -> None:
    now = 1_800_000_000.0
    rolling = cookie("a", 395, now)
    assert not lifetime_changed(rolling, cookie("a", 395, now + DAY)), "set a year from now"
    fixed = cookie("b", 200, now)
    later = Cookie(**{**fixed.__dict__, "lifetime_days": 199})  # same expiry, a night later
    assert not lifetime_changed(fixed, later)
    assert lifetime_changed(rolling, cookie("a", 30, now + DAY))
    assert lifetime_changed(rolling, cookie("a", None, now)), "persistent to session"


def test_party_follows_the_public_suffix_list_and_addresses() -> None:
    assert site_key("www.agency.example.gov") == site_key("cdn.example.gov") == "example.gov"
    assert site_key("agency.example.co.uk") != site_key("tracker.co.uk")
    assert site_key("127.0.0.1") == "127.0.0.1" != site_key("127.0.0.2")
    assert site_key(".Stats.Example.com") == "example.com"


def test_a_set_cookie_header_is_cut_to_its_name_and_domain() -> None:
    assert parse_set_cookie("sid=abc123; Path=/; Domain=.Example.gov; HttpOnly", "www.x.gov") == (
        "sid", "example.gov")  # fmt: skip
    assert parse_set_cookie("theme=dark", "www.example.gov") == ("theme", "www.example.gov")
    assert parse_set_cookie("novalue", "h") == ("", "h")


def audit(page: str, stamp: str, cookies: list[Cookie], hosts: tuple[str, ...] = ()) -> PageAudit:
    return PageAudit(page, stamp, cookies=cookies,
                     third_parties=[ThirdParty(h, ("script",), 1) for h in hosts])  # fmt: skip


def test_a_cookie_that_comes_and_goes_is_reported_twice_then_kept_quiet(tmp_path: Path) -> None:
    store = Store(tmp_path)
    now, page = 1_800_000_000.0, "https://agency.example.gov/"
    sampled = cookie("_sampled", 30, now)
    nights = [[sampled], [], [sampled], [], [sampled]]
    found = []
    for n, cookies in enumerate(nights, start=1):
        run_id = store.start_run(f"2026-11-0{n}T03:00:00.000000Z", None)
        found.append(record(store, run_id, audit(page, f"2026-11-0{n}T03:00:00.000000Z", cookies)))
    assert found[0] == []
    assert [(c.kind, c.quiet) for night_changes in found[1:] for c in night_changes] == [
        ("cookie-gone", False), ("new-cookie", False), ("cookie-gone", True), ("new-cookie", True)
    ]  # fmt: skip
    store.close()


def test_an_older_database_gains_the_site_tables_without_a_row_rewritten(tmp_path: Path) -> None:
    store = Store(tmp_path)
    run_id = store.start_run("2026-11-01T03:00:00.000000Z", None)
    store.finish_run(run_id, "2026-11-01T03:00:09.000000Z", {"documents": 0}, {})
    for table in ("site_audits", "site_cookies", "site_storage", "site_hosts", "site_changes"):
        store.db.execute(f"drop table {table}")
    store.db.execute("PRAGMA user_version=2")
    store.close()
    with sqlite3.connect(tmp_path / "monitor.db") as db:
        before = db.execute("select * from runs").fetchall()

    store = Store(tmp_path)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 3
    assert store.db.table("site_audits").exists() and store.db.table("site_changes").exists()
    store.close()
    with sqlite3.connect(tmp_path / "monitor.db") as db:
        assert db.execute("select * from runs").fetchall() == before


# --------------------------------------------------------------------------------------------
# The watchlist section

SITE = """\
settings:
  default_reviewer: web
reviewers:
  web: {name: Web Team}
  pio: {name: Agency PIO}
platforms: {}
agency_site:
  name: Example Agency
  reviewer: pio
  pages:
    - https://agency.example.gov/
    - https://agency.example.gov/services
  privacy_policy: https://agency.example.gov/privacy
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "watchlist.yaml"
    path.write_text(text)
    return path


def test_agency_site_needs_no_platforms_and_its_policy_is_watched_like_one(
    tmp_path: Path,
) -> None:
    watchlist = load(write(tmp_path, SITE))
    assert watchlist.agency_site is not None
    assert watchlist.agency_site.pages == ("https://agency.example.gov/",
                                           "https://agency.example.gov/services")  # fmt: skip
    [policy] = watchlist.documents()
    assert (policy.key, policy.url, policy.name) == (
        "agency/privacy-policy",
        "https://agency.example.gov/privacy",
        "Privacy Policy",
    )
    assert watchlist.platforms["agency"].name == "Example Agency"
    assert site_reviewers(watchlist) == ("pio",)
    no_reviewer = load(write(tmp_path, SITE.replace("  reviewer: pio\n", "")))
    assert site_reviewers(no_reviewer) == ("web",), "falls back to settings.default_reviewer"
    no_platforms_key = load(write(tmp_path, SITE.replace("platforms: {}\n", "")))
    assert no_platforms_key.platforms.keys() == {"agency"}
    selected = load(
        write(
            tmp_path,
            SITE.replace(
                "  privacy_policy: https://agency.example.gov/privacy",
                "  privacy_policy: {url: 'https://agency.example.gov/privacy', select: '#notice'}",
            ),
        )
    )
    assert selected.agency_site and selected.agency_site.privacy_policy
    assert selected.agency_site.privacy_policy.select == ("#notice",)


def test_agency_site_problems_name_file_line_and_key(tmp_path: Path) -> None:
    bad = (
        SITE.replace("reviewer: pio", "reviewer: nobody")
        .replace(
            "    - https://agency.example.gov/services",
            "    - ftp://agency.example.gov/services\n    - https://agency.example.gov/",
        )
        .replace("privacy_policy: https", "privacy_policy: javascript")
        + "  colour: blue\n"
    )
    bad += "\n".join(["", "platforms:", "  agency:", "    reviewer: web",
                      "    documents: {t: {url: 'https://x.example/'}}", ""])  # fmt: skip
    bad = bad.replace("platforms: {}\n", "")
    with pytest.raises(WatchlistError) as info:
        load(write(tmp_path, bad))
    text = str(info.value)
    assert "watchlist.yaml:11: agency_site.pages[1]: not an http(s) URL" in text
    assert "watchlist.yaml:12: agency_site.pages[2]: listed twice" in text
    assert "watchlist.yaml:13: agency_site.privacy_policy.url: not an http(s) URL" in text
    assert "watchlist.yaml:14: agency_site.colour: unknown key" in text
    assert "watchlist.yaml:8: agency_site.reviewer: unknown reviewer 'nobody'" in text
    assert "watchlist.yaml:17: platforms.agency: the platform id 'agency' is reserved" in text
    result = run_cli(tmp_path, "validate")
    assert result.returncode == 2 and "agency_site.pages[1]" in result.stderr


def test_the_digest_section_escapes_names_for_each_format() -> None:
    from monitor.notify import messages
    from monitor.notify.site import SiteNotice

    notice = SiteNotice("Example Agency", "https://agency.example.gov/", "new-cookie",
                        "<b>x</b>*_`", {"persistent": True, "lifetime_days": 395,
                                        "party": "first-party", "set_by": "script from a.test"},
                        "2026-11-24T03:00:00Z", f"{REPORT_URL}agency.html")  # fmt: skip
    content = messages.Content("digest", "Agency PIO", site=(notice,))
    html_body = messages.render(messages.FORMATS["html"], content).body
    assert "<b>x</b>" not in html_body and "<code>&lt;b&gt;x&lt;/b&gt;*_`</code>" in html_body
    markdown = messages.render(messages.FORMATS["markdown"], content)
    assert "<b>" not in markdown.body and r"\*\_\`" in markdown.body
    assert markdown.subject.startswith("[TOS monitor] Example Agency: the home page started")


def test_the_browser_audits_nothing_when_the_watchlist_has_no_agency_site(
    tmp_path: Path,
) -> None:
    from monitor.audit import audit_site
    from monitor.fetch import FetchPool

    watchlist = load(write(tmp_path, SITE.split("platforms:")[0] + "platforms:\n  x: {reviewer: "
                           "web, documents: {t: {url: 'http://127.0.0.1:9/'}}}\n"))  # fmt: skip
    store = Store(tmp_path)
    pool = FetchPool(watchlist.settings)
    result = asyncio.run(audit_site(watchlist, store, 1, pool))
    assert result.audits == [] and pool._fetchers == {}, "no browser started for nothing"
    store.close()


def test_the_audit_is_a_first_visit_though_the_documents_cached_the_same_script(
    agency: AgencySite, tmp_path: Path
) -> None:
    """The run's document fetches keep Chromium's HTTP cache (a platform's documents share their
    scripts); the audit, in the same browser right after them, must still be a first visit: the
    third party's cacheable widget asked for again, and the cookie it writes seen and named."""
    write_watchlist(tmp_path, agency)
    agency.publish()
    third = agency.third
    widget = third.routes["/widget.js"]
    assert isinstance(widget, Route)
    widget.headers = {"Cache-Control": "public, max-age=86400"}
    # The watched privacy policy loads the same widget as the audited home page, and is fetched
    # first: the audit starts once every document is done with the browser.
    script = f'<script src="{third.url("/widget.js")}"></script></head>'
    agency.site.page("/privacy", policy_page(PRIVACY).replace("</head>", script, 1))
    result = run_cli(tmp_path, "run", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["failures"] == [] and summary["stats"]["site_pages"] == 2
    assert third.hits.get("/widget.js") == 2, "once by the document, once by the audit's visit"
    audit = cookies_json(tmp_path, [])
    home_url = agency.site.url("/")
    [seen] = [c for c in audit["cookies"] if c["page"] == home_url and c["name"] == "widget_seen"]
    assert seen["set_by"] == "script from 127.0.0.2"
    hosts = {(h["page"], h["host"]): h["types"] for h in audit["third_party_hosts"]}
    assert "script" in hosts[(home_url, "127.0.0.2")]
