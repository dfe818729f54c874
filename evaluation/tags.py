"""Frames a person tagged with the cause of their error, kept beside the tub in `tags.json`.

Error analysis by hand: look at the frames a model gets most wrong, tag each with what
went wrong ("label wrong", "glare", ...), count the categories and work on the one that
carries most of the error. `tubcar studio` writes the tags; `tubcar replay` reads them and
reports each category's share of the squared steering error.

The file is a side file: the tub's images and catalogs are never touched. It is replaced
atomically under the tub's lock, so a crash leaves the old or the new file whole and two
editors never lose each other's tags.

    {"format": "tubcar-tags/1", "categories": ["label wrong", ...], "frames": {"17": ["glare"]}}
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from car.tub import TubError, TubLock
from car.tub.files import atomic_write_text
from car.tub.lock import EDIT_LOCK_TIMEOUT_S
from evaluation.error_analysis import GroupError, error_by_groups

TAGS_FILE = "tags.json"
TAGS_FORMAT = "tubcar-tags/1"
LABEL_WRONG = "label wrong"
PRESET_CATEGORIES = (LABEL_WRONG, "glare", "curve entry", "off-centre", "motion blur")
UNTAGGED = "(untagged)"
MAX_CATEGORY_LENGTH = 40

Result = TypeVar("Result")


@dataclass
class FrameTags:
    """Categories (the presets, then the user's own) and the categories of each tagged record."""

    categories: list[str] = field(default_factory=lambda: list(PRESET_CATEGORIES))
    frames: dict[int, set[str]] = field(default_factory=dict)  # record _index -> its categories

    @classmethod
    def read(cls, tub_path: str | Path) -> FrameTags:
        """The tub's tags; the presets and no tagged frames when it has no tags file."""
        path = Path(tub_path) / TAGS_FILE
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text())
            if data.get("format") != TAGS_FORMAT:
                raise ValueError(f"format is {data.get('format')!r}, expected {TAGS_FORMAT!r}")
            categories = [str(c) for c in data["categories"]]
            frames = {int(index): {str(c) for c in tags} for index, tags in data["frames"].items()}
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
            raise TubError(f"{path}: not a readable tags file ({err})") from None
        extra = sorted({c for tags in frames.values() for c in tags} - set(categories))
        return cls(categories + extra, {index: tags for index, tags in frames.items() if tags})

    def write(self, tub_path: str | Path) -> None:
        data = {
            "format": TAGS_FORMAT,
            "categories": self.categories,
            "frames": {str(index): sorted(self.frames[index]) for index in sorted(self.frames)},
        }
        atomic_write_text(Path(tub_path) / TAGS_FILE, json.dumps(data, indent=1) + "\n")

    def add_category(self, category: str) -> str:
        """A user's own category (trimmed); ValueError when it is empty or too long."""
        category = " ".join(category.split())
        if not category or len(category) > MAX_CATEGORY_LENGTH:
            raise ValueError(f"a category is 1 to {MAX_CATEGORY_LENGTH} characters, got {category!r}")
        if category not in self.categories:
            self.categories.append(category)
        return category

    def tag(self, indexes: Iterable[int], category: str) -> set[int]:
        """Tag records with a category; returns those that did not have it."""
        category = self.add_category(category)
        added = {int(i) for i in indexes if category not in self.frames.get(int(i), set())}
        for index in added:
            self.frames.setdefault(index, set()).add(category)
        return added

    def untag(self, indexes: Iterable[int], category: str) -> set[int]:
        """Remove a category from records; returns those that had it."""
        removed = {int(i) for i in indexes if category in self.frames.get(int(i), set())}
        for index in removed:
            self.frames[index].discard(category)
            if not self.frames[index]:
                del self.frames[index]
        return removed

    def indexes(self, category: str) -> set[int]:
        return {index for index, tags in self.frames.items() if category in tags}

    def counts(self) -> dict[str, int]:
        """Tagged records per category, every category listed."""
        return {category: len(self.indexes(category)) for category in self.categories}


def update_tags(tub_path: str | Path, change: Callable[[FrameTags], Result]) -> tuple[FrameTags, Result]:
    """Read, change and write the tub's tags under its lock; returns the tags and what `change` returned."""
    with TubLock(tub_path, "edit tags", timeout_s=EDIT_LOCK_TIMEOUT_S):
        tags = FrameTags.read(tub_path)
        result = change(tags)
        tags.write(tub_path)
    return tags, result


def error_by_tag(
    tags: FrameTags, indexes: np.ndarray, recorded: np.ndarray, predicted: np.ndarray
) -> list[GroupError]:
    """Each category's frames, steering MSE and share of the total squared steering error.

    indexes: (N,) record indexes of the replayed frames; recorded/predicted: (N, 2).
    A frame may carry several categories, so the shares of the categories can add up to
    more than 1; `UNTAGGED` holds the frames without any.
    """
    masks = {category: np.isin(indexes, list(tags.indexes(category))) for category in tags.categories}
    masks[UNTAGGED] = ~np.isin(indexes, list(tags.frames))
    return error_by_groups(masks, recorded, predicted)
