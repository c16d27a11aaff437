"""Writing the report site's files: atomically, and only when their bytes change.

A reader (a browser, a web server, a sync job copying `reports/`) must never see half a page, so
each file is written to a temporary name in the same folder and renamed over the old one. A page
whose new bytes equal the old ones is left alone, so its modification time says when its content
last changed and an incremental update touches only what it had to.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.pause import pause_at


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` in one rename.

    No fsync: the site is derived data that a rebuild restores after a crash, and a thousand
    fsyncs would dominate the build time. The rename alone is what keeps readers safe.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        pause_at("report")
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; a web server must be able to read pages
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_temporaries(root: Path) -> int:
    """Delete what `write_atomic` leaves when its process is killed between writing a temporary
    file and renaming it. Call only while holding the build lock: then no writer is at work."""
    removed = 0
    for path in root.rglob(".*.tmp"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


@dataclass
class BuildStats:
    """What a build did: pages rewritten (relative to the site folder) and pages left alone."""

    mode: str  # "full" or "incremental"
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0

    def finish(self) -> BuildStats:
        self.seconds = round(time.perf_counter() - self.started, 3)
        return self

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "pages": len(self.written) + len(self.unchanged),
            "written": len(self.written),
            "unchanged": len(self.unchanged),
            "seconds": self.seconds,
            "written_pages": sorted(self.written),
            "unchanged_pages": sorted(self.unchanged),
        }


class SiteWriter:
    """Writes files under one folder and records each in a BuildStats."""

    def __init__(self, root: Path, stats: BuildStats):
        self.root = root
        self.stats = stats

    def write(self, relative: str, content: str | bytes) -> bool:
        """Write one file unless it already holds these bytes; True when it was written."""
        data = content.encode("utf-8") if isinstance(content, str) else content
        path = self.root / relative
        try:
            same = path.stat().st_size == len(data) and path.read_bytes() == data
        except FileNotFoundError:
            same = False
        if same:
            self.stats.unchanged.append(relative)
            return False
        write_atomic(path, data)
        self.stats.written.append(relative)
        return True
