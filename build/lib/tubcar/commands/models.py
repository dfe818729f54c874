"""The models registry: list the training runs, or show one in full.

tubcar models ls [--index models/index.jsonl] [--metrics dev.steering_mse,...]
tubcar models show RUN_ID
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from training.registry import DEFAULT_INDEX, flatten, numeric_metric_names, read_registry

DEFAULT_METRIC_COLUMNS = 4
# The figures people compare runs by, when the runs have them (what training writes).
PREFERRED_METRICS = (
    "errors.dev.angle.mse",
    "errors.test.angle.mse",
    "baseline.test.angle.mse",
    "diagnosis.verdict",
)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned plain-text table, columns as wide as their widest cell."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def default_columns(runs: list[dict]) -> list[str]:
    """The preferred metrics the runs have, else their first few numeric ones."""
    present = {name for run in runs for name in flatten(run.get("metrics", {}))}
    preferred = [name for name in PREFERRED_METRICS if name in present]
    return preferred or numeric_metric_names(runs)[:DEFAULT_METRIC_COLUMNS]


def list_runs(args: argparse.Namespace) -> int:
    registry = read_registry(args.index)
    for problem in registry.problems:
        print(f"warning: {problem}", file=sys.stderr)
    if not registry.runs:
        print(f"no runs in {registry.path}")
        return 0
    metrics = args.metrics.split(",") if args.metrics else default_columns(registry.runs)
    header = ["run_id", "created", "architecture", *metrics, "latency_ms", "git", "bundle"]
    rows = []
    for run in registry.runs:
        flat = flatten(run.get("metrics", {}))
        latency = run.get("latency", {}).get("median_ms")
        rows.append(
            [
                run["run_id"],
                run.get("created", "")[:19],
                str(run.get("architecture", "")),
                *(_cell(flat.get(m)) for m in metrics),
                _cell(latency),
                str(run.get("git_revision", ""))[:12],
                str(run.get("bundle", "")),
            ]
        )
    print(format_table(header, rows))
    print(f"{len(registry.runs)} runs in {registry.path}")
    return 0


def show_run(args: argparse.Namespace) -> int:
    registry = read_registry(args.index)
    matches = [run for run in registry.runs if run["run_id"].startswith(args.run_id)]
    if len(matches) != 1:
        found = "no run" if not matches else f"{len(matches)} runs"
        print(f"{found} in {registry.path} with an id starting {args.run_id!r}", file=sys.stderr)
        return 1
    print(json.dumps(matches[0], indent=2, sort_keys=True))
    return 0


def main(argv: list[str] | None = None) -> int | None:
    parser = argparse.ArgumentParser(
        prog="tubcar models", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--index", type=Path, default=DEFAULT_INDEX, help="registry file (default: %(default)s)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    ls = commands.add_parser("ls", parents=[common], help="one line per run")
    ls.add_argument(
        "--metrics", help="comma-separated metric columns, e.g. dev.steering_mse (default: the first few)"
    )
    ls.set_defaults(handler=list_runs)
    show = commands.add_parser("show", parents=[common], help="one run in full, as JSON")
    show.add_argument("run_id", help="run id or a unique prefix of it")
    show.set_defaults(handler=show_run)
    args = parser.parse_args(argv)
    return args.handler(args)
