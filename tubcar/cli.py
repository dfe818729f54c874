"""`tubcar COMMAND [ARGS]`: dispatch to `tubcar.commands.<command>.main(args)`.

Only the chosen command's module is imported, so `tubcar tub info` never pays for
TensorFlow and `tubcar --help` answers at once.
"""

from __future__ import annotations

import importlib
import sys

from tubcar import env

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
        "usage: tubcar COMMAND [ARGS]   (tubcar COMMAND --help for its options)\n\ncommands:\n"
        + "\n".join(lines)
    )


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code (0 when it returns nothing)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"tubcar: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    env.apply()
    try:
        module = importlib.import_module(f"tubcar.commands.{name.replace('-', '_')}")
        code = module.main(rest)
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in DESKTOP_PACKAGES:
            raise
        print(
            f"error: tubcar {name} needs the {error.name} package, which a car-only install "
            "(TUBCAR_INSTALL=car) leaves out; run it on the desktop install",
            file=sys.stderr,
        )
        return 2
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
