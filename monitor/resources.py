"""Where the package's files are: the templates (report and messages) and the bundled data.

In a clone (and an editable install) the templates are the top-level `templates/` folder, their one
source. A wheel carries the same files as the package data folder `monitor/_templates`
(pyproject's package-dir mapping), since a wheel installs nothing outside its packages.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path


def _package_dir() -> Path:
    # `files` of a regular package installed from a wheel or a folder is a real directory.
    return Path(str(files("monitor")))


def templates_dir() -> Path:
    packaged = _package_dir() / "_templates"
    if (packaged / "base.html").is_file():
        return packaged
    source = _package_dir().parent / "templates"
    if (source / "base.html").is_file():
        return source
    raise FileNotFoundError(
        f"the report templates are missing: neither {packaged} nor {source} holds base.html; "
        "reinstall tos-monitor"
    )


def data_dir() -> Path:
    """monitor/data: the flagger's model and the demo's policy versions."""
    return _package_dir() / "data"


def cache_dir(name: str) -> Path | None:
    """The folder `name` in the user's cache folder (XDG_CACHE_HOME, else ~/.cache) under
    tos-monitor: compiled code kept between runs (Node's for the driver, Jinja's for the report),
    never records. None without a home; the caller creates it, and runs without it where it
    cannot be written."""
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no HOME and no password entry: run without the cache
            return None
    return Path(base) / "tos-monitor" / name


TEMPLATES = templates_dir()
