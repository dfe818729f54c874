"""Benchmarks that print the figures the README reports: `tubcar bench SUBJECT [--json]`.

Each subject lives in `benchmarks/<subject>.py` with `add_arguments(parser)` and
`run(args) -> dict`; it is imported only when asked for, so `tubcar bench tub` never
pays for TensorFlow.
"""

import argparse
import importlib
import json

SUBJECTS = {
    "tub": "records/s written and images/s read+decoded",
    "sim": "simulator render + physics frames/s on one core",
    "infer": "TFLite single-thread latency of linear, pilotnet and fast",
    "loop": "drive loop at 20 Hz with sim camera, pilot and recorder (--load N: beside N busy processes)",
    "pipeline": "training input pipeline vs training throughput",
    "stylize": "style-transfer apply frames/s",
    "studio": "tub studio: page load of a 20,000-record tub's timeline (timeline_ms)",
    "faults": "randomized fault campaign on a tub: kill -9, corrupt bytes, truncated files (records_lost)",
}


def main(argv: list[str] | None = None) -> int | None:
    parser = argparse.ArgumentParser(
        prog="tubcar bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="subject", required=True, metavar="SUBJECT")
    for name, help_text in SUBJECTS.items():
        sub_parser = sub.add_parser(name, help=help_text)
        sub_parser.add_argument("--json", action="store_true", help="print one JSON object")
        try:
            importlib.import_module(f"benchmarks.{name}").add_arguments(sub_parser)
        except ModuleNotFoundError as err:
            if err.name != f"benchmarks.{name}":
                raise
    args = parser.parse_args(argv)
    module = importlib.import_module(f"benchmarks.{args.subject}")
    result = module.run(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:>28}: {value}")
