"""Crash-safe writer of Donkeycar v2 tubs.

What survives what:
- a crashed or killed process loses at most the record being written: each record's
  image is written first, then its catalog line in one write, flushed to the OS;
- a power cut loses at most the last `sync_interval_s` (1 s): a background thread fsyncs
  new images, the catalog and the folder, then replaces both manifests atomically;
- reopening a tub repairs a torn last line (and says so in `repairs`) instead of gluing
  the next record onto it;
- a writer holds the tub's lock (`car.tub.lock`) from open to close: a second writer, a
  soft delete or a studio edit is refused with the holder's PID instead of interleaving.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from car.tub.errors import TubError
from car.tub.fields import IMAGE_TYPES, KNOWN_TYPES, encode_value
from car.tub.files import atomic_write_text, fsync_path
from car.tub.lock import TubLock
from car.tub.manifest import (
    MANIFEST,
    Manifest,
    catalog_files,
    catalog_name,
    scan_catalog,
    write_catalog_manifest,
)

log = logging.getLogger(__name__)
IMAGES = "images"


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

    Returns one message per repair; the manifests are rewritten only when they differ.
    """
    repairs = []
    next_index = 0
    paths = []
    for catalog in catalog_files(folder, manifest.paths):
        scan = scan_catalog(catalog, repair=True)
        if scan.torn_bytes:
            repairs.append(
                f"{catalog}: removed a torn last line ({scan.torn_bytes} bytes) left by an interrupted write"
            )
        start_index = next_index if scan.first_index is None else scan.first_index
        if scan.last_index is not None:
            next_index = scan.last_index + 1
        write_catalog_manifest(catalog, scan.line_lengths, start_index)
        paths.append(catalog.name)
    if paths != manifest.paths or next_index != manifest.current_index:
        repairs.append(
            f"{folder / MANIFEST}: rebuilt from the catalogs ({len(paths)} catalogs, "
            f"next index {next_index}; it said {len(manifest.paths)} and {manifest.current_index})"
        )
        manifest.paths = paths
        manifest.current_index = next_index
        manifest.write(folder)
    return repairs


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
        self.path.mkdir(parents=True, exist_ok=True)
        self._writer_lock = TubLock(self.path, "record").acquire()  # until close(): one writer per tub
        try:
            self._open(inputs, types, metadata, max_catalog_len)
        except BaseException:
            self._writer_lock.release()
            raise

    def _open(self, inputs, types, metadata, max_catalog_len) -> None:
        """Read or create the manifest, open the catalog to append to, start the sync thread."""
        if (self.path / MANIFEST).exists():
            self.manifest = self._reopen(inputs, types)
        else:
            self.manifest = self._create(inputs, types, metadata, max_catalog_len)
        self.types = dict(zip(self.manifest.inputs, self.manifest.types))
        self.session_id = self.manifest.new_session()
        self._lock = threading.Lock()
        self._unsynced_images: list[Path] = []
        self._catalog = None
        self._publish_lock = threading.Lock()
        self._catalog_lengths: list[int] = []
        self._finished_catalogs: list[tuple[Path, list[int], int]] = []
        self._open_catalog()
        self.manifest.write(self.path)
        self._dirty = False
        self._closed = False
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

    def _reopen(self, inputs, types) -> Manifest:
        manifest = Manifest.read(self.path)
        if inputs is not None and (list(inputs), list(types or [])) != (manifest.inputs, manifest.types):
            raise TubError(
                f"{self.path / MANIFEST}: tub has fields {manifest.inputs} of types {manifest.types}; "
                f"cannot append records with fields {inputs} of types {types}"
            )
        (self.path / IMAGES).mkdir(exist_ok=True)
        self.repairs = repair_tub(self.path, manifest)
        for message in self.repairs:
            log.warning("repaired tub: %s", message)
        return manifest

    def _open_catalog(self) -> None:
        """Append to the last catalog, or start a new one when it is full."""
        if self.manifest.paths:
            last = self.path / self.manifest.paths[-1]
            self._catalog_lengths = scan_catalog(last, repair=False).line_lengths
            if len(self._catalog_lengths) < self.manifest.max_len:
                self._catalog_start = self.manifest.current_index - len(self._catalog_lengths)
                self._catalog_path = last
                self._catalog = open(last, "ab")
                return
        number = len(self.manifest.paths)
        self._catalog_path = self.path / catalog_name(number)
        self._catalog_start = self.manifest.current_index
        self._catalog_lengths = []
        self._catalog = open(self._catalog_path, "ab")
        self.manifest.paths.append(self._catalog_path.name)
        write_catalog_manifest(self._catalog_path, [], self._catalog_start)

    def write(self, record: dict[str, Any]) -> int:
        """Store one record (images as RGB uint8 arrays or JPEG bytes); returns its index."""
        unknown = set(record) - set(self.types) - {"_timestamp_ms"}
        if unknown:
            raise ValueError(
                f"{self.path}: record has fields {sorted(unknown)} that the tub does not declare"
            )
        with self._lock:
            if self._closed:
                raise TubError(f"{self.path}: writer is closed")
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
            if len(self._catalog_lengths) >= self.manifest.max_len:
                self._rotate_catalog()
            for image_path, jpeg in images:
                image_path.write_bytes(jpeg)
                self._unsynced_images.append(image_path)
            self._catalog.write(line)
            self._catalog.flush()
            self._catalog_lengths.append(len(line))
            self.manifest.current_index = index + 1
            self._dirty = True
            return index

    def _rotate_catalog(self) -> None:
        """Close the full catalog (made durable now) and continue in a new one."""
        self._catalog.flush()
        os.fsync(self._catalog.fileno())
        self._catalog.close()
        self._finished_catalogs.append((self._catalog_path, list(self._catalog_lengths), self._catalog_start))
        self._open_catalog()

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
        """Stop the background sync, make everything durable, close the catalog."""
        self._stop.set()
        if self._syncer.is_alive() and threading.current_thread() is not self._syncer:
            self._syncer.join()
        self.sync()
        with self._lock:
            if not self._closed:
                self._catalog.close()
                self._closed = True
        self._writer_lock.release()

    def __enter__(self) -> TubWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def next_index(self) -> int:
        return self.manifest.current_index
