"""Reader of tubs: our v2 tubs, Donkeycar's v2 tubs and Donkeycar's legacy v1 tubs.

A reader never raises on one bad record: it skips it and records a `TubProblem` naming
the file, the line and the reason: a torn or non-JSON line, a duplicate `_index`, a label
(`user/angle`, `user/throttle`) that is null, non-finite or beyond +-`label_limit`, an
image that is missing, empty, truncated, not a JPEG, of another size, or named so that it
would lie outside the tub (`../x`, `/etc/x`, a symlink): no record makes a reader open a
file outside its tub, block on a FIFO or read more than `MAX_IMAGE_BYTES`.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from car.channels import CAMERA_IMAGE, USER_ANGLE, USER_THROTTLE
from car.tub.errors import TubError, TubProblem, TubRecordError
from car.tub.fields import IMAGE_TYPES, KNOWN_TYPES, decode_value
from car.tub.files import atomic_write_text, read_regular_file
from car.tub.lock import EDIT_LOCK_TIMEOUT_S, TubLock
from car.tub.manifest import IMAGES, MANIFEST, Manifest, catalog_files

V1_META = "meta.json"
V1_EXCLUDE = "exclude.json"
V1_RECORD = re.compile(r"^record_(\d+)\.json$")
LABELS = (USER_ANGLE, USER_THROTTLE)
LABEL_LIMIT = 1.0  # a label beyond +-this is a bad record (the controllers clamp to [-1, 1])
MAX_IMAGE_BYTES = 16 * 1024 * 1024  # a camera frame is KBs; a bigger "image" is not read
MAX_RECORD_BYTES = 1024 * 1024  # a v1 record_N.json
JPEG_END = b"\xff\xd9"


def is_tub(path: Path) -> bool:
    return (path / MANIFEST).is_file() or (path / V1_META).is_file()


def decode_jpeg(path: str | os.PathLike) -> np.ndarray:
    """JPEG file -> RGB uint8 (H, W, 3); raises TubRecordError naming the file and the problem.

    Refused before decoding: a missing, empty, oversized or non-regular file (a symlink, a
    FIFO, a device) and a JPEG without its end marker (truncated: OpenCV would decode the
    part that is there, padded with grey, and only warn).
    """
    try:
        data = read_regular_file(path, MAX_IMAGE_BYTES)
    except FileNotFoundError:
        raise TubRecordError(f"{path}: image is missing") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise TubRecordError(
                f"{path}: image is a symlink, not followed (it may lead out of the tub)"
            ) from None
        raise TubRecordError(f"{path}: cannot read the image ({err.strerror or err})") from None
    if not data:
        raise TubRecordError(f"{path}: image is empty (0 bytes)")
    if not data.rstrip(b"\x00").endswith(JPEG_END):
        raise TubRecordError(
            f"{path}: not a decodable JPEG ({len(data)} bytes without the JPEG end marker: truncated)"
        )
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB)
    except cv2.error as err:
        raise TubRecordError(f"{path}: not a decodable JPEG ({len(data)} bytes: {err.err})") from None
    if image is None:
        raise TubRecordError(f"{path}: not a decodable JPEG ({len(data)} bytes)")
    return image


def image_name_problem(name: object) -> str | None:
    """Why an image name from a record may not be opened, or None: a plain file name only."""
    if not isinstance(name, str) or not name:
        return f"image name {name!r} is not a file name"
    if "/" in name or "\\" in name or "\x00" in name or name in (".", ".."):
        return f"image name {name!r} points outside the tub"
    return None


class Tub:
    """Read-side view of one tub folder (v2 or v1); also soft delete and restore."""

    def __init__(self, path: str | Path, label_limit: float | None = LABEL_LIMIT) -> None:
        """`label_limit`: records whose label is beyond +-this are bad (None: no bound)."""
        self.path = Path(path)
        self.label_limit = label_limit
        self._open_problems: list[TubProblem] = []
        self.problems: list[TubProblem] = []
        if (self.path / MANIFEST).is_file():
            self.version = 2
            self.manifest: Manifest | None = Manifest.read(self.path)
            inputs, types = self.manifest.inputs, self.manifest.types
            self.metadata = self.manifest.metadata
        elif (self.path / V1_META).is_file():
            self.version = 1
            self.manifest = None
            meta = self._read_v1_meta()
            inputs, types = meta.get("inputs", []), meta.get("types", [])
            self.metadata = {k: v for k, v in meta.items() if k not in ("inputs", "types")}
        elif catalog_files(self.path, []) if self.path.is_dir() else False:
            raise TubError(
                f"{self.path}: {MANIFEST} is missing but catalogs are here; "
                "`tubcar tub check --repair` rebuilds it (recording into the tub does too)"
            )
        else:
            raise TubError(f"{self.path}: not a tub (no {MANIFEST} of a v2 tub nor {V1_META} of a v1 tub)")
        self.types: dict[str, str] = {}
        for key, kind in zip(inputs, types, strict=False):  # a v1 meta.json may differ
            if kind in KNOWN_TYPES:
                self.types[key] = kind
            else:
                self._open_problems.append(
                    TubProblem(
                        self._fields_file, None, f"field {key!r} has unknown type {kind!r}: field ignored"
                    )
                )
        self.problems = list(self._open_problems)
        self._images_linked = self.version == 2 and os.path.islink(self.path / IMAGES)

    @property
    def _fields_file(self) -> str:
        return str(self.path / (MANIFEST if self.version == 2 else V1_META))

    @property
    def inputs(self) -> list[str]:
        return list(self.types)

    @property
    def image_keys(self) -> list[str]:
        return [key for key, kind in self.types.items() if kind in IMAGE_TYPES]

    @property
    def sessions(self) -> list[str]:
        return self.manifest.sessions if self.manifest else []

    def _read_v1_meta(self) -> dict:
        path = self.path / V1_META
        try:
            return json.loads(path.read_bytes())
        except ValueError as err:  # not JSON, or not UTF-8
            raise TubError(f"{path}: not valid JSON ({err})") from err

    # -- deleted records ----------------------------------------------------------------
    @property
    def deleted_indexes(self) -> set[int]:
        if self.manifest is not None:
            return set(self.manifest.deleted_indexes)
        exclude = self.path / V1_EXCLUDE
        if not exclude.exists():
            return set()
        try:
            return {int(i) for i in json.loads(exclude.read_bytes())}
        except (json.JSONDecodeError, TypeError, ValueError) as err:
            raise TubError(f"{exclude}: must be a JSON list of record indexes ({err})") from err

    def _change_deleted(self, add: Iterable[int] = (), remove: Iterable[int] = ()) -> set[int]:
        """Read, change and write the deleted set under the tub's lock; returns what changed.

        Reading inside the lock matters: two editors of one tub must not lose each
        other's deletes, and a recorder (which holds the lock) must not republish an
        older deleted set over ours.
        """
        with TubLock(self.path, "change deleted records", timeout_s=EDIT_LOCK_TIMEOUT_S):
            if self.manifest is not None:
                self.manifest = Manifest.read(self.path)  # another process may have changed it
            before = self.deleted_indexes
            after = (before | set(add)) - set(remove)
            if after == before:
                return set()
            if self.manifest is not None:
                self.manifest.deleted_indexes = sorted(after)
                self.manifest.write(self.path)
            else:
                atomic_write_text(self.path / V1_EXCLUDE, json.dumps(sorted(after)))
        return after ^ before

    def delete(self, indexes: Iterable[int]) -> set[int]:
        """Soft-delete records: they stay on disk and `restore` brings them back.

        Returns the indexes that were not deleted before (what an undo must restore).
        """
        return self._change_deleted(add=indexes)

    def restore(self, indexes: Iterable[int]) -> set[int]:
        """Undo a soft delete; returns the indexes that were deleted before."""
        return self._change_deleted(remove=indexes)

    # -- records ------------------------------------------------------------------------
    def _raw_lines(self) -> Iterator[tuple[str, int, str]]:
        """(file, line number, text) of every stored record, in index order."""
        if self.manifest is not None:
            for catalog in catalog_files(self.path, self.manifest.paths):
                with open(catalog, encoding="utf-8", errors="replace") as handle:
                    for number, line in enumerate(handle, start=1):
                        if line.strip():
                            yield str(catalog), number, line
            return
        numbered = [(int(m.group(1)), p) for p in self.path.iterdir() if (m := V1_RECORD.match(p.name))]
        for index, record_path in sorted(numbered):
            try:
                text = read_regular_file(record_path, MAX_RECORD_BYTES).decode(errors="replace")
            except OSError as err:
                text = f"unreadable: {err.strerror or err}"  # not JSON: reported as a bad line
            try:
                record = json.loads(text)
                record.setdefault("_index", index)
                if "milliseconds" in record and "_timestamp_ms" not in record:
                    record["_timestamp_ms"] = record["milliseconds"]
                text = json.dumps(record)
            except (json.JSONDecodeError, AttributeError):
                pass
            yield str(record_path), 1, text

    def _parse(self, text: str, check_images: bool, deleted: set[int]) -> dict[str, Any] | None:
        """One catalog line -> record; None when the record is deleted (even if it is bad)."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as err:
            raise TubRecordError(f"not valid JSON ({err.msg}); a torn or corrupted line") from err
        if not isinstance(raw, dict) or type(raw.get("_index")) is not int:
            raise TubRecordError("not a record (a JSON object with an integer _index)")
        if raw["_index"] in deleted:
            return None
        record = {key: value for key, value in raw.items() if key.startswith("_")}
        for key, kind in self.types.items():
            if key in raw:
                try:
                    record[key] = decode_value(key, kind, raw[key])
                except ValueError as err:
                    raise TubRecordError(str(err), raw["_index"]) from err
        self._check_labels(record)
        for key in self.image_keys:
            if record.get(key) is not None and (problem := self._image_problem(record[key], check_images)):
                raise TubRecordError(problem, raw["_index"])
        return record

    def _check_labels(self, record: dict[str, Any]) -> None:
        """Null or out-of-range labels make a bad record (non-finite ones failed decoding)."""
        for key in LABELS:
            if key not in self.types:
                continue
            value = record.get(key)
            if value is None:
                raise TubRecordError(f"{key} is null or missing", record["_index"])
            if self.label_limit is not None and abs(value) > self.label_limit:
                raise TubRecordError(
                    f"{key} is {value!r}, outside [-{self.label_limit:g}, {self.label_limit:g}]",
                    record["_index"],
                )

    def _image_problem(self, name: object, check_file: bool) -> str | None:
        """Why a record's image may not or cannot be read, or None; `check_file`: also lstat it."""
        problem = image_name_problem(name)
        if problem is None and self._images_linked:
            problem = f"the {IMAGES} folder is a symlink: its images may lie outside the tub"
        if problem is None and check_file:
            problem = self._image_file_problem(str(name))
        return problem

    def _image_file_problem(self, name: str) -> str | None:
        """Why the named image cannot be read (one lstat), or None."""
        try:
            mode = os.lstat(self._image_file(name)).st_mode
        except FileNotFoundError:
            return f"image {name} is missing"
        except OSError as err:
            return f"image {name}: {err.strerror}"
        if stat.S_ISLNK(mode):
            return f"image {name} is a symlink, not followed (it may lead out of the tub)"
        return None if stat.S_ISREG(mode) else f"image {name} is not a regular file"

    def records(
        self, include_deleted: bool = False, load_images: bool = False, check_images: bool = True
    ) -> Iterator[dict[str, Any]]:
        """Yield good records in index order; bad ones are skipped and added to `problems`.

        With `load_images`, image fields hold RGB uint8 arrays instead of file names, and
        records whose image is corrupt or of another size than the tub's first are skipped.
        Without, records whose image file is missing are skipped, unless `check_images` is
        off (a caller that lists the images itself, e.g. the studio's timeline).
        """
        self.problems = list(self._open_problems)
        deleted = set() if include_deleted else self.deleted_indexes
        first_seen: dict[int, str] = {}  # _index -> file:line of the record yielded for it
        expected_shape = None
        for file, number, text in self._raw_lines():
            try:
                record = self._parse(text, check_images=check_images and not load_images, deleted=deleted)
                if record is None:
                    continue
                index = record["_index"]
                if index in first_seen:  # no index given: the problem is not this index's record
                    raise TubRecordError(f"duplicate _index {index} (first at {first_seen[index]})")
                first_seen[index] = f"{file}:{number}"
                if load_images:
                    for key in self.image_keys:
                        if record.get(key) is None:
                            continue
                        try:
                            image = decode_jpeg(self.image_path(record, key))
                        except TubRecordError as err:
                            raise TubRecordError(str(err), record["_index"]) from None
                        expected_shape = expected_shape or image.shape
                        if image.shape != expected_shape:
                            raise TubRecordError(
                                f"image {record[key]} is {image.shape[1]}x{image.shape[0]}, "
                                f"the tub's images are {expected_shape[1]}x{expected_shape[0]}",
                                record["_index"],
                            )
                        record[key] = image
            except TubRecordError as err:
                self.problems.append(TubProblem(file, number, str(err), err.index))
                continue
            yield record

    def __len__(self) -> int:
        return sum(1 for _ in self.records())

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self.records()

    def image_path(self, record: dict[str, Any], key: str = CAMERA_IMAGE) -> Path:
        """The record's image file; TubRecordError when its name would lie outside the tub."""
        problem = self._image_problem(record[key], check_file=False)
        if problem is not None:
            raise TubRecordError(f"{self.path}: {problem}", record.get("_index"))
        return Path(self._image_file(record[key]))

    def _image_file(self, name: Any) -> str:
        """os.path rather than pathlib: checking 20,000 images this way takes a third of the time."""
        folder = os.path.join(self.path, IMAGES) if self.version == 2 else str(self.path)
        return os.path.join(folder, str(name))

    def load_image(self, record: dict[str, Any], key: str = CAMERA_IMAGE) -> np.ndarray:
        """The record's image as RGB uint8 (H, W, 3); raises TubRecordError naming the file."""
        return decode_jpeg(self.image_path(record, key))

    def load_image_or_skip(self, record: dict[str, Any], key: str = CAMERA_IMAGE) -> np.ndarray | None:
        """The record's image, or None when it is bad (the problem is added to `problems`)."""
        try:
            return self.load_image(record, key)
        except TubRecordError as err:
            self.problems.append(TubProblem(str(self.path), None, str(err), record.get("_index")))
            return None

    def __repr__(self) -> str:
        return f"Tub({str(self.path)!r}, v{self.version})"


def find_tubs(path: str | os.PathLike) -> list[Path]:
    """A tub folder itself, or every tub below a folder of tubs (sorted)."""
    path = Path(path)
    if is_tub(path):
        return [path]
    if not path.is_dir():
        raise TubError(f"{path}: no such folder")
    found = sorted(p.parent for p in path.rglob(MANIFEST)) + sorted(p.parent for p in path.rglob(V1_META))
    if not found:
        raise TubError(f"{path}: no tubs in it (looked for {MANIFEST} and {V1_META})")
    return found


def open_tubs(paths: Iterable[str | os.PathLike], label_limit: float | None = LABEL_LIMIT) -> list[Tub]:
    """Open several tubs (or folders of tubs) to read them as one dataset."""
    tubs = [Tub(found, label_limit) for path in paths for found in find_tubs(path)]
    if not tubs:
        raise TubError("no tubs given")
    return tubs
