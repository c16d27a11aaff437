"""Stage 7: the HTML report, a static site in `reports/` built from the records.

build.py      builds and updates the site (`build_site`, `update_site`, `update_after_run`)
data.py       the records as the pages show them
diffview.py   a stored diff as the parts of a change page
checklist.py  cached checklist answers and their dates
svg.py        coordinates of the pictures
write.py      atomic, write-if-changed file output
"""

from monitor.report.build import (
    CACHE_DIR,
    REPORT_DIR,
    build_site,
    update_after_run,
    update_for_review,
    update_site,
)

__all__ = [
    "CACHE_DIR",
    "REPORT_DIR",
    "build_site",
    "update_after_run",
    "update_for_review",
    "update_site",
]
