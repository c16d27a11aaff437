"""What the records cost on disk and how they are kept. Real SQLite files."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.store import Store


def test_a_transaction_commits_all_its_writes_or_none(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(RuntimeError), store.transaction():
        store.upsert_document({"key": "facebook/terms-of-service", "status": "ok"})
        with store.transaction():  # nested: a savepoint of the same transaction
            store.insert_row("runs", {"status": "running"})
        raise RuntimeError("killed")
    assert store.documents() == [] and store.db.table("runs").count == 0
    with store.transaction():
        store.upsert_document({"key": "facebook/terms-of-service", "status": "ok"})
    assert [d["key"] for d in store.documents()] == ["facebook/terms-of-service"]
    store.close()
