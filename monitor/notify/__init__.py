"""Stage 8: tell reviewers. `messages` builds what a digest or alert says, per format;
`deliver` queues, sends through Apprise, records and retries."""

from monitor.notify.deliver import (
    check,
    deliver_pending,
    format_pending,
    format_report,
    notify_after_run,
    pending,
    send_test,
)

__all__ = [
    "check",
    "deliver_pending",
    "format_pending",
    "format_report",
    "notify_after_run",
    "pending",
    "send_test",
]
