"""The model bundle: `pilot.tflite` plus `model.json`, what training exports and the car loads.

`model.json` states everything the car needs to feed the model exactly as in training
(the `FrameSpec`), how to read its outputs, what data and metrics it came from, and its
measured latency. The car trusts this file, never its own config, for preprocessing.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from car.frames import FrameSpec

BUNDLE_FORMAT = "tubcar-model/1"
MODEL_JSON = "model.json"
TFLITE_FILE = "pilot.tflite"


class OutputSpec(BaseModel):
    """One model output: its name and the map from raw value to command, value*scale+offset."""

    model_config = ConfigDict(extra="forbid")
    name: str
    index: int = Field(ge=0, description="position in the TFLite signature's sorted outputs")
    scale: float = 1.0
    offset: float = 0.0
    low: float = -1.0
    high: float = 1.0


class LatencySpec(BaseModel):
    """Single-thread inference latency measured at export, and the budget it was held to."""

    model_config = ConfigDict(extra="forbid")
    median_ms: float
    p99_ms: float
    threads: int = 1
    machine: str = ""
    pi_scale_factor: float | None = None
    pi_estimate_ms: float | None = None
    budget_ms: float | None = None
    meets_budget: bool | None = None


class ModelCard(BaseModel):
    """The contents of model.json."""

    model_config = ConfigDict(extra="forbid")
    format: str = BUNDLE_FORMAT
    model_file: str = TFLITE_FILE
    architecture: str
    quantization: str = Field(description="float32, dynamic or int8")
    input: FrameSpec
    outputs: list[OutputSpec]
    training: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    parity: dict[str, Any] = Field(default_factory=dict)
    latency: LatencySpec | None = None
    created: str = ""
    git_revision: str = ""

    def output(self, name: str) -> OutputSpec:
        for spec in self.outputs:
            if spec.name == name:
                return spec
        raise KeyError(f"model has no output {name!r}; it has {[o.name for o in self.outputs]}")


class BundleError(ValueError):
    """A model bundle that cannot be used; the message names the file and the problem."""


def bundle_dir(path: str | os.PathLike) -> Path:
    """Accept the bundle folder, its model.json or its .tflite; return the folder."""
    path = Path(path)
    return path.parent if path.is_file() else path


def load_card(path: str | os.PathLike) -> ModelCard:
    """Read and validate model.json of a bundle (folder, model.json or .tflite path)."""
    card_path = bundle_dir(path) / MODEL_JSON
    if not card_path.exists():
        raise BundleError(f"{card_path}: missing; a model bundle is pilot.tflite + model.json")
    try:
        card = ModelCard.model_validate(json.loads(card_path.read_bytes()))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(f"{card_path}: not valid JSON ({err})") from err
    except ValidationError as err:
        raise BundleError(f"{card_path}: {err}") from err
    if card.format != BUNDLE_FORMAT:
        raise BundleError(f"{card_path}: format {card.format!r}, this car reads {BUNDLE_FORMAT!r}")
    model_path = card_path.parent / card.model_file
    if not model_path.exists():
        raise BundleError(f"{card_path}: names {card.model_file!r} but {model_path} does not exist")
    return card


def save_card(card: ModelCard, folder: str | os.PathLike) -> Path:
    """Write model.json atomically into the bundle folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / MODEL_JSON
    with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp") as tmp:
        tmp.write(card.model_dump_json(indent=2))
        tmp.flush()
        os.fsync(tmp.fileno())
    os.replace(tmp.name, target)
    return target
