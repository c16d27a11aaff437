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
from typing import Any

from monitor.notify import messages
from monitor.notify.deliver import (
    KIND_OF_ITEM,
    PROFILES_BY_FORMAT,
    Channel,
    Masker,
    build_content,
    deliver,
    now_utc,
    pending_items,
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
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in pending_items(store, recipient, CHANNEL):
        groups.setdefault(KIND_OF_ITEM[item["kind"]], []).append(item)
    written: list[Path] = []
    reviewer = watchlist.reviewers[recipient]
    for kind, items in groups.items():
        content = build_content(store, watchlist, recipient, kind, items)

        def send(
            channel: Channel, rendered: Rendered, attach: Sequence[str], content: Content = content
        ) -> str:
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

        ids = [item["id"] for item in items]
        deliver(store, channel, content, ids, run_id, send=send)
    return written
