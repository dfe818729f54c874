"""Which packages a build installs: every package (the desktop), or only the car's.

`TUBCAR_INSTALL=car pip install .[pi]` installs `car` and the `tubcar` command alone: the
Pi gets the code it runs, not the simulator, training or experiments (the `pi` extra only
chooses dependencies; pip extras cannot leave packages out). Everything else about the
project is in pyproject.toml.
"""

import os

from setuptools import find_namespace_packages, setup

CAR_PACKAGES = ["car", "car.*", "tubcar", "tubcar.*"]
DESKTOP_PACKAGES = ["sim", "evaluation", "training", "augment", "experiments", "benchmarks", "studio"]
PROFILES = {
    "car": CAR_PACKAGES,
    "all": CAR_PACKAGES + [name for package in DESKTOP_PACKAGES for name in (package, f"{package}.*")],
}

profile = os.environ.get("TUBCAR_INSTALL", "all")
if profile not in PROFILES:
    raise SystemExit(f"TUBCAR_INSTALL={profile!r}: use 'car' (the Pi) or 'all' (the default)")
setup(packages=find_namespace_packages(include=PROFILES[profile]))  # namespace: the static/ page folders
