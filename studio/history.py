"""Undo: every studio edit is pushed with the action that reverses it.

The reversal of a delete restores exactly the records that delete changed (not those that
were already deleted), so undo never touches what someone else did meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

MAX_STEPS = 200


@dataclass(frozen=True)
class Change:
    description: str  # e.g. "delete 150 records of tub_1"
    tub: int
    undo: Callable[[], object]


class History:
    def __init__(self) -> None:
        self._changes: list[Change] = []
        self._lock = threading.Lock()

    def push(self, change: Change) -> None:
        with self._lock:
            self._changes.append(change)
            del self._changes[:-MAX_STEPS]

    def undo(self) -> Change | None:
        """Reverse the latest change; None when there is nothing to undo."""
        with self._lock:
            if not self._changes:
                return None
            change = self._changes.pop()
        try:
            change.undo()
        except Exception:
            with self._lock:
                self._changes.append(change)  # still undoable once the tub is free again
            raise
        return change

    @property
    def latest(self) -> str | None:
        with self._lock:
            return self._changes[-1].description if self._changes else None
