"""The models registry: list the training runs, or show one in full.

tubcar models ls [--index models/index.jsonl] [--metrics errors.dev.angle.mse,...]
tubcar models show [RUN_ID]          (default: the latest run)

`ls` gives one line per run: the model, the data it learnt from, its steering MSE on the
dev and test sets as a ratio to predicting the training mean (below 1 = it learnt
something), its latency here, and the latest closed-loop score when one was measured
(`tubcar sim drive` and `tubcar replay --closed-loop` append it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from training.registry import DEFAULT_INDEX, Registry, flatten, read_registry
from tubcar.errors import CommandParser, UserError, command_parser


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


def data_cell(run: dict[str, Any]) -> str:
    """The tubs a run learnt from and the frames it kept: `track1 (408 frames)`, `3 tubs (3747 frames)`."""
    data = run.get("data") or {}
    if isinstance(data, list):  # runs registered before the data report: the tubs alone
        data = {"tubs": data}
    tubs = data.get("tubs") or []
    if not tubs:
        return "-"
    named = Path(tubs[0]).name if len(tubs) == 1 else f"{len(tubs)} tubs"
    return f"{named} ({data['kept']} frames)" if "kept" in data else named


def baseline_ratio(metrics: dict[str, Any], split: str) -> str:
    """Steering MSE on `split` over the predict-the-training-mean baseline's."""
    mse = metrics.get(f"errors.{split}.angle.mse")
    baseline = metrics.get(f"baseline.{split}.angle.mse")
    if not isinstance(mse, (int, float)) or not isinstance(baseline, (int, float)) or baseline <= 0:
        return "-"
    return f"{mse / baseline:.3f}"


def latency_cell(run: dict[str, Any]) -> str:
    """Median / p99 ms on the machine that exported it."""
    latency = run.get("latency") or {}
    if "median_ms" not in latency:
        return "-"
    return f"{latency['median_ms']:.3f} / {latency.get('p99_ms', float('nan')):.3f}"


def closed_loop_cell(registry: Registry, run_id: str) -> str:
    """The latest closed-loop score of the run: `autonomy 1.000 (sim, seed 101)`."""
    entry = registry.latest_score(run_id)
    if entry is None:
        return "-"
    return f"autonomy {entry['score'].get('autonomy', float('nan')):.3f} ({entry['how']}, {entry['where']})"


def shown_path(path: str) -> str:
    """A bundle path relative to here when it lies below, as a user would type it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def list_runs(args: argparse.Namespace) -> int:
    registry = read_registry(_existing_index(args.index))
    for problem in registry.problems:
        print(f"warning: {problem}", file=sys.stderr)
    if not registry.runs:
        print(f"no runs in {registry.path}")
        return 0
    extra = args.metrics.split(",") if args.metrics else []
    header = [
        "run_id",
        "created",
        "model",
        "data",
        "dev/mean",
        "test/mean",
        "latency ms (median / p99)",
        "closed loop",
        *extra,
        "bundle",
    ]
    rows = []
    for run in registry.runs:
        metrics = flatten(run.get("metrics", {}))
        rows.append(
            [
                run["run_id"],
                run.get("created", "")[:16].replace("T", " "),
                f"{run.get('architecture', '?')} {run.get('quantization', '')}".strip(),
                data_cell(run),
                baseline_ratio(metrics, "dev"),
                baseline_ratio(metrics, "test"),
                latency_cell(run),
                closed_loop_cell(registry, run["run_id"]),
                *(_cell(metrics.get(name)) for name in extra),
                shown_path(str(run.get("bundle", ""))),
            ]
        )
    print(format_table(header, rows))
    print(
        f"{len(registry.runs)} runs in {registry.path}; dev/mean, test/mean: steering MSE over predicting "
        "the training mean (below 1 = better than the mean)"
    )
    return 0


def _existing_index(index: Path) -> Path:
    if not index.exists():
        raise UserError(
            f"no models registry, {index}, train a model first (`tubcar train` or ./demo.sh appends to it) "
            "or give --index"
        )
    return index


def show_run(args: argparse.Namespace) -> int:
    registry = read_registry(_existing_index(args.index))
    matches = [run for run in registry.runs if run["run_id"].startswith(args.run_id or "")]
    if args.run_id is None:
        matches = matches[-1:]
    if len(matches) != 1:
        found = "no run" if not matches else f"{len(matches)} runs"
        raise UserError(
            f"{found} with an id starting {args.run_id!r}, {registry.path}, `tubcar models ls` lists them"
        )
    run = matches[0]
    print(json.dumps({**run, "closed_loop": registry.latest_score(run["run_id"])}, indent=2, sort_keys=True))
    return 0


def main(argv: list[str] | None = None) -> int | None:
    parser = command_parser("tubcar models", __doc__)
    common = CommandParser(add_help=False)
    common.add_argument(
        "--index", type=Path, default=DEFAULT_INDEX, help="registry file (default: %(default)s)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    ls = commands.add_parser("ls", parents=[common], help="one line per run")
    ls.add_argument(
        "--metrics", help="extra comma-separated metric columns, e.g. errors.test.angle.mae,diagnosis.verdict"
    )
    ls.set_defaults(handler=list_runs)
    show = commands.add_parser("show", parents=[common], help="one run in full, as JSON")
    show.add_argument("run_id", nargs="?", help="run id or a unique prefix of it (default: the latest run)")
    show.set_defaults(handler=show_run)
    args = parser.parse_args(argv)
    return args.handler(args)
