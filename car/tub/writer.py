"""Crash-safe writer of Donkeycar v2 tubs that never overwrites what was recorded.

What survives what:
- a crashed or killed process loses at most the record being written: each record's
  image is written first, then its catalog line in one write, flushed to the OS;
- a power cut loses at most the last `sync_interval_s` (1 s): a background thread fsyncs
  new images, the catalog and the folder, then replaces both manifests atomically;
- reopening a tub repairs a torn last line (and says so in `repairs`) instead of gluing
  the next record onto it;
- a writer holds the tub's lock (`car.tub.lock`) from open to close: a second writer, a
  soft delete or a studio edit is refused with the holder's PID instead of interleaving.

What is never overwritten: the next index is one past the highest index ever used (any
line of any catalog, the manifest's `current_index` and `deleted_indexes`, any image file
name), never the last line's plus one; images are created with O_EXCL; a tub whose
manifest.json is lost is rebuilt from its catalogs before anything is written
(`car.tub.rebuild`); a gap in the indexes starts a new catalog, so each catalog's
`start_index` + line number stays its records' index, as Donkeycar's reader expects.
A write that fails (disk full, read-only) raises TubError and leaves the tub as it was
before that record: the part of the record written is removed, the catalog cut back.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from car.tub.errors import TubError
from car.tub.fields import IMAGE_TYPES, KNOWN_TYPES, encode_value
from car.tub.files import atomic_write_text, fsync_path, write_new_file
from car.tub.lock import TubLock
from car.tub.manifest import (
    IMAGES,
    MANIFEST,
    Manifest,
    catalog_files,
    catalog_name,
    catalog_number,
    scan_catalog,
    write_catalog_manifest,
)
from car.tub.rebuild import has_recorded_data, rebuild_manifest

log = logging.getLogger(__name__)
IMAGE_INDEX = re.compile(r"^(\d+)_")


def image_file_name(index: int, key: str) -> str:
    """Donkeycar's image naming: `<index>_<key with / as _>_.jpg`."""
    return f"{index}_{key.replace('/', '_')}_.jpg"


def encode_jpeg(image: np.ndarray | bytes, quality: int) -> bytes:
    """RGB uint8 (H, W, 3) or (H, W) array -> JPEG bytes; bytes pass through (already JPEG)."""
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"images must be uint8 (H, W, 3) RGB arrays, got {image.dtype} {image.shape}")
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buffer.tobytes()


def repair_tub(folder: Path, manifest: Manifest) -> list[str]:
    """Cut torn last lines, list every catalog, rebuild both manifests from the catalogs.

    The next index becomes one past the highest index ever used (see the module
    docstring). Returns one message per repair; manifest.json is rewritten only when it
    changed.
    """
    repairs = []
    highest = max(manifest.current_index - 1, max(manifest.deleted_indexes, default=-1))
    following = 0  # the index after the previous catalog's last line: an empty catalog's start
    paths = []
    for catalog in catalog_files(folder, manifest.paths):
        scan = scan_catalog(catalog, repair=True)
        if scan.torn_bytes:
            repairs.append(
                f"{catalog}: removed a torn last line ({scan.torn_bytes} bytes) left by an interrupted write"
            )
        start_index = following if scan.first_index is None else scan.first_index
        if scan.last_index is not None:
            following = scan.last_index + 1
        if scan.max_index is not None:
            highest = max(highest, scan.max_index)
        write_catalog_manifest(catalog, scan.line_lengths, start_index)
        paths.append(catalog.name)
    highest = max(highest, highest_image_index(folder / IMAGES))
    next_index = highest + 1
    if paths != manifest.paths or next_index != manifest.current_index:
        repairs.append(
            f"{folder / MANIFEST}: rebuilt from the catalogs ({len(paths)} catalogs, next index "
            f"{next_index}, one past the highest index used; it said {len(manifest.paths)} and "
            f"{manifest.current_index})"
        )
        manifest.paths = paths
        manifest.current_index = next_index
        manifest.write(folder)
    return repairs


def highest_image_index(images: Path) -> int:
    """The highest index in the image file names (`<index>_...`), -1 when there are none.

    An image whose record line was never written (a crash between the two) still used its
    index: the next record must not overwrite it.
    """
    try:
        names = os.listdir(images)
    except (FileNotFoundError, NotADirectoryError):
        return -1
    return max((int(m.group(1)) for name in names if (m := IMAGE_INDEX.match(name))), default=-1)


