"""The tub's writer lock: one process at a time changes a tub.

Two writers on one tub would both append the same indexes, and a writer republishing its
manifest would undo a soft delete made meanwhile by `tubcar tub delete` or the studio.
So every change to a tub (recording, repair, soft delete, side files) holds an exclusive
`fcntl.flock` on `tub.lock` in the tub folder. The holder writes its PID and purpose into
the file, so a refused process can say who holds it. The kernel releases the lock when
the holder closes it or dies, even by `kill -9`: a crash never leaves a tub locked.
The file itself stays (removing it would let two processes lock two different files).
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from car.tub.errors import TubError

LOCK_FILE = "tub.lock"
RETRY_S = 0.05
EDIT_LOCK_TIMEOUT_S = 3.0  # a short edit waits this long for another short edit to finish


class TubLockedError(TubError):
    """Another process (or another writer in this one) holds the tub's lock."""


class TubLock:
    """Exclusive lock of one tub folder; use as a context manager or call acquire/release.

    `timeout_s` is how long to wait for a holder to finish: 0 for a recorder (a second
    recorder must be refused at once), a few seconds for short edits so that two studios
    editing one tub take turns instead of failing.
    """

    def __init__(self, folder: str | Path, purpose: str, timeout_s: float = 0.0) -> None:
        self.path = Path(folder) / LOCK_FILE
        self.purpose = purpose
        self.timeout_s = timeout_s
        self._fd: int | None = None

    def acquire(self) -> TubLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise TubError(
                f"{self.path}: cannot create the tub's lock file ({err.strerror}); "
                "is the tub read-only? Nothing was changed"
            ) from err
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise TubLockedError(
                        f"{self.path.parent}: in use by {holder}; "
                        f"cannot {self.purpose} until it finishes (nothing was changed)"
                    ) from None
                time.sleep(RETRY_S)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {self.purpose}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> TubLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    """'PID 1234 (record)' from the lock file, as its holder wrote it."""
    text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    pid, _, purpose = text.partition(" ")
    if not pid.isdigit():
        return "another process (it has not written its PID yet)"
    return f"PID {pid} ({purpose or 'unknown purpose'})"
