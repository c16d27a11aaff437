"""A wrong watchlist is refused before anything is fetched, naming file, line and key (exit 2)."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from monitor.run import LOCK_NAME
from monitor.watchlist import WatchlistError, expand_env, load, reviewers_for
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent

VALID = """\
settings:
  admin: web
reviewers:
  web:
    name: Web Team
    notify: ["mailto://127.0.0.1:2525?to=web@example.gov"]
platforms:
  facebook:
    name: Facebook
    reviewer: web
    documents:
      terms-of-service:
        url: http://127.0.0.1:9/terms
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "watchlist.yaml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(WatchlistError) as info:
        load(write(tmp_path, text))
    return str(info.value)


def test_shipped_watchlist_covers_the_platforms_agencies_use() -> None:
    watchlist = load(ROOT / "watchlist.yaml")
    wanted = {"facebook", "instagram", "x", "youtube", "linkedin", "tiktok", "threads",
              "bluesky", "flickr", "nextdoor", "pinterest", "snapchat", "reddit"}  # fmt: skip
    assert wanted <= set(watchlist.platforms)
    for platform in watchlist.platforms.values():
        ids = {d.id for d in platform.documents}
        assert {"terms-of-service", "privacy-policy"} <= ids, platform.id
        assert reviewers_for(watchlist, platform.id), platform.id


def test_valid_watchlist_loads_with_defaults(tmp_path: Path) -> None:
    watchlist = load(write(tmp_path, VALID))
    [document] = watchlist.documents()
    assert document.key == "facebook/terms-of-service"
    assert document.render == "browser" and document.locale == "en-US"
    assert document.name == "Terms Of Service"
    assert watchlist.settings.concurrency == 4


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    text = problems(tmp_path, VALID.replace("    name: Facebook", "    name: [Facebook"))
    assert "watchlist.yaml:" in text and "invalid YAML" in text
    assert ":10:" in text or ":11:" in text


def test_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    text = problems(tmp_path, VALID.replace("        url:", "        ur1: x\n        url:"))
    assert (
        "watchlist.yaml:13: platforms.facebook.documents.terms-of-service.ur1: unknown key" in text
    )


def test_missing_url(tmp_path: Path) -> None:
    text = problems(tmp_path, VALID.replace("        url: http://127.0.0.1:9/terms\n",
                                            "        render: http\n"))  # fmt: skip
    assert "platforms.facebook.documents.terms-of-service.url: missing" in text


def test_unknown_reviewer(tmp_path: Path) -> None:
    text = problems(tmp_path, VALID.replace("reviewer: web", "reviewer: pio"))
    assert "watchlist.yaml:9: platforms.facebook.reviewer: unknown reviewer 'pio'" in text


def test_duplicate_platform(tmp_path: Path) -> None:
    doubled = VALID + VALID[VALID.index("  facebook:") :]
    text = problems(tmp_path, doubled)
    assert "platforms.facebook: duplicate key (first at line 8)" in text


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    text = problems(
        tmp_path,
        VALID.replace("render", "x")
        .replace("reviewer: web", "reviewer: nobody")
        .replace("concurrency", "x")
        .replace("admin: web", "admin: web\n  colour: red"),
    )
    assert "settings.colour: unknown key" in text and "unknown reviewer 'nobody'" in text


def test_a_platform_nobody_reviews_is_refused(tmp_path: Path) -> None:
    text = problems(tmp_path, VALID.replace("    reviewer: web\n", ""))
    assert "would reach nobody" in text
    fallback = VALID.replace("    reviewer: web\n", "").replace(
        "  admin: web", "  admin: web\n  default_reviewer: web"
    )
    assert reviewers_for(load(write(tmp_path, fallback)), "facebook") == ("web",)


def test_wrong_types_and_values(tmp_path: Path) -> None:
    text = problems(
        tmp_path,
        VALID.replace("  admin: web", "  admin: web\n  concurrency: many")
        .replace("        url: http://127.0.0.1:9/terms",
                 "        url: ftp://x.gov/t\n        render: pdf\n        ignore: ['(']\n"
                 "        select: 'div[role=main'"),
    )  # fmt: skip
    assert "bad CSS selector 'div[role=main'" in text
    assert "settings.concurrency: expected int" in text
    assert "not an http(s) URL" in text and "must be browser or http" in text
    assert "bad regular expression" in text


def test_environment_placeholders() -> None:
    assert (
        expand_env("mailto://${HOST}?to=a@b", {"HOST": "smtp.x.gov"})
        == "mailto://smtp.x.gov?to=a@b"
    )
    with pytest.raises(KeyError, match="MISSING"):
        expand_env("${MISSING}", {})


def test_cli_validate_and_run_refuse_a_bad_watchlist_before_fetching(tmp_path: Path) -> None:
    write(tmp_path, VALID.replace("reviewer: web", "reviewer: pio"))
    for command in (["validate"], ["run"]):
        result = run_cli(tmp_path, *command)
        assert result.returncode == 2
        assert "unknown reviewer 'pio'" in result.stderr and "watchlist.yaml:9" in result.stderr
    assert not (tmp_path / "monitor.db").exists(), "nothing was fetched or recorded"


def test_cli_validate_ok(tmp_path: Path) -> None:
    write(tmp_path, VALID)
    result = run_cli(tmp_path, "validate")
    assert result.returncode == 0 and "1 platforms, 1 documents" in result.stdout


def test_cli_missing_watchlist_and_unknown_platform(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "run")
    assert result.returncode == 2 and "file not found" in result.stderr
    write(tmp_path, VALID)
    result = run_cli(tmp_path, "run", "--only", "myspace")
    assert result.returncode == 2 and "no such platform" in result.stderr


def test_a_second_run_exits_at_once_while_one_holds_the_lock(tmp_path: Path) -> None:
    write(tmp_path, VALID)
    with open(tmp_path / LOCK_NAME, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("12345")
        held.flush()
        result = run_cli(tmp_path, "run", timeout=30)
    assert result.returncode == 3
    assert "another tos-monitor run is in progress" in result.stderr
    assert not (tmp_path / "monitor.db").exists()


def test_a_stale_lock_file_from_a_dead_run_is_taken_over(tmp_path: Path) -> None:
    write(tmp_path, VALID.replace("http://127.0.0.1:9/terms", "http://127.0.0.1:9/terms\n"
                                  "        render: http\n        timeout: 2"))  # fmt: skip
    (tmp_path / LOCK_NAME).write_text("99999999")
    result = run_cli(tmp_path, "run", "--json")
    assert result.returncode == 1, result.stderr  # port 9 refuses: a failure, not a lock
    assert '"error": "connection"' in result.stdout
