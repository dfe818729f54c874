"""Long work (a model over every frame, a closed-loop run) in background threads, with progress.

The page starts a job, then polls `/api/jobs/ID` for `done`/`total` until its state is
"done" (with a result) or "failed" (with the error). A job asked for twice with the same
key (the same model on the same tub) is the same job.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from studio.errors import NotFound

log = logging.getLogger(__name__)


@dataclass
class Job:
    id: int
    title: str
    key: tuple
    state: str = "running"  # running, done, failed
    done: int = 0
    total: int = 0
    result: Any = None
    error: str = ""
    _finished: threading.Event = field(default_factory=threading.Event, repr=False)

    def progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    def wait(self, timeout_s: float | None = None) -> bool:
        return self._finished.wait(timeout_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "error": self.error,
        }


class Jobs:
    def __init__(self) -> None:
        self._jobs: dict[int, Job] = {}
        self._by_key: dict[tuple, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def start(self, title: str, key: tuple, work: Callable[[Job], Any], again: bool = False) -> Job:
        """Run `work(job)` in a thread; reuses the job of the same key unless `again` (or it failed)."""
        with self._lock:
            existing = self._by_key.get(key)
            if existing is not None and existing.state != "failed" and not again:
                return existing
            job = Job(next(self._ids), title, key)
            self._jobs[job.id] = job
            self._by_key[key] = job
        threading.Thread(target=self._run, args=(job, work), name=f"studio job {job.id}", daemon=True).start()
        return job

    def _run(self, job: Job, work: Callable[[Job], Any]) -> None:
        try:
            job.result = work(job)
            job.state = "done"
        except Exception as err:
            log.exception("job %s (%s) failed", job.id, job.title)
            job.error = str(err) or type(err).__name__
            job.state = "failed"
        finally:
            job._finished.set()

    def get(self, job_id: int) -> Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise NotFound(f"no job {job_id}") from None

    def by_key(self, key: tuple) -> Job | None:
        return self._by_key.get(key)
