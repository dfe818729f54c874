"""A randomized fault campaign on a tub: `tubcar bench faults [--rounds 40] [--seed 0] --json`.

Each round injects one fault into a tub being recorded, as a power cut, a failing SD card or
a careless user would, then recovers as the tools do and counts what was lost:
- `kill`: a recorder (a process of its own) killed with SIGKILL at a random moment of writing;
- `corrupt`: 1-8 random bytes overwritten in a random file of the tub (a catalog, a catalog
  manifest, manifest.json, an image);
- `truncate`: a random file of the tub cut to a random length;
- `delete`: a random file of the tub deleted (manifest.json included: a tub without one
  once started again at index 0 and overwrote every image).
Recovery: every reader reads the tub (none may raise), `tubcar tub check` audits it, a tub
that no longer opens gets `check --repair`, and a writer appends records to it.

A record is *lost* when it was acknowledged (its `write()` returned), the fault left its
bytes alone (its catalog line and its image file are unchanged on disk), and yet it is not
read back exactly (labels and image bytes): a loss the tools caused, not the fault itself.
Records whose bytes the fault destroyed are counted apart (`damaged_by_faults`), and a
killed recorder loses at most the record it was writing, which was never acknowledged.
Printed: `injected` faults, `survived` rounds (the tub read, checked and took new records),
`records_lost` (goal 0).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIELDS = (["cam/image_array", "user/angle", "user/throttle"], ["image_array", "float", "float"])
KINDS = ("kill", "corrupt", "truncate", "delete")

# Records until killed, printing "ack INDEX ANGLE THROTTLE SHA256-OF-JPEG" once write() returned.
RECORDER = """
import hashlib, sys
import numpy as np
from benchmarks.faults import FIELDS, random_record
from car.tub import TubWriter
path, seed, sync_interval_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
rng = np.random.default_rng(seed)
writer = TubWriter(path, *FIELDS, sync_interval_s=sync_interval_s)
while True:
    record = random_record(rng)
    index = writer.write(record)
    sha = hashlib.sha256(record["cam/image_array"]).hexdigest()
    print("ack", index, record["user/angle"], record["user/throttle"], sha, flush=True)
