"""`tos-monitor serve`: a reviewer records a decision on a change page in a real browser; forged
requests and path traversal are refused; a public bind needs a token."""

from __future__ import annotations

import base64
import http.client
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from monitor.review import decisions
from monitor.run import run_nightly
from monitor.serve import ReviewServer, make_server
from monitor.store import Store
from monitor.watchlist import load
from tests.conftest import launch_chromium, make_watchlist, run_cli
from tests.sites import PageServer, policy_page

V1 = "# Terms\n\nAny dispute goes to the courts of Santa Clara County, California, USA.\n"
V2 = V1.replace("the courts of Santa Clara County, California", "binding arbitration in Delaware")


@pytest.fixture
def served(server: PageServer, tmp_path: Path) -> Iterator[tuple[ReviewServer, Path]]:
    make_watchlist(tmp_path, {"terms": {"url": server.url("/terms")}})
    for text in (V1, V2):
        server.page("/terms", policy_page(text))
        run_nightly(load(tmp_path / "watchlist.yaml"), tmp_path)
    (tmp_path / "monitor.db-secret").write_text("not for the web")
    site = make_server(tmp_path, "127.0.0.1", 0)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    yield site, tmp_path
    site.shutdown()
    site.server_close()


def raw_get(port: int, path: str) -> int:
    """Send the path exactly as given (browsers and http.client would normalise it)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        reply = sock.recv(200).decode("latin-1")
    return int(reply.split()[1])


def test_a_reviewer_records_a_decision_in_the_browser(
    served: tuple[ReviewServer, Path], tmp_path: Path
) -> None:
    site, home = served
    base = f"http://127.0.0.1:{site.server_port}"
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page()
        page.goto(f"{base}/changes/1.html")
        page.select_option("#decision", "needs-pio")
        page.fill("#by", "Jane Analyst")
        page.fill("#note", "Arbitration clause added: <b>escalate</b>")
        page.click("button[type=submit]")
        page.wait_for_url("**/changes/1.html#review")
        page.screenshot(path=str(tmp_path / "review.png"), full_page=True)
        body = page.inner_text("body")
        browser.close()
    [decision] = decisions(Store(home), 1)
    assert (decision.decision, decision.reviewer, decision.via) == ("needs-pio", "Jane Analyst",
                                                                    "web")  # fmt: skip
    assert decision.note == "Arbitration clause added: <b>escalate</b>"
    assert "Jane Analyst" in body, "the rebuilt page shows the decision"


def test_a_forged_post_without_the_form_token_is_refused(
    served: tuple[ReviewServer, Path],
) -> None:
    site, home = served
    for body, origin in (
        ("decision=acceptable&by=Mallory", None),
        (f"decision=acceptable&by=Mallory&csrf={site.csrf}x", None),
        (f"decision=acceptable&by=Mallory&csrf={site.csrf}", "http://evil.example"),
    ):
        connection = http.client.HTTPConnection("127.0.0.1", site.server_port)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if origin:
            headers["Origin"] = origin
        connection.request("POST", "/changes/1/review", body, headers)
        assert connection.getresponse().status == 403
    assert decisions(Store(home), 1) == []


def test_the_server_reads_nothing_outside_reports_and_snapshots(
    served: tuple[ReviewServer, Path],
) -> None:
    site, home = served
    port = site.server_port
    assert raw_get(port, "/index.html") == 200
    assert raw_get(port, "/") == 200
    version = Store(home).versions("example/terms")[0]
    assert raw_get(port, "/" + version.snapshot_path) == 200
    for attack in (
        "/../monitor.db",
        "/%2e%2e/monitor.db",
        "/..%2fmonitor.db",
        "/snapshots/../monitor.db",
        "/snapshots/%2e%2e/monitor.db-secret",
        "/%2e%2e%2f%2e%2e%2fetc/passwd",
        "//etc/passwd",
        "/snapshots/..%5c..%5cmonitor.db",
        "/index.html%00.png",
    ):
        assert raw_get(port, attack) == 404, attack
    os.symlink(home / "monitor.db", home / "reports" / "leak.db")
    assert raw_get(port, "/leak.db") == 404, "links out of the folder are not followed"
    connection = http.client.HTTPConnection("127.0.0.1", port)
    connection.request("POST", "/index.html", "x=1")
    assert connection.getresponse().status == 404, "nothing but a review can be written"


def test_a_public_bind_needs_allow_remote_and_a_token(served: tuple[ReviewServer, Path]) -> None:
    _, home = served
    refused = run_cli(home, "serve", "--host", "0.0.0.0")
    assert refused.returncode == 2 and "--allow-remote" in refused.stderr
    env = {k: v for k, v in os.environ.items() if k != "TOS_MONITOR_TOKEN"}
    no_token = subprocess.run(
        [sys.executable, "-m", "monitor", "--home", str(home), "serve", "--host", "0.0.0.0",
         "--allow-remote"], capture_output=True, text=True, env=env, timeout=30,
    )  # fmt: skip
    assert no_token.returncode == 2 and "TOS_MONITOR_TOKEN" in no_token.stderr


def test_a_token_protects_every_request(tmp_path: Path) -> None:
    token = "s3cret-token-for-tests"
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "index.html").write_text("<main>hello</main>")
    site = make_server(tmp_path, "127.0.0.1", 0, token)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", site.server_port)
        connection.request("GET", "/index.html")
        assert connection.getresponse().status == 401
        for given, status in ((token, 200), (token + "x", 401)):
            auth = base64.b64encode(f"agency:{given}".encode()).decode()
            connection = http.client.HTTPConnection("127.0.0.1", site.server_port)
            connection.request("GET", "/index.html", headers={"Authorization": f"Basic {auth}"})
            assert connection.getresponse().status == status
    finally:
        site.shutdown()
        site.server_close()
