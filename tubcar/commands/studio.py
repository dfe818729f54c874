"""The tub studio in the browser: clean tubs, analyse a model's errors, compare pilots.

    tubcar studio data/tub_1 data/tub_2 --model models/fast models/linear

Prints the address to open (http://127.0.0.1:8890/ by default); Ctrl-C stops it.
Tub manager: timeline of steering and throttle (and each model's predictions), frames
with the steering drawn, play, select and soft-delete ranges, filters saved for
`tubcar train --filter`, undo. Error analysis: frames by error, tags, the share of the
error each tag carries. Pilot arena: models side by side, open and closed loop.
Changes are soft deletes and side files (tags.json, filter.json) under the tub's lock.
"""

from __future__ import annotations

import threading
from pathlib import Path

from studio.app import Studio
from studio.server import StudioServer, is_loopback
from tubcar.errors import UserError, command_parser


def main(argv: list[str] | None = None) -> int | None:
    parser = command_parser("tubcar studio", __doc__)
    parser.add_argument("tubs", nargs="+", type=Path, metavar="TUB", help="tub folders, or folders of tubs")
    parser.add_argument("--model", nargs="+", type=Path, default=[], metavar="M", help="model bundles")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (%(default)s: this computer only)"
    )
    parser.add_argument("--port", type=int, default=8890, help="port (%(default)s; 0 picks a free one)")
    parser.add_argument(
        "--out", type=Path, default=Path("runs/studio"), help="closed-loop runs go here (%(default)s)"
    )
    args = parser.parse_args(argv)
    try:
        studio = Studio(args.tubs, args.model, args.out)
        server = StudioServer(studio, args.host, args.port)
        url = server.start()
    except RuntimeError as err:  # the server could not start, e.g. the port is taken
        raise UserError(f"{err}, tubcar studio, try another --port") from None
    try:  # from here Ctrl-C stops the server cleanly, even while the address prints
        print(f"tub studio: {len(studio.tubs)} tub(s), {len(studio.bundles)} model(s); open {url}")
        if not is_loopback(args.host):
            print(f"warning: listening on {args.host}: anyone who can reach this machine can see these tubs")
        threading.Event().wait()
    except KeyboardInterrupt:
        print("\nstopping")
    finally:
        server.stop()
    return 0
