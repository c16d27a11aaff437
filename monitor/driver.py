"""Playwright's driver, the Node process that speaks to Chromium: started, stopped, and started
early by the `tos-monitor run` program.

Part of the fetch stage, apart from `monitor.fetch` so that the program can start the driver before
it imports anything else: this module imports nothing heavy until a driver is asked for.

Why early: a nightly run's first page cannot load before the driver is up (~0.3 s of Node's own
start), then Chromium, then a tab. Started from `monitor.run`, the driver was spawned ~0.15 s into
the process, after the imports of the CLI, the run and Playwright; spawned by the program
(`spawn_for_run`) before the CLI's imports, it is spawned once Playwright's Python side is imported,
and the CLI's imports overlap Node's start instead of preceding it. The driver waits, in an event
loop that is not running yet, for the run to take it (`take_early`, `run_coroutine`): the same loop
runs the run, as `asyncio.Runner` allows.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

# Playwright's driver is a Node process, and V8 sizes its heap against the machine's memory: on a
# first run over 200 documents it reached 150-200 MB (PSS). A 1 MB young generation and a 512 MB
# old one (several times what four 20 MB pages in flight need) hold it near 125 MB, at no
# measurable cost in speed.
DRIVER_NODE_OPTIONS = "--max-semi-space-size=1 --max-old-space-size=512"


async def start_driver() -> Any:
    """Start Playwright's driver: `async_playwright()` started. It needs nothing from the
    watchlist, so a run starts it first and loads the watchlist while Node boots on the other
    core."""
    from playwright.async_api import async_playwright

    with _driver_env():
        return await async_playwright().start()


async def stop_driver(driver: asyncio.Future[Any]) -> None:
    """Stop a driver from `start_driver` that no browser used; one that failed to start is
    nothing to stop (the error is the fetches' to report, had they needed it)."""
    with contextlib.suppress(Exception):
        playwright = await driver
        await playwright.stop()


async def let_spawn() -> None:
    """Let a task just scheduled spawn its process (the driver) before other work competes with
    it for the interpreter: the spawn takes a few turns of the loop."""
    for _ in range(3):
        await asyncio.sleep(0)


def driver_compile_cache() -> str | None:
    """Where the driver keeps V8's compiled code between runs: the user's cache folder
    (`resources.cache_dir`) under tos-monitor/node-compile-cache; None without a home.

    The driver spends most of its start compiling Playwright's JavaScript, the same files every
    night: with Node's compile cache (NODE_COMPILE_CACHE) the driver was ready in ~0.31 s instead
    of ~0.40 s here. Node checks each entry against its source and its own version and recompiles
    what does not match, so a Playwright upgrade cannot run stale code; where the folder cannot be
    written, Node compiles as before and says nothing."""
    from monitor.resources import cache_dir

    folder = cache_dir("node-compile-cache")
    return str(folder) if folder is not None else None


@contextlib.contextmanager
def _driver_env() -> Iterator[None]:
    """NODE_OPTIONS and NODE_COMPILE_CACHE for the driver while it starts (a user's own setting
    of either wins); the environment is as it was afterwards."""
    saved = {name: os.environ.get(name) for name in ("NODE_OPTIONS", "NODE_COMPILE_CACHE")}
    before = saved["NODE_OPTIONS"]
    if before is None or "-space-size" not in before:
        os.environ["NODE_OPTIONS"] = f"{before or ''} {DRIVER_NODE_OPTIONS}".strip()
    cache = driver_compile_cache()
    if saved["NODE_COMPILE_CACHE"] is None and cache is not None:
        os.environ["NODE_COMPILE_CACHE"] = cache
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# --- Started by the program, taken by the run -----------------------------------------------------

_early: tuple[asyncio.Runner, asyncio.Task[Any]] | None = None
_taken = False


def spawn_for_run() -> None:
    """Spawn the driver in an event loop kept for the run (`run_coroutine`). Once only; stopped at
    exit if no run took it (a locked home, a missing watchlist: the command ends before the run)."""
    global _early
    if _early is not None:
        return
    runner = asyncio.Runner()
    task = runner.get_loop().create_task(start_driver())
    runner.run(let_spawn())
    _early = (runner, task)
    atexit.register(_discard_early)


def take_early() -> asyncio.Task[Any] | None:
    """The driver `spawn_for_run` started, for the run now running in its loop (at most once);
    None when there is none, or the caller's loop is another."""
    global _taken
    if _early is None or _taken:
        return None
    runner, task = _early
    try:
        if asyncio.get_running_loop() is not runner.get_loop():
            return None
    except RuntimeError:
        return None
    _taken = True
    return task


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(coroutine)`, in the loop the early driver waits in when there is one (and not
    yet used): the loop is closed afterwards, as `asyncio.run` closes its own."""
    global _early, _taken
    if _early is None or _taken:
        return asyncio.run(coroutine)
    runner, task = _early
    try:
        with runner:
            try:
                return runner.run(coroutine)
            finally:
                if not _taken:  # the run went without it (it was given a watchlist, say)
                    runner.run(stop_driver(task))
    finally:
        _early, _taken = None, False


def _discard_early() -> None:
    """At exit: stop a driver no run took (a locked home, a missing watchlist). Playwright's
    start cannot be cancelled (the cancelled task never ends), so one still starting is waited
    for, ~0.3 s at most in practice, then stopped; after 10 s it is left to end with this
    process (the driver exits when its input closes)."""
    global _early
    if _early is None:
        return
    runner, task = _early
    _early = None

    async def settle() -> None:
        done, _ = await asyncio.wait({task}, timeout=10)
        if done:
            await stop_driver(task)

    with contextlib.suppress(Exception):
        runner.run(settle())
        if task.done():
            runner.close()
