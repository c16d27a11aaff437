"""Each failure class is recorded as a failure with its class, never as a version, and never stops
the other documents. One run serves every fault at once from 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import socket
from pathlib import Path

import markdown
import pytest

from monitor.fetch import classify_network_error
from monitor.store import Store
from tests.conftest import launch_chromium, make_watchlist, run_cli, run_json
from tests.sites import PageServer, Route, policy_page

GOOD = "# Terms\n\nThese terms govern your use of the service and are long enough to count.\n"


def closed_port() -> int:
    """A loopback port nobody listens on, so a connection is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def faulty_site(server: PageServer, tmp_path: Path) -> tuple[PageServer, Path]:
    server.page("/good", policy_page(GOOD))
    server.page("/gone", "gone", status=404)
    server.page("/broken", "oops", status=500)
    server.page("/slow", policy_page(GOOD), delay=8)
    server.page("/short", "<html><body><main><p>Loading…</p></main></body></html>")
    server.page("/redesigned", policy_page(GOOD))
    server.routes["/data"] = Route(b'{"terms": 1}', content_type="application/json")
    port = closed_port()
    make_watchlist(
        tmp_path,
        {
            "good": {"url": server.url("/good")},
            "gone": {"url": server.url("/gone")},
            "broken": {"url": server.url("/broken")},
            "slow": {"url": server.url("/slow"), "timeout": 2},
            "short": {"url": server.url("/short"), "timeout": 2},
            "redesigned": {"url": server.url("/redesigned"), "select": ["#terms-body"],
                           "timeout": 2},
            "data": {"url": server.url("/data")},
            "refused": {"url": f"http://127.0.0.1:{port}/terms"},
            "no-such-host": {"url": "http://policies.example.invalid/terms"},
            "tls": {"url": f"https://127.0.0.1:{server.port}/good"},
            "http-gone": {"url": server.url("/gone"), "render": "http"},
            "http-refused": {"url": f"http://127.0.0.1:{port}/terms", "render": "http"},
        },
        settings={"concurrency": 4, "per_host": 4},
    )  # fmt: skip
    return server, tmp_path


def test_every_failure_class_is_recorded_and_the_rest_still_works(
    faulty_site: tuple[PageServer, Path],
) -> None:
    server, home = faulty_site
    code, summary = run_json(home)
    assert code == 1, "exit status 1 when some documents failed"
    failures = {f["document"]: f["error"] for f in summary["failures"]}
    assert failures == {
        "gone": "http-4xx",
        "broken": "http-5xx",
        "slow": "timeout",
        "short": "empty",
        "redesigned": "selector-missing",
        "data": "not-html",
        "refused": "connection",
        "no-such-host": "dns",
        "tls": "tls",
        "http-gone": "http-4xx",
        "http-refused": "connection",
    }
    messages = {f["document"]: f["message"] for f in summary["failures"]}
    assert "404" in messages["gone"] and "#terms-body" in messages["redesigned"]
    assert summary["documents"] == 12 and summary["unchanged"] == 1

    store = Store(home)
    assert [v.document_key for v in store.versions("example/good")] == ["example/good"]
    for name in failures:
        assert store.versions(f"example/{name}") == [], f"{name} must not become a version"
        [fetch] = store.fetches(f"example/{name}")
        assert fetch["outcome"] == "failed" and fetch["error_class"] == failures[name]
        document = store.document(f"example/{name}")
        assert document is not None
        assert document["status"] == "failing" and document["consecutive_failures"] == 1
    assert store.fetches("example/broken")[0]["attempts"] == 2, "5xx is retried once"
    assert store.fetches("example/gone")[0]["attempts"] == 1, "404 is not retried"


