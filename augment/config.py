"""What augmentation training applies: one flat, serialisable config and its CLI flags.

Every transform has a probability (0 disables it) and one strength knob. The config
is a plain dataclass so it goes into model.json and the training report as a dict,
and the flags are generated from its fields, so the two cannot drift apart.

`--augment default|none` picks a preset; any `--aug-*` flag overrides one field of it,
e.g. `--augment none --aug-flip 0.5` trains with flips only.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from augment.steering import DEFAULT_STEER_PER_PX

PRESETS = ("default", "none")


def _knob(default: float | int, help_text: str) -> Any:
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities (p) and strengths of the label-aware training transforms."""

    flip: float = _knob(0.5, "p of a horizontal mirror; steering is negated, throttle kept")
    shift: float = _knob(0.4, "p of a horizontal shift with a steering correction")
    shift_px: float = _knob(8.0, "largest horizontal shift, camera pixels")
    shift_steer_per_px: float = _knob(
        DEFAULT_STEER_PER_PX, "steering correction per pixel of shift (see augment/steering.py)"
    )
    shift_y_px: float = _knob(3.0, "largest vertical jitter (pitch), pixels; label unchanged")
    shadow: float = _knob(0.3, "p of 1-2 random polygon shadows")
    shadow_intensity: float = _knob(0.6, "darkest shadow: 0 none .. 1 black")
    brightness: float = _knob(0.5, "p of a brightness/contrast change")
    brightness_limit: float = _knob(0.3, "largest brightness and contrast change, fraction")
    gamma: float = _knob(0.2, "p of a gamma change")
    gamma_limit: float = _knob(0.3, "largest gamma change, fraction (0.3 -> gamma 0.7..1.3)")
    color: float = _knob(0.3, "p of a saturation/hue jitter")
    color_strength: float = _knob(0.3, "saturation jitter fraction; hue jitter is a sixth of it")
    blur: float = _knob(0.2, "p of a Gaussian or motion blur (one of the two)")
    blur_kernel: float = _knob(5.0, "largest blur kernel, pixels (odd, >= 3)")
    noise: float = _knob(0.2, "p of Gaussian sensor noise")
    noise_std: float = _knob(0.05, "largest noise std as a fraction of full scale")
    group: int = _knob(
        8,
        "consecutive training samples that share one random draw (1: each its own); "
        "larger is faster, see augment/transforms.py",
    )
    preset: str = field(default="default", metadata={"help": "the preset this config started from"})

    def __post_init__(self) -> None:
        for name in PROBABILITY_FIELDS:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"augmentation probability {name}={value} is outside [0, 1]")
        if self.blur_kernel < 3:
            raise ValueError(f"blur_kernel={self.blur_kernel} must be >= 3 pixels")
        for name in (
            "shift_px",
            "shift_y_px",
            "brightness_limit",
            "gamma_limit",
            "color_strength",
            "noise_std",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"augmentation strength {name}={getattr(self, name)} must be >= 0")
        if not 0.0 <= self.shadow_intensity <= 1.0:
            raise ValueError(f"shadow_intensity={self.shadow_intensity} is outside [0, 1]")
        if not isinstance(self.group, int) or self.group < 1:
            raise ValueError(f"augmentation group={self.group!r} must be a whole number >= 1")
        if self.preset not in PRESETS:
            raise ValueError(f"unknown augmentation preset {self.preset!r}; choose from {PRESETS}")

    @property
    def enabled(self) -> bool:
        """True when at least one transform can fire."""
        return any(getattr(self, name) > 0 for name in PROBABILITY_FIELDS)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AugmentConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown augmentation settings {sorted(unknown)}")
        return cls(**values)

    @classmethod
    def preset_named(cls, name: str) -> AugmentConfig:
        """The `default` pipeline, or `none` (every probability zero)."""
        if name == "default":
            return cls()
        if name == "none":
            never: dict[str, Any] = dict.fromkeys(PROBABILITY_FIELDS, 0.0)
            return cls(**never, preset="none")
        raise ValueError(f"unknown augmentation preset {name!r}; choose from {PRESETS}")


PROBABILITY_FIELDS = ("flip", "shift", "shadow", "brightness", "gamma", "color", "blur", "noise")
_TUNABLE = tuple(f for f in fields(AugmentConfig) if f.name != "preset")


def _flag(name: str) -> str:
    return "--aug-" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `--augment PRESET` and one `--aug-*` flag per config field to a parser."""
    group = parser.add_argument_group(
        "augmentation (training split only)",
        "pick a preset with --augment, then override single knobs; p=0 disables a transform",
    )
    group.add_argument(
        "--augment", choices=PRESETS, default="default", help="augmentation preset (default: default)"
    )
    for spec in _TUNABLE:
        kind = "P" if spec.name in PROBABILITY_FIELDS else "N" if spec.type == "int" else "X"
        group.add_argument(
            _flag(spec.name),
            dest=f"aug_{spec.name}",
            type=int if spec.type == "int" else float,
            default=None,
            metavar=kind,
            help=f"{spec.metadata['help']} (default preset: {spec.default:g})",
        )


def config_from_args(args: argparse.Namespace) -> AugmentConfig:
    """The preset named by --augment with every given --aug-* flag applied on top."""
    config = AugmentConfig.preset_named(getattr(args, "augment", "default") or "default")
    overrides = {
        spec.name: getattr(args, f"aug_{spec.name}")
        for spec in _TUNABLE
        if getattr(args, f"aug_{spec.name}", None) is not None
    }
    return replace(config, **overrides)
