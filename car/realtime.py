"""Scheduling of the drive loop's process, where the OS permits it.

Under CPU load the kernel shares a core fairly between the loop and whatever else runs
(a training job, a browser, a busy SD card's kworkers): a 50 ms tick can wait 100+ ms for
its turn. Three measures, each needing root or CAP_SYS_NICE (the systemd unit in deploy/
grants it; without, each is skipped and the log says so):
- the loop thread runs under `SCHED_FIFO` (`RealTime(priority)`): it runs as soon as it is
  runnable, ahead of every ordinary thread;
- the process's other threads (camera, web server, recorder) get `helper_nice`: each holds
  Python's GIL now and then, and one preempted by another process while holding it stalls
  the loop until it runs again (a priority inversion the loop's own priority cannot cure);
- Python's GIL switch interval drops from 5 ms to 1 ms, so a helper running Python code
  hands the GIL to the waiting loop sooner.
All are undone when the loop ends. Linux applies priorities per thread and a new thread
inherits its creator's: a thread the loop thread starts while real-time (the recorder's
writer) calls `helper_priority()` first, so JPEG encoding never competes with the loop.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

SWITCH_INTERVAL_S = 0.001


class RealTime:
    """Context manager: the calling thread real-time, the rest of its process niced."""

    _helper_nice: int | None = None  # what helper threads take; set while a loop runs real-time

    def __init__(self, priority: int, helper_nice: int = -10) -> None:
        self.priority, self.helper_nice = priority, helper_nice
        self.granted: list[str] = []  # what the OS allowed, for the loop's stats
        self._niced: dict[int, int] = {}  # thread id -> its nice before
        self._switch_interval = sys.getswitchinterval()

    def __enter__(self) -> RealTime:
        permitted = [_renice(tid, self.helper_nice, self._niced) for tid in _threads()]
        if any(permitted):  # the loop thread's own nice is moot under SCHED_FIFO
            RealTime._helper_nice = self.helper_nice
            self.granted.append(f"other threads nice {self.helper_nice}")
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.priority))
            self.granted.insert(0, f"SCHED_FIFO {self.priority}")
        except (AttributeError, PermissionError, OSError) as err:
            log.warning("the loop runs without real-time priority (%s): grant CAP_SYS_NICE", err)
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setswitchinterval(self._switch_interval)
        _ordinary()
        for tid, nice in self._niced.items():
            _renice(tid, nice, {})
        RealTime._helper_nice = None

    @property
    def scheduling(self) -> str:
        return ", ".join(self.granted) or "ordinary (no permission for more)"


def set_thread_priority(priority: int) -> bool:
    """The calling thread under `SCHED_FIFO` at `priority` (the watchdog); False if not permitted."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        return True
    except (AttributeError, PermissionError, OSError):
        return False


def helper_priority() -> None:
    """For a thread a real-time thread started: ordinary scheduling at the helpers' nice."""
    _ordinary()
    if RealTime._helper_nice is not None:
        _renice(threading.get_native_id(), RealTime._helper_nice, {})


def _threads() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:
        return []


def _renice(tid: int, nice: int, before: dict[int, int]) -> bool:
    try:
        old = os.getpriority(os.PRIO_PROCESS, tid)
        if old != nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
            before[tid] = old
        return True
    except (AttributeError, PermissionError, OSError):
        return False


def _ordinary() -> None:
    try:
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (AttributeError, PermissionError, OSError) as err:
        log.debug("cannot reset the thread's scheduling: %s", err)
