"""Each failure class is recorded as a failure with its class, never as a version, and never stops
the other documents. One run serves every fault at once from 127.0.0.1."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from monitor.store import Store
from tests.conftest import make_watchlist, run_cli, run_json
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
