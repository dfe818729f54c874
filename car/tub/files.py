"""Durable and defensive file operations, the basis of the tub's crash safety.

Files are created with mode 0666 less the process umask (as `open()` would), so a tub
recorded by one user is readable by the others its umask allows. Reads of files a tub
names (`read_regular_file`) never follow a symlink, never block on a FIFO or a device and
never read more than a bound: a tampered tub cannot make a reader touch a file outside it
or hang it on `/dev/zero`.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path

CREATE_MODE = 0o666  # less the umask, as open() creates files


def fsync_path(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_new_file(path: Path, data: bytes) -> None:
    """Create `path` holding `data`; FileExistsError if it exists: nothing is ever overwritten.

    A write that fails half way (disk full) removes the part it wrote, which nobody was told
    about, and raises.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, CREATE_MODE)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` so that a crash leaves either the old or the new file whole."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, CREATE_MODE)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent)


def read_regular_file(path: str | os.PathLike, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes`; OSError otherwise.

    A symlink is refused (ELOOP), a FIFO or device is opened without blocking and refused,
    a file larger than `max_bytes` is refused before it is read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if info.st_size > max_bytes:
            raise OSError(errno.EFBIG, f"larger than {max_bytes} bytes ({info.st_size})", str(path))
        chunks = []
        remaining = max_bytes + 1  # a file that grows while read is still bounded
        while remaining > 0 and (chunk := os.read(fd, min(remaining, 1 << 20))):
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise OSError(errno.EFBIG, f"larger than {max_bytes} bytes", str(path))
    return data
