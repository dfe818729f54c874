"""`tubcar [--verbose] COMMAND [ARGS]`: dispatch to `tubcar.commands.<command>.main(args)`.

Only the chosen command's module is imported, so `tubcar tub info` never pays for
TensorFlow and `tubcar --help` answers at once. A user's mistake in any command (a
missing path, a folder that is not a tub or a bundle, a bad flag) ends in one line and
exit code 2 (`tubcar.errors`); `--verbose` also shows TensorFlow's own messages and the
traceback behind an error (`tubcar.env`).
"""

from __future__ import annotations

import importlib
import sys

from tubcar import env, errors

# What `TUBCAR_INSTALL=car` (setup.py) leaves out: the Pi runs the car's commands only.
DESKTOP_PACKAGES = frozenset(
    {"sim", "evaluation", "training", "augment", "experiments", "benchmarks", "studio"}
)

COMMANDS = {
    "init": "make a car folder: its commented config, data/ and models/",
    "drive": "drive the car (or the simulator) by hand or by a model, recording tubs",
    "calibrate": "find the steering and throttle pulse widths and write them into the config",
    "calibrate-camera": "measure the camera, lens, track and steering scale from a real tub",
    "tub": "inspect and maintain tubs: info, check, delete, restore, convert, hist",
    "sim": "the simulator: record expert tubs, drive and score a model, draw a track",
    "train": "train a steering model on tubs and export a model bundle",
    "export": "export a Keras model as a bundle, or re-time a bundle",
    "augment": "preview the training augmentation on a tub",
    "stylize": "neural style transfer: learn a style, re-render tubs in it",
    "search": "random hyperparameter search under a latency budget",
    "models": "the models registry: list runs, show one",
    "replay": "replay a tub through a model: open loop, or closed loop on the recorded laps",
    "movie": "a tub as a video with the steering/throttle gauge, and a model's beside it",
    "studio": "the tub studio in the browser: clean tubs, analyse errors, compare pilots",
    "deploy": "copy a model bundle to the car and check it there",
    "pull": "copy the car's tubs into data/, never over a local tub",
    "bench": "benchmarks behind the README's figures",
    "demo": "the whole pipeline in a few minutes in the simulator",
    "acceptance": "measure the README's acceptance figures",
    "augment-evidence": "experiment: does augmentation generalise to unseen tracks?",
    "replay-validation": "experiment: does closed-loop replay score pilots as the simulator does?",
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {help_text}" for name, help_text in COMMANDS.items()]
    return (
        "usage: tubcar [--verbose] COMMAND [ARGS]   (tubcar COMMAND --help for its options)\n\n"
        "  --verbose  show TensorFlow's messages and the traceback behind an error\n\ncommands:\n"
        + "\n".join(lines)
    )


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code (0 when it returns nothing, 2 for a user's mistake)."""
    args = sys.argv[1:] if argv is None else list(argv)
    verbose = bool(args) and args[0] in ("-v", "--verbose")
    args = args[1:] if verbose else args
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else errors.EXIT_USER_ERROR
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}, tubcar, see `tubcar --help`", file=sys.stderr)
        return errors.EXIT_USER_ERROR
    env.apply(verbose=verbose)
    try:
        module = importlib.import_module(f"tubcar.commands.{name.replace('-', '_')}")
        return int(module.main(rest) or 0)
    except SystemExit as stop:  # argparse's exits (--help, usage errors) and SystemExit("message")
        line = errors.exit_message(stop.code)
        if line is None:
            return stop.code if isinstance(stop.code, int) else 0
        print(line, file=sys.stderr)
        return errors.EXIT_USER_ERROR
    except Exception as err:
        line = missing_desktop_package(name, err) or errors.describe(err)
        if line is None or verbose:
            raise
        print(line, file=sys.stderr)
        return errors.EXIT_USER_ERROR


def missing_desktop_package(command: str, err: Exception) -> str | None:
    """The line for a desktop command run on a car-only install, None for any other error."""
    if not isinstance(err, ModuleNotFoundError) or (err.name or "").split(".")[0] not in DESKTOP_PACKAGES:
        return None
    return (
        f"error: tubcar {command} needs the {err.name} package, which a car-only install "
        "(TUBCAR_INSTALL=car) leaves out; run it on the desktop install"
    )


if __name__ == "__main__":
    sys.exit(main())
