"""Where the package's files are: the templates (report and messages) and the bundled data.

In a clone (and an editable install) the templates are the top-level `templates/` folder, their one
source. A wheel carries the same files as the package data folder `monitor/_templates`
(pyproject's package-dir mapping), since a wheel installs nothing outside its packages.
"""

from __future__ import annotations

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


TEMPLATES = templates_dir()
