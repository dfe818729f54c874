"""Copy a model bundle to the car and check that it loads and runs there.

    tubcar deploy --host pi@car.local models/fast_0412

1. checks the bundle here (python -m car.pilot_check), so a broken one never leaves;
2. copies it with rsync over ssh to ~/tubcar/models/<name>/ on the car (made if missing);
3. runs `python -m car.pilot_check` on the car with the car's own interpreter.
Then drive it: `tubcar drive --config car.toml --model models/<name>` on the car.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

from car import pilot_check


def rsync_command(bundle: Path, host: str, remote_repo: str, remote_dir: str, ssh: str = "ssh") -> list[str]:
    """rsync the bundle folder's contents into <repo>/<remote_dir>/<bundle name>/ (made if missing)."""
    target = f"{remote_repo.rstrip('/')}/{remote_dir.strip('/')}/{bundle.name}/"
    return ["rsync", "-az", "--mkpath", "--checksum", "-e", ssh, f"{bundle}/", f"{host}:{target}"]


def check_command(
    host: str, remote_repo: str, remote_dir: str, bundle_name: str, ssh: str = "ssh"
) -> list[str]:
    """Run car.pilot_check on the car, in the car's checkout, with its venv's Python."""
    remote = (
        f"cd {shlex.quote(remote_repo)} && .venv/bin/python -m car.pilot_check "
        f"{shlex.quote(remote_dir.strip('/') + '/' + bundle_name)}"
    )
    return [*shlex.split(ssh), host, remote]


def main(argv: list[str] | None = None) -> int | None:
    parser = argparse.ArgumentParser(
        prog="tubcar deploy", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("bundle", type=Path, help="model bundle folder (pilot.tflite + model.json)")
    parser.add_argument("--host", required=True, help="ssh destination of the car, e.g. pi@car.local")
    parser.add_argument("--remote-repo", default="tubcar", help="the car's checkout, relative to its home")
    parser.add_argument("--remote-dir", default="models", help="where bundles go, inside the checkout")
    parser.add_argument("--ssh", default="ssh", help="ssh command, e.g. 'ssh -p 2222'")
    parser.add_argument("--dry-run", action="store_true", help="check here, print the commands, copy nothing")
    args = parser.parse_args(argv)

    bundle = args.bundle.resolve()
    print(f"checking {bundle} here")
    if pilot_check.main([str(bundle)]) != 0:
        print("the bundle does not work here; not deploying it", file=sys.stderr)
        return 1
    commands = [
        rsync_command(bundle, args.host, args.remote_repo, args.remote_dir, args.ssh),
        check_command(args.host, args.remote_repo, args.remote_dir, bundle.name, args.ssh),
    ]
    for command in commands:
        print("$", shlex.join(command), flush=True)
        if not args.dry_run and subprocess.run(command).returncode != 0:
            print(f"failed: {command[0]}", file=sys.stderr)
            return 1
    if not args.dry_run:
        print(f"deployed: on the car, tubcar drive --model {args.remote_dir.strip('/')}/{bundle.name}")
    return 0