def test_a_machine_without_network_is_told_a_connection_failure_not_a_browser_one(
    server: PageServer,
) -> None:
    """A server cut off from the network (a new install behind a firewall, say) must read
    `connection` for every document, not `browser` ("Chromium could not start or crashed"),
    which sends the admin to debug the browser. Real Chromium, told it is offline (DevTools
    network emulation: nothing is sent anywhere), gives the message the fetch classifies."""
    from playwright.sync_api import Error, sync_playwright

    server.page("/terms", policy_page(GOOD))
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page()
        session = page.context.new_cdp_session(page)
        session.send("Network.enable")
        session.send(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        with pytest.raises(Error) as raised:
            page.goto(server.url("/terms"))
        browser.close()
    message = str(raised.value).splitlines()[0]
    assert "net::ERR_INTERNET_DISCONNECTED" in message
    assert classify_network_error(message) == "connection"


@pytest.mark.parametrize(
    ("message", "error_class"),
    [
        # Chromium, as Playwright words its navigation errors
        ("Page.goto: net::ERR_ADDRESS_UNREACHABLE at https://example.org/terms", "connection"),
        ("Page.goto: net::ERR_NETWORK_ACCESS_DENIED at https://example.org/terms", "connection"),
        ("Page.goto: net::ERR_NAME_RESOLUTION_FAILED at https://example.org/terms", "dns"),
        ("Page.goto: net::ERR_CONNECTION_TIMED_OUT at https://example.org/terms", "timeout"),
        ("Page.goto: Target page, context or browser has been closed", "browser"),
        # httpx, for `render: http` documents, as the fetch words them (type: text)
        ("ConnectError: [Errno 101] Network is unreachable", "connection"),
        ("ConnectError: [Errno -3] Temporary failure in name resolution", "dns"),
        ("ConnectError: [Errno -5] No address associated with hostname", "dns"),
    ],
)
def test_network_errors_are_classed_by_what_the_admin_must_fix(
    message: str, error_class: str
) -> None:
    assert classify_network_error(message) == error_class


def test_a_failure_after_a_good_version_keeps_the_version(
    server: PageServer, tmp_path: Path
) -> None:
    server.page("/terms", policy_page(GOOD))
    make_watchlist(tmp_path, {"terms": {"url": server.url("/terms")}})
    assert run_json(tmp_path)[0] == 0
    server.page("/terms", "down", status=503)
    code, summary = run_json(tmp_path)
    assert code == 1 and summary["changes"] == []
    server.page("/terms", policy_page(GOOD))
    code, summary = run_json(tmp_path)
    assert code == 0 and summary["changes"] == [], "recovering is not a change"
    store = Store(tmp_path)
    assert len(store.versions("example/terms")) == 1
    document = store.document("example/terms")
    assert document is not None and document["status"] == "ok"
    assert [f["outcome"] for f in store.fetches("example/terms")] == [
        "baseline", "failed", "unchanged"
    ]  # fmt: skip


def test_text_output_names_the_failures(server: PageServer, tmp_path: Path) -> None:
    make_watchlist(tmp_path, {"terms": {"url": server.url("/missing")}})
    result = run_cli(tmp_path, "run")
    assert result.returncode == 1
    assert "FAILED   example/terms: http-4xx: HTTP 404" in result.stdout


def test_every_failure_class_has_a_hint_for_the_admin() -> None:
    from monitor.fetch import ERROR_CLASSES
    from monitor.notify.messages import HINTS

    assert [c for c in ERROR_CLASSES if c not in HINTS] == []


WALLS_DIR = Path(__file__).parent / "fixtures" / "walls"


def wall_page(title: str, heading: str, note: str, login: bool = False) -> str:
    """An interstitial as platforms and CDNs serve them: a short message, maybe a login form."""
    form = (
        '<form action="/login"><input name="email"><input type="password" name="pass">'
        "<button>Log in</button></form>"
        if login
        else ""
    )
    return (
        f"<!DOCTYPE html><html><head><title>{title}</title></head><body>{form}"
        f"<div class='box'><h2>{heading}</h2><p>{note}</p></div>"
        "<footer><a href='/about'>About</a> <a href='/privacy'>Privacy</a></footer></body></html>"
    )


# Short, and mentions blocking and logging in, in sentences: a policy, not a wall.
SHORT_POLICY = """# Account security

If you use a feature too fast, we may temporarily block it to protect other people, and you will
see a message until the block ends.

You must log in to continue using some features; log in to see your settings and the choices you
made about your data.
"""


def test_walls_and_interstitials_are_blocked_in_any_language_but_a_policy_is_not(
    server: PageServer, tmp_path: Path
) -> None:
    """Bot checks and rate-limit walls say `blocked` (the admin's fix is not a selector or a
    timeout), in the platforms' wordings and languages, including a real French Facebook wall;
    a short policy that mentions blocking and logging in is still recorded as a policy."""
    pages = {
        "just-a-moment": wall_page(
            "Just a moment...", "Checking if the site connection is secure",
            "example.com needs to review the security of your connection before proceeding.",
        ),
        "verify-human": wall_page(
            "Security check", "Verify you are human", "Complete the action below to continue."
        ),
        "access-denied": wall_page(
            "Access Denied", "Access Denied",
            "You don't have permission to access this page on this server. Reference #18.2f",
        ),
        "de": wall_page("Facebook", "Diese Funktion ist vorübergehend blockiert",
                        "Du hast diese Funktion zu schnell verwendet.", login=True),
        "es": wall_page("Facebook", "Esta función está bloqueada temporalmente",
                        "Parece que hiciste un uso indebido de esta función.", login=True),
        "it": wall_page("Facebook", "Questa funzione è temporaneamente bloccata",
                        "Sembra che tu abbia usato questa funzione in modo improprio.", login=True),
        "pt": wall_page("Facebook", "Este recurso está temporariamente bloqueado",
                        "Parece que você estava usando este recurso de forma indevida.",
                        login=True),
        "nl": wall_page("Facebook", "Deze functie is tijdelijk geblokkeerd",
                        "Je hebt deze functie te snel gebruikt.", login=True),
    }  # fmt: skip
    documents: dict[str, dict[str, object]] = {}
    for name, body in pages.items():
        server.page(f"/{name}", body)
        documents[name] = {"url": server.url(f"/{name}")}
    real_wall = gzip.decompress((WALLS_DIR / "facebook-fr-feature-blocked.html.gz").read_bytes())
    server.routes["/fb-fr"] = Route(real_wall)
    documents["fb-fr"] = {"url": server.url("/fb-fr")}
    # With Open Terms Archive's selector for the policy, which the wall does not have.
    documents["fb-fr-select"] = {"url": server.url("/fb-fr"), "select": ["._9ntw"]}
    server.page("/short-policy", policy_page(SHORT_POLICY))
    documents["short-policy"] = {"url": server.url("/short-policy")}
    make_watchlist(
        tmp_path, documents, settings={"concurrency": 4, "per_host": 4, "min_chars": 100}
    )
    code, summary = run_json(tmp_path)
    assert code == 1
    failures = {f["document"]: f["error"] for f in summary["failures"]}
    assert failures == {name: "blocked" for name in documents if name != "short-policy"}
    messages = {f["document"]: f["message"] for f in summary["failures"]}
    assert "Cette fonction est temporairement bloquée" in messages["fb-fr-select"]
    assert [v.document_key for v in Store(tmp_path).versions("example/short-policy")] == [
        "example/short-policy"
    ]


def test_a_huge_page_is_too_large_at_once_not_a_timeout(server: PageServer, tmp_path: Path) -> None:
    """30 MB: refused on its Content-Length, or, for a page sent without one, by the bytes that
    arrived (Chromium reads a huge page only as fast as it parses it); never retried as if it were
    a slow server."""
    filler = "<p>Filler paragraph of a page far too big to be a policy.</p>\n" * 520_000
    huge = policy_page(GOOD).replace("</main>", filler + "</main>").encode()
    assert len(huge) > 30_000_000
    server.routes["/huge"] = Route(huge)
    server.routes["/huge-streamed"] = Route(huge, stream=True)
    make_watchlist(
        tmp_path,
        {
            "huge": {"url": server.url("/huge")},
            "huge-streamed": {"url": server.url("/huge-streamed")},
        },
        settings={"concurrency": 2, "per_host": 2, "timeout": 30},
    )
    code, summary = run_json(tmp_path)
    assert code == 1
    assert {f["document"]: f["error"] for f in summary["failures"]} == {
        "huge": "too-large", "huge-streamed": "too-large"
    }  # fmt: skip
    messages = {f["document"]: f["message"] for f in summary["failures"]}
    assert "announces" in messages["huge"]
    store = Store(tmp_path)
    for name in ("huge", "huge-streamed"):
        assert store.fetches(f"example/{name}")[0]["attempts"] == 1


LATE_FILL = """<!DOCTYPE html><html><head><title>Terms</title></head><body>
<main id="policy"><p>Loading…</p></main><script>{script}</script></body></html>"""


def test_a_finished_page_without_policy_fails_without_waiting_but_a_filling_one_is_read(
    server: PageServer, tmp_path: Path
) -> None:
    """A page whose load finished, whose DOM stopped changing and that waits for nothing is done:
    with no policy text it fails (`empty`) without waiting for the timeout. Here it would only
    fill itself in 25 s later, long after anything a reader waits for, so reading it at once
    gives `empty` where waiting out the 60 s timeout would have read the policy. A page that is
    still filling in (a timer due in 3 s, a fetch answered after 3 s) is waited for and read."""
    text = json.dumps(markdown.markdown(GOOD))
    fill = "document.getElementById('policy').innerHTML = {};"
    server.page(
        "/done", LATE_FILL.format(script=f"setTimeout(() => {{ {fill.format(text)} }}, 25000);")
    )
    server.page(
        "/timer", LATE_FILL.format(script=f"setTimeout(() => {{ {fill.format(text)} }}, 3000);")
    )
    server.page(
        "/fetched",
        LATE_FILL.format(
            script="fetch('/policy.html').then(r => r.text()).then(t => { "
            + fill.format("t")
            + " });"
        ),
    )
    server.page("/policy.html", markdown.markdown(GOOD), delay=3)
    make_watchlist(
        tmp_path,
        {
            name: {"url": server.url(f"/{name}"), "timeout": 60}
            for name in ("done", "timer", "fetched")
        },
        settings={"concurrency": 3, "per_host": 3},
    )
    code, summary = run_json(tmp_path)
    assert {f["document"]: f["error"] for f in summary["failures"]} == {"done": "empty"}
    store = Store(tmp_path)
    for name in ("timer", "fetched"):
        [version] = store.versions(f"example/{name}")
        assert "These terms govern your use" in version.text


def test_a_page_whose_dom_keeps_changing_is_waited_for_without_a_pending_timer(
    server: PageServer, tmp_path: Path
) -> None:
    """The wait watches the DOM, not only timers and requests: this page ticks a counter every
    200 ms from `setInterval` (which the wait does not count as pending) and fills its policy in
    on the 15th tick, ~3 s in. Were its changes not seen, its DOM would look still after 1.5 s
    and it would fail as `empty`."""
    text = json.dumps(markdown.markdown(GOOD))
    script = (
        "let n = 0; const el = document.getElementById('policy');"
        "const tick = setInterval(() => { n += 1; el.firstChild.textContent = 'Loading ' + n;"
        f" if (n === 15) {{ clearInterval(tick); el.innerHTML = {text}; }} }}, 200);"
    )
    server.page("/ticking", LATE_FILL.format(script=script))
    make_watchlist(tmp_path, {"ticking": {"url": server.url("/ticking"), "timeout": 30}})
    code, summary = run_json(tmp_path)
    assert summary["failures"] == []
    [version] = Store(tmp_path).versions("example/ticking")
    assert "These terms govern your use" in version.text


def test_after_one_timeout_on_a_host_its_other_timeouts_are_not_retried(
    server: PageServer, tmp_path: Path
) -> None:
    """A host that lets a page run out its budget is slow or down tonight: the first timeout is
    retried, the next documents of that host fail after one attempt, so a night with many
    documents on a silent host does not wait out every budget twice."""
    for name in ("a", "b", "c"):
        server.page(f"/slow-{name}", policy_page(GOOD), delay=8)
    make_watchlist(
        tmp_path,
        {name: {"url": server.url(f"/slow-{name}"), "timeout": 2} for name in ("a", "b", "c")},
        settings={"concurrency": 4, "per_host": 1},
    )
    code, summary = run_json(tmp_path)
    assert code == 1
    assert {f["error"] for f in summary["failures"]} == {"timeout"}
    store = Store(tmp_path)
    attempts = sorted(store.fetches(f"example/{n}")[0]["attempts"] for n in ("a", "b", "c"))
    assert attempts == [1, 1, 2], "only the host's first timeout is retried"
