"""Check a model bundle where it will run: load it, run it, time it. `python -m car.pilot_check DIR`.

`scripts/deploy.py` runs this on the car after copying a bundle, so a model that cannot
load there (missing file, interpreter too old, wrong input shape, a corrupt .tflite) is
caught at deploy time, not when the car should start driving. Whatever goes wrong is
reported as one FAIL line, never a traceback. Exit status 0 = usable, 1 = not.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np

from car.bundle import BundleError


def check_bundle(bundle: str, runs: int = 50, num_threads: int = 1) -> dict:
    """Load the bundle and run it on `runs` camera-sized frames; returns what was measured."""
    from car.pilot import Pilot

    pilot = Pilot.load(bundle, num_threads=num_threads)
    spec = pilot.card.input
    rng = np.random.default_rng(0)
    frames = [np.full((spec.source_height, spec.source_width, 3), 128, np.uint8)]
    frames += [
        rng.integers(0, 256, (spec.source_height, spec.source_width, 3), np.uint8) for _ in range(runs - 1)
    ]
    outputs = [pilot.run(frame) for frame in frames]
    latency = pilot.latency_stats()
    budget = pilot.card.latency.budget_ms if pilot.card.latency else None
    return {
        "bundle": str(bundle),
        "architecture": pilot.card.architecture,
        "quantization": pilot.card.quantization,
        "camera": f"{spec.source_width}x{spec.source_height}",
        "runs": len(frames),
        "grey_frame_output": {"angle": outputs[0][0], "throttle": outputs[0][1]},
        "non_finite": pilot.non_finite,
        "median_ms": round(latency["median_ms"], 3),
        "p99_ms": round(latency["p99_ms"], 3),
        "budget_ms": budget,
        "ok": pilot.non_finite == 0 and all(math.isfinite(a) and math.isfinite(t) for a, t in outputs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("bundle", help="model bundle folder (pilot.tflite + model.json)")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        result = check_bundle(args.bundle, max(1, args.runs), args.threads)
    except BundleError as err:
        result = {"bundle": args.bundle, "ok": False, "error": str(err)}
    except Exception as err:  # noqa: BLE001 - the interpreter's own errors: a FAIL line, not a traceback
        result = {"bundle": args.bundle, "ok": False, "error": f"{args.bundle}: {type(err).__name__}: {err}"}
    if args.json:
        print(json.dumps(result))
    elif "error" in result:
        print(f"FAIL {result['error']}")
    else:
        budget = f" (budget {result['budget_ms']:g} ms)" if result["budget_ms"] else ""
        print(
            f"{'OK' if result['ok'] else 'FAIL'} {result['bundle']}: {result['architecture']} "
            f"{result['quantization']}, {result['camera']} camera, {result['runs']} runs: median "
            f"{result['median_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms{budget}; non-finite outputs "
            f"{result['non_finite']}; grey frame -> angle {result['grey_frame_output']['angle']:+.3f}, "
            f"throttle {result['grey_frame_output']['throttle']:+.3f}"
        )
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
