"""Real-time scheduling of the drive loop's threads, where the OS permits it.

Under CPU load the kernel shares a core fairly between the loop and whatever else runs
(a training job, a browser, a busy SD card's kworkers): a 50 ms tick can wait 100+ ms for
its turn. A thread under `SCHED_FIFO` runs as soon as it is runnable, ahead of every
ordinary thread. Setting it needs root or CAP_SYS_NICE (the systemd unit in deploy/ grants
it); without, the thread gets the best `nice` it may have, and says so.

Linux applies these per thread, and a thread inherits its creator's policy, so the policy
is set with SCHED_RESET_ON_FORK: a thread (or process) the loop thread starts while it
runs at real-time priority, such as the recorder's writer, starts with ordinary
scheduling, and JPEG encoding never competes with the loop.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)

NICE_FALLBACK = -10


def set_thread_priority(priority: int) -> str:
    """Make the calling thread `SCHED_FIFO` at `priority` (1-99) if permitted, else as
    nice as allowed; returns what it got, e.g. "SCHED_FIFO 50" or "nice -10"."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(priority))
        return f"SCHED_FIFO {priority}"
    except (AttributeError, PermissionError, OSError):
        pass
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, NICE_FALLBACK)
        return f"nice {NICE_FALLBACK}"
    except (AttributeError, PermissionError, OSError):
        return f"nice {os.getpriority(os.PRIO_PROCESS, tid)} (no permission for a higher priority)"


def set_normal_priority() -> None:
    """The calling thread back to ordinary scheduling (a no-op when it already is)."""
    try:
        if os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK != os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        tid = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, tid) < 0:
            os.setpriority(os.PRIO_PROCESS, tid, 0)
    except (AttributeError, PermissionError, OSError) as err:
        log.debug("cannot reset the thread's priority: %s", err)
