from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.fetch import CHROMIUM_FLAGS, find_chromium
from monitor.watchlist import Settings
from tests.sites import PageServer

# Tests never reach beyond this machine: Chromium resolves no name but the loopback ones, so a
# "DNS failure" test fails inside the browser instead of asking a real resolver.
RESOLVER_RULES = "--host-resolver-rules=MAP *.invalid ~NOTFOUND, EXCLUDE 127.0.0.1"


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state letter) of every process, from /proc/<pid>/stat."""
    table = {}
    for proc in Path("/proc").iterdir():
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            table[int(proc.name)] = (int(fields[1]), fields[0])
        except (OSError, ValueError, IndexError):
            continue
    return table


def driver_processes() -> list[Path]:
    """The /proc folders of this process's children that are Playwright drivers (Node, run with
    `run-driver`)."""
    found = []
    for pid, (ppid, _) in _process_table().items():
        try:
            if ppid == os.getpid() and b"run-driver" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(Path(f"/proc/{pid}"))
        except OSError:
            continue
    return found


def wait_for(condition: Callable[[], object], seconds: float) -> bool:
    """Whether `condition()` holds within `seconds`, asked every 50 ms: for what another
    process finishes on its own time (a process exiting), never for how fast it is."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def drivers_of_home(home: Path) -> list[int]:
    """Live Playwright drivers, whoever their parent now is, started by a `tos-monitor` process
    for `home` (they inherit its TOS_MONITOR_HOME): a driver left behind by a command that has
    exited is found too."""
    mark = f"TOS_MONITOR_HOME={home}".encode()
    found = []
    for pid, (_, state) in _process_table().items():
        try:
            proc = Path(f"/proc/{pid}")
            if (
                state != "Z"
                and b"run-driver" in (proc / "cmdline").read_bytes()
                and mark in (proc / "environ").read_bytes().split(b"\0")
            ):
                found.append(pid)
        except OSError:
            continue
    return found


def browser_processes() -> list[int]:
    """Live Chromium processes under this process (started by its Playwright driver)."""
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = [], list(children.get(os.getpid(), []))
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if b"chrom" in command.rsplit(b"/", 1)[-1] and table[pid][1] != "Z":
            found.append(pid)
    return found


def launch_chromium(playwright: Any) -> Any:
    """A Chromium for tests that drive a page themselves, found exactly as the product finds it
    (`find_chromium`: settings, TOS_MONITOR_CHROMIUM, Playwright's own, then the system's), so
    the suite runs on a machine that has only what setup.sh installs."""
    return playwright.chromium.launch(
        executable_path=find_chromium(Settings()),
        args=[*CHROMIUM_FLAGS, RESOLVER_RULES],
        headless=True,
    )


@pytest.fixture(scope="session", autouse=True)
def _user_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The user's cache folder (the driver's compiled code, `driver_compile_cache`) is one of the
    session's own: tests write nothing outside their temporary folders."""
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("user-cache"))
    yield
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


@pytest.fixture
def server() -> Iterator[PageServer]:
    site = PageServer()
    yield site
    site.close()


def make_watchlist(
    home: Path,
    documents: dict[str, dict[str, Any]],
    settings: dict[str, Any] | None = None,
    platform: str = "example",
) -> Path:
    """Write a watchlist with one platform holding `documents` (id -> document keys)."""
    data = {
        "settings": {
            "admin": "web",
            "concurrency": 2,
            "per_host": 2,
            "timeout": 10,
            "min_chars": 40,
            "chromium_args": [RESOLVER_RULES],
            **(settings or {}),
        },
        "reviewers": {"web": {"name": "Web Team", "notify": []}},
        "platforms": {platform: {"name": platform.title(), "reviewer": "web",
                                 "documents": documents}},
    }  # fmt: skip
    path = home / "watchlist.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_cli(home: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TOS_MONITOR_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def run_json(home: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = run_cli(home, "run", "--json", *args)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)