"""


def random_record(rng) -> dict:
    """A record of a 32x24 JPEG of noise and two labels (6 decimals: exact through JSON and back)."""
    import cv2
    import numpy as np

    jpeg = cv2.imencode(".jpg", rng.integers(0, 256, (24, 32, 3), np.uint8))[1].tobytes()
    angle, throttle = (round(float(v), 6) for v in rng.uniform(-1, 1, 2))
    return {"cam/image_array": jpeg, "user/angle": angle, "user/throttle": throttle}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=40, help="faults to inject")
    parser.add_argument("--seed", type=int, default=0, help="seed of the campaign (kinds, moments, bytes)")


class Campaign:
    """One tub, the records acknowledged so far, and the tally."""

    def __init__(self, folder: Path, seed: int) -> None:
        self.path = folder / "tub"
        self.rng = random.Random(seed)
        self.expected: dict[int, tuple[float, float, str]] = {}  # index -> (angle, throttle, image sha)
        self.injected = dict.fromkeys(KINDS, 0)
        self.survived = 0
        self.lost: list[int] = []
        self.damaged = 0
        self.killed_while_writing = 0
        self.failures: list[str] = []

    # ---------------------------------------------------------------- writing
    def record(self, count: int) -> None:
        """Append `count` records in this process (acknowledged as write() returns)."""
        import numpy as np

        from car.tub import TubWriter

        rng = np.random.default_rng(self.rng.randrange(1 << 30))
        with TubWriter(self.path, *FIELDS, sync_interval_s=0.05) as writer:
            for _ in range(count):
                record = random_record(rng)
                index = writer.write(record)
                sha = hashlib.sha256(record["cam/image_array"]).hexdigest()
                self.expected[index] = (record["user/angle"], record["user/throttle"], sha)

    def record_until_killed(self) -> None:
        """A recorder process killed with SIGKILL 0-0.3 s after its first record."""
        sync = self.rng.choice(["0.02", "1.0"])  # kills land inside fsyncs and manifest renames too
        process = subprocess.Popen(
            [sys.executable, "-c", RECORDER, str(self.path), str(self.rng.randrange(1 << 30)), sync],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None and process.stderr is not None  # both are pipes
        deadline = None
        for line in process.stdout:
            _, index, angle, throttle, sha = line.split()
            self.expected[int(index)] = (float(angle), float(throttle), sha)
            self.killed_while_writing += deadline is None
            deadline = deadline or time.monotonic() + self.rng.uniform(0.0, 0.3)
            if time.monotonic() >= deadline:
                process.send_signal(signal.SIGKILL)
                break
        process.wait()
        error = process.stderr.read()
        process.stdout.close()
        process.stderr.close()
        if process.returncode != -signal.SIGKILL:
            raise RuntimeError(f"the recorder ended before it was killed: {error[-500:]}")

    # ---------------------------------------------------------------- faults
    def files(self) -> list[Path]:
        return sorted(p for p in self.path.rglob("*") if p.is_file() and p.name != "tub.lock")

    def corrupt(self) -> None:
        target = self.rng.choice(self.files())
        size = target.stat().st_size
        if size == 0:
            return
        with open(target, "r+b") as handle:
            for _ in range(self.rng.randint(1, 8)):
                handle.seek(self.rng.randrange(size))
                handle.write(bytes([self.rng.randrange(256)]))

    def truncate(self) -> None:
        target = self.rng.choice(self.files())
        os.truncate(target, self.rng.randrange(max(1, target.stat().st_size)))

    def delete(self) -> None:
        files = self.files()
        manifest = [p for p in files if p.name == "manifest.json"]
        self.rng.choice(manifest if self.rng.random() < 0.3 else files).unlink()  # often the manifest

    # ---------------------------------------------------------------- checking
    def on_disk(self) -> dict[int, tuple[bytes, str]]:
        """Index -> (catalog line, image sha) of every readable line now on disk."""
        found: dict[int, tuple[bytes, str]] = {}
        for catalog in sorted(self.path.glob("catalog_*.catalog")):
            for line in catalog.read_bytes().splitlines():
                try:
                    record = json.loads(line)
                    index, image = record["_index"], self.path / "images" / record["cam/image_array"]
                except (ValueError, KeyError, TypeError):
                    continue
                if isinstance(index, int) and image.is_file() and index not in found:
                    found[index] = (line, hashlib.sha256(image.read_bytes()).hexdigest())
        return found

    def read_back(self) -> dict[int, tuple[float, float, str]]:
        """What the readers give back now: index -> (angle, throttle, image sha) of each record
        whose image decodes. A tub that no longer opens is repaired first, as a user would
        with `tubcar tub check --repair`; `check` must survive whatever it finds."""
        from car.tub import Tub, TubError, TubRecordError
        from car.tub.inspect import check

        try:
            tub = Tub(self.path)
        except TubError:
            check(self.path, repair=True)
            tub = Tub(self.path)
        check(self.path)
        read = {}
        for record in tub.records():
            try:
                tub.load_image(record)
            except TubRecordError:
                continue
            sha = hashlib.sha256(tub.image_path(record).read_bytes()).hexdigest()
            read[record["_index"]] = (record["user/angle"], record["user/throttle"], sha)
        return read

    def inject(self, kind: str) -> None:
        faults = {"kill": self.record_until_killed, "corrupt": self.corrupt, "truncate": self.truncate}
        faults["delete"] = self.delete
        faults[kind]()

    def round(self) -> None:
        kind = self.rng.choice(KINDS)
        self.injected[kind] += 1
        before = self.on_disk()
        try:
            self.inject(kind)
        except Exception as err:  # noqa: BLE001 - an injection that failed is reported, not survived
            self.failures.append(f"{kind} could not be injected: {type(err).__name__}: {err}")
            return
        after = self.on_disk()
        intact = {i for i in self.expected if i in after and (i not in before or after[i] == before[i])}
        destroyed = set(self.expected) - intact
        self.damaged += len(destroyed)
        for index in destroyed:
            del self.expected[index]
        try:
            self.record(self.rng.randint(5, 30))
            read = self.read_back()
        except Exception as err:  # noqa: BLE001 - a round that did not survive is counted and described
            self.failures.append(f"{kind}: {type(err).__name__}: {err}")
            return
        lost = [i for i, value in self.expected.items() if read.get(i) != value]
        self.lost += lost
        for index in lost:
            del self.expected[index]
        self.survived += 1


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as folder:
        campaign = Campaign(Path(folder), args.seed)
        campaign.record(50)
        for _ in range(args.rounds):
            campaign.round()
        acknowledged = len(campaign.expected) + len(campaign.lost) + campaign.damaged
    return {
        "injected": sum(campaign.injected.values()),
        "by_kind": campaign.injected,
        "survived": campaign.survived,
        "records_lost": len(campaign.lost),
        "lost_indexes": campaign.lost[:20],
        "records_acknowledged": acknowledged,
        "damaged_by_faults": campaign.damaged,
        "recorders_killed_while_writing": campaign.killed_while_writing,
        "failures": campaign.failures[:10],
        "seed": args.seed,
        "seconds": round(time.perf_counter() - started, 1),
    }
