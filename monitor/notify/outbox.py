"""An Apprise-free channel that writes messages to files instead of sending them (the demo's
"outbox"): each digest as the e-mail a reviewer would get (`.eml`, HTML with its plain-text
alternative) and its HTML body alone (`.html`, to open in a browser). The message is composed,
recorded and marked delivered exactly as on any other channel; only the last step differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

from monitor.notify import messages
from monitor.notify.deliver import (
    PROFILES_BY_FORMAT,
    Channel,
    Masker,
    deliver_channel,
    now_utc,
    register,
)
from monitor.notify.messages import Content, Rendered
from monitor.store import Store, write_new_file
from monitor.watchlist import Watchlist

CHANNEL = "outbox"
SENDER = "tos-monitor <tos-monitor@localhost>"


def write_outbox(
    store: Store, watchlist: Watchlist, recipient: str, folder: Path, run_id: int | None = None
) -> list[Path]:
    """Write everything pending for `recipient` into `folder`; returns the files written."""
    channel = Channel(recipient, CHANNEL, "Outbox", PROFILES_BY_FORMAT["html"], "", Masker())
    register(store, channel, now_utc())
    written: list[Path] = []
    reviewer = watchlist.reviewers[recipient]

    def send(channel: Channel, content: Content, rendered: Rendered, attach: Sequence[str]) -> str:
        mail = EmailMessage()
        mail["Subject"] = rendered.subject
        mail["From"] = SENDER
        mail["To"] = f"{reviewer.name} <{recipient}@localhost>"
        mail["Date"] = formatdate(localtime=False)
        # The plain-text part e-mail carries for clients that show no HTML.
        mail.set_content(messages.render(messages.FORMATS["text"], content).body)
        mail.add_alternative(rendered.body, subtype="html")
        try:
            stem = f"{channel.recipient}-{content.kind}"
            page = write_new_file(folder, stem, ".html", rendered.body.encode("utf-8"))
            written.append(page)
            written.append(write_new_file(folder, page.stem, ".eml", mail.as_bytes()))
        except OSError as exc:  # recorded as a failed delivery; the items stay pending
            return f"cannot write to {folder}: {exc}"
        return ""

    deliver_channel(store, watchlist, channel, run_id, send=send)
    return written