class TubWriter:
    """Append records to a new or existing tub; use as a context manager or call `close()`.

    Thread-safe: `write()` may be called from one thread while the sync thread publishes.
    """

    def __init__(
        self,
        path: str | Path,
        inputs: list[str] | None = None,
        types: list[str] | None = None,
        metadata: dict | None = None,
        max_catalog_len: int = 1000,
        sync_interval_s: float = 1.0,
        jpeg_quality: int = 85,
    ) -> None:
        self.path = Path(path)
        self.jpeg_quality = jpeg_quality
        self.sync_interval_s = sync_interval_s
        self.repairs: list[str] = []
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise TubError(f"{self.path}: cannot create the tub folder ({err.strerror})") from err
        self._writer_lock = TubLock(self.path, "record").acquire()  # until close(): one writer per tub
        try:
            self._open(inputs, types, metadata, max_catalog_len)
        except OSError as err:
            self._writer_lock.release()
            raise TubError(f"{self.path}: cannot open the tub to record ({err.strerror or err})") from err
        except BaseException:
            self._writer_lock.release()
            raise

    def _open(self, inputs, types, metadata, max_catalog_len) -> None:
        """Read or create the manifest, open the catalog to append to, start the sync thread."""
        if (self.path / MANIFEST).exists():
            self.manifest = self._reopen(Manifest.read(self.path), inputs, types)
        elif has_recorded_data(self.path):
            self.repairs.append(f"{self.path / MANIFEST}: was missing; rebuilt from the catalogs")
            rebuilt = rebuild_manifest(self.path, inputs, types, metadata)
            self.manifest = self._reopen(rebuilt, inputs, types)
        else:
            self.manifest = self._create(inputs, types, metadata, max_catalog_len)
        self.types = dict(zip(self.manifest.inputs, self.manifest.types, strict=True))
        self.session_id = self.manifest.new_session()
        self._lock = threading.Lock()
        self._unsynced_images: list[Path] = []
        self._publish_lock = threading.Lock()
        self._catalog_lengths: list[int] = []
        self._finished_catalogs: list[tuple[Path, list[int], int]] = []
        self._catalog = self._open_catalog()
        self.manifest.write(self.path)
        self._dirty = False
        self._closed = False
        self.failed: str | None = None  # why the writer stopped accepting records
        self._stop = threading.Event()
        self._syncer = threading.Thread(
            target=self._sync_periodically, name=f"tub-sync {self.path.name}", daemon=True
        )
        self._syncer.start()

    def _create(self, inputs, types, metadata, max_len) -> Manifest:
        if not inputs or types is None or len(inputs) != len(types):
            raise TubError(f"{self.path}: a new tub needs `inputs` and `types` of equal length")
        unknown = [t for t in types if t not in KNOWN_TYPES]
        if unknown:
            raise TubError(f"{self.path}: unknown field types {unknown}; known: {', '.join(KNOWN_TYPES)}")
        (self.path / IMAGES).mkdir(parents=True, exist_ok=True)
        return Manifest(
            inputs=list(inputs),
            types=list(types),
            metadata=dict(metadata or {}),
            manifest_metadata={"created_at": time.time()},
            max_len=max_len,
        )

    def _reopen(self, manifest: Manifest, inputs, types) -> Manifest:
        if inputs is not None and (list(inputs), list(types or [])) != (manifest.inputs, manifest.types):
            raise TubError(
                f"{self.path / MANIFEST}: tub has fields {manifest.inputs} of types {manifest.types}; "
                f"cannot append records with fields {inputs} of types {types}"
            )
        (self.path / IMAGES).mkdir(exist_ok=True)
        self.repairs += repair_tub(self.path, manifest)
        for message in self.repairs:
            log.warning("repaired tub: %s", message)
        return manifest

    def _open_catalog(self) -> io.FileIO:
        """Append to the last catalog when its lines lead up to the next index and it has
        room; otherwise start a new one (a full catalog, or a gap in the indexes). Returns it
        open, unbuffered, until close()."""
        if self.manifest.paths:
            last = self.path / self.manifest.paths[-1]
            scan = scan_catalog(last, repair=False)
            start = self.manifest.current_index - len(scan.line_lengths)
            leads_up = scan.last_index == self.manifest.current_index - 1 and scan.first_index == start
            if len(scan.line_lengths) < self.manifest.max_len and (leads_up or not scan.line_lengths):
                self._catalog_lengths = scan.line_lengths
                self._catalog_start = start
                self._catalog_path = last
                return open(last, "ab", buffering=0)
        number = 1 + max((catalog_number(name) for name in self.manifest.paths), default=-1)
        self._catalog_path = self.path / catalog_name(number)
        self._catalog_start = self.manifest.current_index
        self._catalog_lengths = []
        # "x": never append to a stray file of that name
        catalog = open(self._catalog_path, "xb", buffering=0)  # noqa: SIM115 - open until close()
        self.manifest.paths.append(self._catalog_path.name)
        write_catalog_manifest(self._catalog_path, [], self._catalog_start)
        return catalog

    def write(self, record: dict[str, Any]) -> int:
        """Store one record (images as RGB uint8 arrays or JPEG bytes); returns its index.

        TubError when the disk refuses it (full, read-only): the tub is left as it was
        before this record, and the writer refuses further records.
        """
        unknown = set(record) - set(self.types) - {"_timestamp_ms"}
        if unknown:
            raise ValueError(
                f"{self.path}: record has fields {sorted(unknown)} that the tub does not declare"
            )
        with self._lock:
            if self._closed:
                raise TubError(f"{self.path}: writer is closed")
            if self.failed is not None:
                raise TubError(f"{self.path}: writer stopped after an error: {self.failed}")
            index = self.manifest.current_index
            stored: dict[str, Any] = {}
            images: list[tuple[Path, bytes]] = []
            for key, value in record.items():
                if key == "_timestamp_ms":
                    continue
                kind = self.types[key]
                if kind in IMAGE_TYPES and value is not None:
                    name = image_file_name(index, key)
                    images.append((self.path / IMAGES / name, encode_jpeg(value, self.jpeg_quality)))
                    stored[key] = name
                else:
                    stored[key] = encode_value(key, kind, value)
            stored["_index"] = index
            stored["_session_id"] = self.session_id
            stored["_timestamp_ms"] = int(record.get("_timestamp_ms") or time.time() * 1000)
            line = (json.dumps(stored, sort_keys=True) + "\n").encode()
            try:
                if len(self._catalog_lengths) >= self.manifest.max_len:
                    self._rotate_catalog()
                self._store(index, images, line)
            except (OSError, TubError) as err:
                reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
                self.failed = f"cannot write record {index} ({reason})"
                raise TubError(f"{self.path}: {self.failed}; the records before it are safe") from err
            self._catalog_lengths.append(len(line))
            self.manifest.current_index = index + 1
            self._dirty = True
            return index

    def _store(self, index: int, images: list[tuple[Path, bytes]], line: bytes) -> None:
        """Images first (never over an existing file), then the catalog line; on failure
        remove what this record wrote and cut the catalog back to its last whole line."""
        created: list[Path] = []
        catalog_size = os.fstat(self._catalog.fileno()).st_size
        try:
            for image_path, jpeg in images:
                try:
                    write_new_file(image_path, jpeg)
                except FileExistsError:
                    raise TubError(
                        f"{image_path}: exists; refusing to overwrite a recorded image (index {index})"
                    ) from None
                created.append(image_path)
            view = memoryview(line)
            while view:  # unbuffered: a failed write leaves nothing behind in a buffer
                view = view[self._catalog.write(view) :]
        except BaseException:
            for image_path in created:
                image_path.unlink(missing_ok=True)
            try:
                os.ftruncate(self._catalog.fileno(), catalog_size)
            except OSError as err:
                log.error("%s: cannot cut a partial line (%s); reopening repairs it", self._catalog_path, err)
            raise
        self._unsynced_images += created

    def _rotate_catalog(self) -> None:
        """Close the full catalog (made durable now) and continue in a new one."""
        self._catalog.flush()
        os.fsync(self._catalog.fileno())
        self._catalog.close()
        self._finished_catalogs.append((self._catalog_path, list(self._catalog_lengths), self._catalog_start))
        self._catalog = self._open_catalog()

    def sync(self) -> None:
        """Make everything written so far durable, then publish both manifests.

        Order: images, then the catalog that names them, then the manifests describing the
        catalog. Only the snapshot is taken under the writer's lock: the fsyncs and manifest
        writes run outside it, so `write()` never waits for the disk. The background thread
        calls this every `sync_interval_s`.
        """
        with self._publish_lock:
            with self._lock:
                if self._closed or not self._dirty:
                    return
                images, self._unsynced_images = self._unsynced_images, []
                finished, self._finished_catalogs = self._finished_catalogs, []
                catalog_fd = os.dup(self._catalog.fileno())
                current = (self._catalog_path, list(self._catalog_lengths), self._catalog_start)
                manifest_text = self.manifest.to_text()
                self._dirty = False
            try:
                for image_path in images:
                    fsync_path(image_path)
                os.fsync(catalog_fd)
            finally:
                os.close(catalog_fd)
            fsync_path(self.path / IMAGES)
            for catalog_path, lengths, start in [*finished, current]:
                write_catalog_manifest(catalog_path, lengths, start)
            atomic_write_text(self.path / MANIFEST, manifest_text)

    def _sync_periodically(self) -> None:
        while not self._stop.wait(self.sync_interval_s):
            try:
                self.sync()
            except OSError as err:
                log.error("tub %s: sync failed: %s", self.path, err)

    def close(self) -> None:
        """Stop the background sync, make everything durable, close the catalog, unlock.

        The catalog is closed and the lock released even when the last sync fails (a full
        disk): the catalogs already hold every record, the next open republishes the
        manifests. The sync's error is raised after that, as TubError.
        """
        self._stop.set()
        if self._syncer.is_alive() and threading.current_thread() is not self._syncer:
            self._syncer.join()
        error: OSError | None = None
        try:
            self.sync()
        except OSError as err:
            error = err
        with self._lock:
            if not self._closed:
                try:
                    self._catalog.close()
                except OSError as err:
                    error = error or err
                self._closed = True
        self._writer_lock.release()
        if error is not None:
            raise TubError(
                f"{self.path}: could not publish the manifests on close ({error.strerror or error}); "
                "the catalogs hold every record written, the next open repairs the manifests"
            ) from error

    def __enter__(self) -> TubWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def next_index(self) -> int:
        return self.manifest.current_index
