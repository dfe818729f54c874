"""Copy the car's tubs into the local data folder, never over a local tub (Donkeycar's
`rsync pi@car:mycar/data/ data/`, made safe).

    tubcar pull --host pi@car.local            # ~/tubcar/data/* on the car -> data/

A tub already here with the same files is left as it is; one with the same name and other
files (the car recorded more into it, or another tub altogether) lands beside it under a
new name, `<name>_from_<host>`, and the command says so. Files already here are not sent
again.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from car.tub import Tub, TubError
from car.tub.pull import Placed, place_tubs, pull_command


def main(argv: list[str] | None = None) -> int | None:
    parser = argparse.ArgumentParser(
        prog="tubcar pull", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", required=True, help="ssh destination of the car, e.g. pi@car.local")
    parser.add_argument("--remote-repo", default="tubcar", help="the car's checkout, relative to its home")
    parser.add_argument("--remote-dir", default="data", help="the car's tub folder, inside the checkout")
    parser.add_argument("--data", type=Path, default=Path("data"), help="the local tub folder")
    parser.add_argument("--ssh", default="ssh", help="ssh command, e.g. 'ssh -p 2222'")
    args = parser.parse_args(argv)

    args.data.mkdir(parents=True, exist_ok=True)
    remote = f"{args.remote_repo.rstrip('/')}/{args.remote_dir.strip('/')}"
    # staged beside data/, not in it: an interrupted pull must not leave copies that training would read
    staging = Path(tempfile.mkdtemp(prefix=".tubcar-pull-", dir=args.data.resolve().parent))
    try:
        command = pull_command(args.host, remote, staging, args.data, args.ssh)
        print("$", shlex.join(command), flush=True)
        if subprocess.run(command).returncode != 0:
            raise SystemExit(f"error: rsync from {args.host}:{remote} failed, see its message above")
        placed = place_tubs(staging, args.data, args.host)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for item in placed:
        print(_line(item))
    new = [item for item in placed if item.outcome in ("new", "renamed")]
    print(
        f"pulled {len(new)} new tub(s) into {args.data}/"
        + (": tubcar tub info " + str(args.data) if new else "")
    )
    return 0


def _line(item: Placed) -> str:
    if item.path is None:
        return f"{'skipped':<12} {item.name}: not a tub"
    try:
        records = f" ({len(Tub(item.path))} records)"
    except TubError as err:
        records = f" (unreadable: {err})"
    if item.outcome == "renamed":
        return (
            f"{'renamed':<12} {item.name}{records} -> {item.path}: a different local tub has its name; "
            "yours is untouched"
        )
    return f"{item.outcome:<12} {item.name}{records} -> {item.path}"
