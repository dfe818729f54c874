"""Errors and problem reports of the tub package."""

from __future__ import annotations

from dataclasses import dataclass


class TubError(Exception):
    """A tub that cannot be opened or written; the message names the file and the problem."""


class TubRecordError(TubError):
    """One bad record (label or image); readers skip it and count it."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


@dataclass(frozen=True)
class TubProblem:
    """A bad record or field the reader skipped: where it is and what is wrong."""

    file: str
    line: int | None
    reason: str
    index: int | None = None  # the record's _index, when the line was readable enough to tell

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.reason}"
