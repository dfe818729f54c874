"""Inspect and maintain tubs.

tubcar tub info PATH... [--json]        records, deleted, sessions, fields, angle/throttle stats
tubcar tub check PATH [--repair]        decode every record and image, audit the layout; repair it
tubcar tub delete PATH RANGE            soft-delete records, e.g. 100:250 (STOP excluded) or 7
tubcar tub restore PATH RANGE           undo a delete
tubcar tub convert V1 V2                Donkeycar v1 tub -> v2 tub (JPEGs copied unchanged)
tubcar tub hist PATH... --out hist.png  angle/throttle histograms
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from car.tub import LABEL_LIMIT, Tub, TubError, open_tubs
from car.tub.convert import convert_v1_to_v2
from car.tub.inspect import check, save_histograms, summarise
from car.tub.ranges import parse_index_range


def cmd_info(args: argparse.Namespace) -> int:
    summary = summarise(open_tubs(args.paths))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"tubs:     {len(summary['tubs'])}  ({', '.join(summary['tubs'])})")
    print(f"records:  {summary['records']}  (+{summary['deleted']} deleted)")
    print(f"sessions: {', '.join(summary['sessions']) or '-'}")
    print("fields:   " + ", ".join(f"{k} ({v})" for k, v in summary["fields"].items()))
    for name in ("angle", "throttle"):
        stats = summary[name]
        if stats:
            print(
                f"{name:9} mean {stats['mean']:+.3f}  std {stats['std']:.3f}  "
                f"min {stats['min']:+.3f}  max {stats['max']:+.3f}"
            )
    if summary["problems"]:
        print(f"skipped {len(summary['problems'])} bad records (see `tubcar tub check`)")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    result = check(args.path, repair=args.repair, label_limit=args.label_limit)
    for problem in result.problems:
        print(f"bad record  {problem}")
    for problem in result.inconsistencies:
        print(f"problem     {problem}")
    for message in result.repairs:
        print(f"repaired    {message}")
    print(
        f"{args.path}: {result.good_records} good records, {len(result.problems)} bad, "
        f"{len(result.inconsistencies)} other problems"
    )
    return 1 if (result.problems or result.inconsistencies) and not args.repair else 0


def cmd_delete(args: argparse.Namespace) -> int:
    tub = Tub(args.path)
    (tub.delete if args.command == "delete" else tub.restore)(args.range)
    print(
        f"{args.path}: {args.command}d {len(args.range)} records "
        f"({args.range.start}..{args.range.stop - 1}); {len(tub.deleted_indexes)} deleted in all"
    )
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    converted, skipped = convert_v1_to_v2(args.source, args.target)
    for problem in skipped:
        print(f"skipped     {problem}")
    print(
        f"{args.source} -> {args.target}: {len(converted)} records "
        f"(+{len(converted.deleted_indexes)} deleted)"
    )
    return 0


def cmd_hist(args: argparse.Namespace) -> int:
    out = save_histograms(open_tubs(args.paths), args.out)
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int | None:
    parser = argparse.ArgumentParser(
        prog="tubcar tub", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="summarise tubs")
    info.add_argument("paths", nargs="+", type=Path)
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(run=cmd_info)
    checking = sub.add_parser("check", help="verify every record and image")
    checking.add_argument("path", type=Path)
    checking.add_argument(
        "--repair", action="store_true", help="cut torn lines, rebuild manifests, soft-delete bad records"
    )
    checking.add_argument(
        "--label-limit",
        type=float,
        default=LABEL_LIMIT,
        help="angle/throttle beyond +-this make a bad record (default %(default)s)",
    )
    checking.set_defaults(run=cmd_check)
    for name in ("delete", "restore"):
        command = sub.add_parser(name, help=f"{name} records by index range")
        command.add_argument("path", type=Path)
        command.add_argument("range", type=parse_index_range, help="INDEX or START:STOP (STOP excluded)")
        command.set_defaults(run=cmd_delete)
    convert = sub.add_parser("convert", help="Donkeycar v1 tub -> v2 tub")
    convert.add_argument("source", type=Path)
    convert.add_argument("target", type=Path)
    convert.set_defaults(run=cmd_convert)
    hist = sub.add_parser("hist", help="angle/throttle histograms as PNG")
    hist.add_argument("paths", nargs="+", type=Path)
    hist.add_argument("--out", type=Path, required=True)
    hist.set_defaults(run=cmd_hist)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except TubError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
