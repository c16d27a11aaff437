"""What a person at a terminal sees during and after `tos-monitor run`; cron gets the summary."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

# Imported before a run starts, so it imports nothing heavy itself: rich only when a terminal
# shows the bar (cron and --json do without), the run's types only for checking.
if TYPE_CHECKING:
    from rich.progress import Progress

    from monitor.run import DocumentOutcome, RunSummary


class RunDisplay:
    """A progress bar on a terminal; `total` may come later (`set_total`), once the watchlist is
    loaded beside the browser's start."""

    def __init__(self, total: int | None, enabled: bool):
        self.progress: Progress | None = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.task = self.progress.add_task("checking documents", total=total)

    def set_total(self, total: int) -> None:
        if self.progress:
            self.progress.update(self.task, total=total)

    def __enter__(self) -> RunDisplay:
        if self.progress:
            self.progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.progress:
            self.progress.stop()

    def update(self, outcome: DocumentOutcome) -> None:
        if self.progress:
            self.progress.update(self.task, advance=1, description=outcome.document.key)

    @staticmethod
    def summary_text(summary: RunSummary) -> str:
        counts = summary.counts()
        lines = [
            f"run {summary.run_id}: {counts['documents']} documents, {counts['unchanged']} "
            f"unchanged, {counts['changed']} changed, {counts['failed']} failed "
            f"({summary.stats.get('wall_seconds', 0):.1f} s)"
        ]
        for o in summary.changes:
            kind = (
                "reverted to an earlier text"
                if o.recorded and o.recorded.outcome == "revert"
                else "new text"
            )
            change_id = o.recorded.change_id if o.recorded else None
            lines.append(f"  changed  {o.document.key}: {kind} (change {change_id})")
        for o in summary.outcomes:
            if o.recorded and o.recorded.outcome == "baseline":
                lines.append(f"  baseline {o.document.key}: first version recorded")
        for o in summary.failures:
            lines.append(f"  FAILED   {o.document.key}: {o.error_class}: {o.fetch.message}")
        lines.extend(site_lines(summary))
        return "\n".join(lines)


def site_lines(summary: RunSummary) -> list[str]:
    """The agency site's audit: one line per change and per failed page."""
    from monitor.audit import printable

    site = summary.site
    if not site.audits:
        return []
    lines = [f"  site     {len(site.audits)} agency pages audited, {len(site.changes)} changes, "
             f"{len(site.failures)} failed"]  # fmt: skip
    for change in site.changes:
        quiet = " (seen lately: not alerted)" if change.quiet else ""
        lines.append(f"  site     {printable(change.page)}: {change.kind} "
                     f"{printable(change.name)}{quiet}")  # fmt: skip
    for audit in site.failures:
        lines.append(f"  FAILED   {printable(audit.page)}: {audit.error_class}: {audit.message}")
    return lines
