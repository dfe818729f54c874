"""A car folder, as Donkeycar's `createcar` makes one: the car's config and its data and
models folders, so `tubcar drive --config car.toml` works from inside it at once.

    mycar/
      car.toml    every setting with its default and a comment (car/car.example.toml, which
                  config/car.example.toml links to)
      data/       the tubs the car records, and those `tubcar pull` brings from the car
      models/     model bundles (`tubcar deploy` copies them here on the car)

An existing config is never overwritten (it holds the car's calibration); the folders are
made when missing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import tomlkit

from car.config import ConfigError, load_config

CONFIG_NAME = "car.toml"
FOLDERS = ("data", "models")
TEMPLATE = Path(__file__).parent / "car.example.toml"  # in the package: a car-only install has it too


@dataclass
class CarFolder:
    """What `create_car_folder` found and did."""

    path: Path
    config: Path
    config_created: bool
    folders_created: list[str] = field(default_factory=list)


def create_car_folder(path: str | os.PathLike, name: str | None = None) -> CarFolder:
    """Make `path` a car folder; `name` (default: the folder's name) goes into a new config."""
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root}: is a file, not a folder for a car")
    root.mkdir(parents=True, exist_ok=True)
    created = [folder for folder in FOLDERS if not (root / folder).is_dir()]
    for folder in created:
        (root / folder).mkdir()
    config = root / CONFIG_NAME
    config_created = not config.exists()
    if config_created:
        document = tomlkit.parse(TEMPLATE.read_text(encoding="utf-8"))
        document["name"] = name or root.resolve().name
        try:
            with open(config, "x", encoding="utf-8") as file:  # "x": never over a config made meanwhile
                file.write(tomlkit.dumps(document))
        except FileExistsError:
            config_created = False
    load_config(config)  # a new config is valid; an existing one is checked, and its errors named
    return CarFolder(root, config, config_created, created)
