"""Importing a library without the optional modules it would load and a run never uses
(`hidden`): sqlite-utils imports numpy only to name column types (`monitor.store`)."""

from __future__ import annotations

import importlib.abc
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from types import ModuleType


class _Hidden(importlib.abc.MetaPathFinder):
    """Makes an import of `names` fail, in the thread that created it only (`hidden`)."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = frozenset(names)
        self.thread = threading.get_ident()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname.partition(".")[0] in self.names and threading.get_ident() == self.thread:
            raise ModuleNotFoundError(f"{fullname} is hidden here", name=fullname)
        return None  # the other finders decide


@contextmanager
def hidden(*names: str) -> Iterator[None]:
    """While the block runs, `names` cannot be imported in this thread unless already imported;
    other threads import as usual. `sys.meta_path` is replaced by a new list, never changed in
    place: an import running in another thread goes on over the list it started with."""
    finder = _Hidden(names)
    sys.meta_path = [finder, *sys.meta_path]
    try:
        yield
    finally:
        sys.meta_path = [f for f in sys.meta_path if f is not finder]
