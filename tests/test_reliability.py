"""Hostile pages never produce a false change: walls, collapsed or substituted texts, redesigns,
redirects, PDFs, rate limits, broken encodings, runaway scripts and flips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.run import run_nightly
from monitor.store import Store
from monitor.watchlist import load
from tests.conftest import make_watchlist
from tests.sites import PageServer, Route, make_pdf, policy_page

PARAGRAPHS = [
    f"Section {n}. These terms explain clause number {n} of the agreement between you and "
    f"Example Inc, covering topic {word} in plain language for every user of the service."
    for n, word in enumerate(
        ["accounts", "content", "privacy", "payments", "disputes", "changes", "termination",
         "liability", "licences", "advertising", "security", "children"]
    )
]  # fmt: skip
POLICY = "# Terms of Service\n\n" + "\n\n".join(PARAGRAPHS) + "\n"


def night(home: Path) -> dict:
    return run_nightly(load(home / "watchlist.yaml"), home).as_json()


def failure_of(summary: dict, document: str = "terms") -> str | None:
    errors = [f["error"] for f in summary["failures"] if f["document"] == document]
    return errors[0] if errors else None


def baseline(server: PageServer, home: Path, **document: object) -> None:
    server.page("/terms", policy_page(POLICY))
    make_watchlist(home, {"terms": {"url": server.url("/terms"), **document}})
    assert night(home)["failures"] == []


def test_bot_wall_served_with_200_is_blocked_not_a_version(
    server: PageServer, tmp_path: Path
) -> None:
    baseline(server, tmp_path)
    server.page(
        "/terms",
        "<html><head><title>Just a moment...</title></head><body><main><h1>Verify you are "
        "human</h1><p>Please complete the security check to access this page of the site. "
        "This may take a few seconds.</p></main></body></html>",
    )
    summary = night(tmp_path)
    assert failure_of(summary) == "blocked" and summary["changes"] == []
    assert len(Store(tmp_path).versions("example/terms")) == 1


def test_login_and_cross_site_redirects_are_failures(server: PageServer, tmp_path: Path) -> None:
    server.page("/login", policy_page("# Log in\n\nEnter your password to see this page please."))
    server.routes["/to-login"] = Route(b"", status=302, headers={"Location": "/login?next=t"})
    other = f"http://localhost:{server.port}/terms"
    server.page("/terms", policy_page(POLICY))
    server.routes["/moved"] = Route(b"", status=301, headers={"Location": other})
    make_watchlist(
        tmp_path,
        {
            "terms": {"url": server.url("/to-login")},
            "moved": {"url": server.url("/moved")},
            "moved-http": {"url": server.url("/moved"), "render": "http"},
        },
    )
    summary = night(tmp_path)
    assert failure_of(summary, "terms") == "blocked"
    assert failure_of(summary, "moved") == "redirected"
    assert failure_of(summary, "moved-http") == "redirected"
    assert "localhost" in next(
        f["message"] for f in summary["failures"] if f["document"] == "moved"
    )


def test_a_collapsed_text_is_suspect_not_a_change(server: PageServer, tmp_path: Path) -> None:
    baseline(server, tmp_path)
    server.page("/terms", policy_page("# Terms of Service\n\n" + PARAGRAPHS[0] + "\n"))
    summary = night(tmp_path)
    assert failure_of(summary) == "suspect" and summary["changes"] == []


@pytest.mark.parametrize("cache_control", [None, "public, max-age=3600"])
def test_a_drastic_change_seen_once_is_refetched_and_dropped(
    server: PageServer, tmp_path: Path, cache_control: str | None
) -> None:
    # Also when the server marks the half page cacheable: the second look asks the server
    # again instead of confirming the first look's copy from Chromium's cache.
    baseline(server, tmp_path)
    half = "# Terms of Service\n\n" + "\n\n".join(PARAGRAPHS[:4]) + "\n"
    headers = {"Cache-Control": cache_control} if cache_control else {}
    server.routes["/terms"] = [
        Route(policy_page(half).encode(), headers=headers),
        Route(policy_page(POLICY).encode()),
    ]
    summary = night(tmp_path)
    assert summary["changes"] == [] and summary["failures"] == []
    [fetch] = Store(tmp_path).fetches("example/terms")[1:]
    assert fetch["outcome"] == "unchanged" and "fetched again" in fetch["notes"]


def test_a_drastic_change_that_persists_is_recorded_as_suspect(
    server: PageServer, tmp_path: Path
) -> None:
    baseline(server, tmp_path)
    half = "# Terms of Service\n\n" + "\n\n".join(PARAGRAPHS[:4]) + "\n"
    server.page("/terms", policy_page(half))
    summary = night(tmp_path)
    assert [c["kind"] for c in summary["changes"]] == ["new"]
    [change] = Store(tmp_path).changes("example/terms")
    assert change["suspect"] == 1


def test_a_moved_policy_block_is_relocated_and_the_admin_told(
    server: PageServer, tmp_path: Path
) -> None:
    baseline(server, tmp_path, select=["#policy"])
    redesigned = policy_page(POLICY).replace('<main id="policy">', '<main class="legal-text">')
    server.page("/terms", redesigned)
    summary = night(tmp_path)
    assert summary["failures"] == [] and summary["changes"] == []
    store = Store(tmp_path)
    fetch = store.fetches("example/terms")[-1]
    assert fetch["relocated"] == "main.legal-text" and fetch["outcome"] == "unchanged"
    assert "update the watchlist" in fetch["notes"]
    document = store.document("example/terms")
    assert document is not None and document["proposed_selector"] == "main.legal-text"


def test_a_relocated_block_is_read_again_every_night_so_its_changes_are_seen(
    server: PageServer, tmp_path: Path
) -> None:
    baseline(server, tmp_path, select=["#policy"], timeout=3)

    def moved(text: str) -> str:
        return policy_page(text).replace('<main id="policy">', '<main class="legal-text">')

    server.page("/terms", moved(POLICY))
    assert night(tmp_path)["changes"] == []
    # The selector still matches nothing: that empty match must not pass for unchanged text.
    server.page("/terms", moved(POLICY.replace("topic payments", "topic refunds")))
    summary = night(tmp_path)
    assert [c["kind"] for c in summary["changes"]] == ["new"]
    assert summary["stats"]["extraction_skipped"] == 0


def test_a_missing_selector_without_a_similar_block_fails(
    server: PageServer, tmp_path: Path
) -> None:
    baseline(server, tmp_path, select=["#policy"], timeout=3)
    shop = policy_page("# Shop\n\n" + "Buy our new phone today. " * 30)
    server.page("/terms", shop.replace('<main id="policy">', '<main class="shop">'))
    summary = night(tmp_path)
    assert failure_of(summary) == "selector-missing"


def test_pdf_policies_are_documents(server: PageServer, tmp_path: Path) -> None:
    lines = ["Privacy Policy", "", "We do not sell your personal information to anyone,",
             "and we never will.", "We keep logs of the pages you visit."]  # fmt: skip
    server.routes["/policy.pdf"] = Route(make_pdf(lines), content_type="application/pdf")
    make_watchlist(
        tmp_path,
        {
            "pdf-browser": {"url": server.url("/policy.pdf")},
            "pdf-http": {"url": server.url("/policy.pdf"), "render": "http"},
        },
    )
    summary = night(tmp_path)
    assert summary["failures"] == []
    store = Store(tmp_path)
    for key in ("example/pdf-browser", "example/pdf-http"):
        [version] = store.versions(key)
        assert "We do not sell your personal information to anyone, and we never will." in (
            version.text
        )
        assert version.raw_path.endswith(".pdf.gz")


def test_429_retry_after_is_honoured(server: PageServer, tmp_path: Path) -> None:
    server.routes["/terms"] = [
        Route(b"slow down", status=429, headers={"Retry-After": "2"}),
        Route(policy_page(POLICY).encode()),
    ]
    make_watchlist(tmp_path, {"terms": {"url": server.url("/terms"), "render": "http"}})
    summary = night(tmp_path)
    assert summary["failures"] == []
    [fetch] = Store(tmp_path).fetches("example/terms")
    assert fetch["attempts"] == 2 and fetch["duration_ms"] >= 2000


def test_invalid_utf8_and_deep_nesting_do_not_break_the_run(
    server: PageServer, tmp_path: Path
) -> None:
    broken = policy_page(POLICY).encode().replace(b"Section 3.", b"Section 3.\xff\xfe")
    server.routes["/broken"] = Route(broken)
    deep = "<div>" * 5000 + POLICY.replace("\n", "<br><br>") + "</div>" * 5000
    server.page("/deep", f"<html><body><main>{deep}</main></body></html>")
    make_watchlist(
        tmp_path,
        {
            "broken": {"url": server.url("/broken"), "render": "http"},
            "deep": {"url": server.url("/deep"), "render": "http"},
        },
    )
    summary = night(tmp_path)
    assert summary["failures"] == []
    [version] = Store(tmp_path).versions("example/broken")
    assert "Section 3.\ufffd" in version.text


def test_oversized_pages_fail_cleanly(server: PageServer, tmp_path: Path) -> None:
    server.routes["/huge"] = Route(b"<html><body>" + b"<p>x</p>" * 2_700_000 + b"</body></html>")
    make_watchlist(tmp_path, {"huge": {"url": server.url("/huge"), "render": "http"}})
    assert failure_of(night(tmp_path), "huge") == "too-large"


def test_a_runaway_script_costs_only_its_own_budget(server: PageServer, tmp_path: Path) -> None:
    server.page("/terms", policy_page(POLICY))
    server.page("/spin", "<html><body><script>while (true) {}</script><main>x</main></body></html>")
    make_watchlist(
        tmp_path,
        {
            "terms": {"url": server.url("/terms")},
            "spin": {"url": server.url("/spin"), "timeout": 3},
        },
    )
    run = run_nightly(load(tmp_path / "watchlist.yaml"), tmp_path)
    summary = run.as_json()
    assert failure_of(summary, "spin") == "timeout"
    assert failure_of(summary, "terms") is None
    assert run.stats["wall_seconds"] < 40


def test_flips_are_reverts_and_only_the_first_flip_back_alerts(
    server: PageServer, tmp_path: Path
) -> None:
    variant_b = POLICY.replace("topic privacy", "topic personal data")
    baseline(server, tmp_path)
    kinds = []
    for text in (variant_b, POLICY, variant_b, POLICY):
        server.page("/terms", policy_page(text))
        kinds += [c["kind"] for c in night(tmp_path)["changes"]]
    assert kinds == ["new", "revert", "revert", "revert"]
    changes = Store(tmp_path).changes("example/terms")
    assert [c["quiet"] for c in changes] == [0, 0, 1, 1]
    assert "alternates between 2 variants" in changes[1]["note"]
    assert len(Store(tmp_path).versions("example/terms")) == 2
    assert json.loads(changes[1]["summary"])["blocks_modified"] == 1
