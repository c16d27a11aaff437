"""The Playwright driver (a Node process) starts with a bounded V8 heap, unless the user chose."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from monitor.fetch import DRIVER_NODE_OPTIONS, BrowserFetcher
from monitor.watchlist import Settings


def _driver_node_options() -> str | None:
    async def start() -> str | None:
        fetcher = BrowserFetcher(Settings())
        await fetcher._ensure_browser()
        try:
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit():
                    continue
                try:
                    cmdline = (proc / "cmdline").read_bytes()
                    environ = (proc / "environ").read_bytes().split(b"\0")
                    ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
                if ppid == os.getpid() and b"run-driver" in cmdline:
                    for entry in environ:
                        if entry.startswith(b"NODE_OPTIONS="):
                            return entry.split(b"=", 1)[1].decode()
                    return None
            raise AssertionError("no Playwright driver process found")
        finally:
            await fetcher.close()

    return asyncio.run(start())


def test_the_driver_gets_a_bounded_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NODE_OPTIONS", raising=False)
    assert _driver_node_options() == DRIVER_NODE_OPTIONS
    assert "NODE_OPTIONS" not in os.environ  # set for the driver only, not left behind


def test_a_users_own_heap_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODE_OPTIONS", "--max-old-space-size=2048")
    assert _driver_node_options() == "--max-old-space-size=2048"
    monkeypatch.setenv("NODE_OPTIONS", "--trace-warnings")
    assert _driver_node_options() == f"--trace-warnings {DRIVER_NODE_OPTIONS}"
