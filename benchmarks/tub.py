"""Tub throughput: records/s written (crash-safe settings) and images/s read + decoded.

Frames are 160x120 road-like pictures (smooth shading, lane lines, sensor noise), so the
JPEGs have the size of real camera frames (~4-6 KB); OpenCV runs on one thread.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import cv2
import numpy as np

from car.channels import CAMERA_IMAGE, USER_ANGLE, USER_MODE, USER_THROTTLE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--records", type=int, default=5000, help="records to write and read back")


def road_frames(count: int, seed: int = 0) -> list[np.ndarray]:
    """`count` distinct 160x120 RGB frames with a floor, a road, lines and noise."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(count):
        frame = np.full((120, 160, 3), (70, 60, 55), np.uint8)
        frame[:40] = np.linspace(150, 200, 40, dtype=np.uint8)[:, None, None]
        shift = int(20 * np.sin(i / 15))
        road = np.array(
            [[20 + shift, 119], [70 + shift // 2, 40], [90 + shift // 2, 40], [140 + shift, 119]], np.int32
        )
        cv2.fillConvexPoly(frame, road, (110, 110, 115))
        cv2.line(frame, (20 + shift, 119), (70 + shift // 2, 40), (235, 235, 235), 2)
        cv2.line(frame, (140 + shift, 119), (90 + shift // 2, 40), (235, 235, 235), 2)
        cv2.line(frame, (80 + shift, 119), (80 + shift // 2, 40), (220, 200, 40), 2)
        noise = rng.normal(0, 4, frame.shape)
        frames.append(np.clip(frame + noise, 0, 255).astype(np.uint8))
    return frames


def run(args: argparse.Namespace) -> dict:
    from car.tub import Tub, TubWriter

    cv2.setNumThreads(1)
    distinct = road_frames(200)
    with tempfile.TemporaryDirectory() as folder:
        inputs = [CAMERA_IMAGE, USER_ANGLE, USER_THROTTLE, USER_MODE, "sim/cte"]
        types = ["image_array", "float", "float", "str", "float"]
        start = time.perf_counter()
        with TubWriter(f"{folder}/tub", inputs, types) as writer:
            for i in range(args.records):
                writer.write(
                    {
                        CAMERA_IMAGE: distinct[i % len(distinct)],
                        USER_ANGLE: float(np.sin(i / 30)),
                        USER_THROTTLE: 0.4,
                        USER_MODE: "user",
                        "sim/cte": 0.01 * (i % 7),
                    }
                )
        write_s = time.perf_counter() - start

        tub = Tub(f"{folder}/tub")
        start = time.perf_counter()
        read = sum(1 for _ in tub.records(load_images=True))
        read_s = time.perf_counter() - start
    return {
        "records": args.records,
        "write_records_per_s": round(args.records / write_s, 1),
        "read_images_per_s": round(read / read_s, 1),
        "bad_records_read": len(tub.problems),
    }
