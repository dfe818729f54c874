"""Find a car's steering and throttle pulse widths by hand, and save them to its config.

The user nudges one PCA9685 channel's pulse until the wheels sit where they should, and
marks the end points (`left`/`centre`/`right` or `reverse`/`neutral`/`forward`).
`write_calibration` edits the car's TOML in place with tomlkit, so the user's comments
and layout survive, and validates the result before replacing the file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import tomlkit

from car.actuator import PwmBoard
from car.config import parse_config

MARKS = {
    "steering": ("left", "centre", "right"),
    "throttle": ("reverse", "neutral", "forward"),
}

HELP = (
    "commands: +N / -N nudge the pulse by N us, a bare number sets it, "
    "{marks} store the current pulse, 'show' prints the marks, 'save' writes the config, 'quit' leaves"
)


class Calibrator:
    """Holds one channel's pulse and the marks taken; every change is sent to the board."""

    def __init__(
        self, board: PwmBoard, channel: int, start_us: float = 1500.0, target: str = "steering"
    ) -> None:
        if target not in MARKS:
            raise ValueError(f"target must be one of {sorted(MARKS)}, got {target!r}")
        self.board, self.channel, self.target = board, channel, target
        self.marks: dict[str, float] = {}
        self.pulse_us = float(start_us)
        self.ticks = board.set_pulse(channel, self.pulse_us)

    @property
    def help(self) -> str:
        return HELP.format(marks="/".join(MARKS[self.target]))

    def apply(self, command: str) -> str:
        """Run one command; returns a line to show the user. Raises ValueError on nonsense."""
        command = command.strip().lower()
        if command in MARKS[self.target]:
            self.marks[f"{command}_us"] = self.pulse_us
            return f"{command} = {self.pulse_us:.0f} us"
        if command == "show":
            return ", ".join(f"{key} = {value:.0f}" for key, value in self.marks.items()) or "no marks yet"
        try:
            value = float(command)
        except ValueError:
            raise ValueError(f"unknown command {command!r}; {self.help}") from None
        pulse = self.pulse_us + value if command[0] in "+-" else value
        self.ticks = self.board.set_pulse(self.channel, pulse)  # raises if it does not fit the period
        self.pulse_us = pulse
        return f"pulse {self.pulse_us:.0f} us ({self.ticks} ticks)"


def write_calibration(config_path: str | os.PathLike, section: str, marks: dict[str, float]) -> None:
    """Set `section`.<mark>_us keys in the TOML file (created if missing), keeping comments."""
    path = Path(config_path)
    document = tomlkit.parse(path.read_text()) if path.exists() else tomlkit.document()
    if section not in document:
        document[section] = tomlkit.table()
    for key, value in marks.items():
        document[section][key] = float(value)
    parse_config(document.unwrap(), source=str(path))  # never write a config the car rejects
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(tomlkit.dumps(document))
    os.replace(tmp.name, path)
