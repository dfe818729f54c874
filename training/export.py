"""Keras model -> model bundle (`pilot.tflite` + `model.json`) the car can load.

Quantisation: `float32`, `dynamic` (int8 weights, float activations) or `int8` (weights
and activations, calibrated on representative frames from the tub). `auto`, the default,
takes int8 when it passes the parity check and falls back to dynamic, then float32.

An int8 model takes the prepared uint8 frame as its input: the converter's uint8 input
type, with the calibrated input range pinned to the full pixel range [0, 255] (see
`pin_input_range`), makes the input quantisation exactly the FrameSpec's normalisation
x * scale + offset, so the car feeds crop+resize output with no float copy; model.json
says so (`input.dtype: uint8`). Weights are quantised per output channel (the converter's
default for convolutions and dense layers).

Parity is measured through `car.pilot.Pilot`, the exact code the car runs, on dev frames
the model did not train on: the max and mean absolute difference of each output between
TFLite and Keras.

A bundle is published only whole and checked: it is written into a temporary folder
inside `out`, and moved into place (model.json last, the file the car's loader opens
first) only after the conversion and the parity check succeeded. A failed export (NaN
weights, no quantisation within tolerance) raises ExportError and leaves no bundle behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from car.bundle import MODEL_JSON, TFLITE_FILE, LatencySpec, ModelCard, OutputSpec, save_card
from car.frames import FrameSpec, model_input, normalise
from car.pilot import Pilot
from car.quiet import native_stderr_silenced
from training.latency import (
    DEFAULT_BUDGET_MS,
    DEFAULT_RUNS,
    PI4_SCALE_FACTOR,
    latency_report,
    latency_spec,
    time_pilot,
)
from training.models import OUTPUT_NAMES, keras_predictions

QUANTIZATIONS = ("int8", "dynamic", "float32")
AUTO_ORDER = ("int8", "dynamic", "float32")
# An output passes parity when TFLite stays this close to Keras (output units; angle in [-1, 1]).
PARITY_MAX_ABS = 0.10
PARITY_MEAN_ABS = 0.02
PARITY_FRAMES = 200


class ExportError(ValueError):
    """The model could not be exported as a bundle the car can trust; nothing was published."""


def convert(model, quantization: str, spec: FrameSpec, representative: np.ndarray | None = None) -> bytes:
    """Convert a Keras model to TFLite; int8 needs representative prepared frames (N, H, W, C) uint8."""
    import tensorflow as tf

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    if quantization == "int8":
        converter = int8_converter(model, spec, representative)
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.int8
    else:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if quantization == "dynamic":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
    with quiet_converter():
        return converter.convert()


def int8_converter(model, spec: FrameSpec, representative: np.ndarray | None):
    """A converter to int8 weights and activations, calibrated on prepared uint8 frames (float I/O)."""
    import tensorflow as tf

    if representative is None or len(representative) == 0:
        raise ValueError("int8 quantisation needs representative frames from the tub")
    samples = normalise(pin_input_range(representative), spec)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([sample[None]] for sample in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter


@contextlib.contextmanager
def quiet_converter():
    """Hide what the converter prints (Keras's SavedModel signature on stdout, TensorFlow's
    native log lines on stderr) and its input warning."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), native_stderr_silenced():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        yield


def pin_input_range(frames: np.ndarray) -> np.ndarray:
    """A copy of the prepared frames whose first one holds a 0 and a 255 pixel value.

    The converter calibrates the input's range from the representative frames, and the
    uint8 input's scale is that range / 255: only a range of exactly [0, 255] in pixels
    makes it the FrameSpec's own normalisation. Two values of one frame move no other
    tensor's range measurably.
    """
    pinned = np.array(frames, dtype=np.uint8)
    pinned[0].flat[0], pinned[0].flat[1] = 0, 255
    return pinned


def tflite_outputs(pilot: Pilot, prepared: np.ndarray) -> dict[str, np.ndarray]:
    """TFLite predictions through the car's Pilot for prepared uint8 frames, by output name, each (N,)."""
    rows = [pilot.predict(model_input(frame, pilot.card.input)[None]) for frame in prepared]
    return {name: np.array([row[name] for row in rows], dtype=np.float32) for name in OUTPUT_NAMES}


def parity_report(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray]) -> dict[str, Any]:
    """Max and mean |TFLite - Keras| per output, and whether every output is within tolerance."""
    report: dict[str, Any] = {"frames": len(next(iter(reference.values())))}
    passed = True
    for name in OUTPUT_NAMES:
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: reported as NaN, fails parity
            diff = np.abs(candidate[name] - reference[name])
        max_abs, mean_abs = float(diff.max()), float(diff.mean())
        report[name] = {"max_abs_diff": max_abs, "mean_abs_diff": mean_abs}
        passed &= max_abs <= PARITY_MAX_ABS and mean_abs <= PARITY_MEAN_ABS
    report["tolerance"] = {"max_abs_diff": PARITY_MAX_ABS, "mean_abs_diff": PARITY_MEAN_ABS}
    report["passed"] = bool(passed)
    return report


def git_revision() -> str:
    """The repository's HEAD commit, or '' outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def output_specs() -> list[OutputSpec]:
    """Angle and throttle, in the Keras (= TFLite signature) output order."""
    return [OutputSpec(name=name, index=index, low=-1.0, high=1.0) for index, name in enumerate(OUTPUT_NAMES)]


def export_bundle(
    model,
    spec: FrameSpec,
    out: str | Path,
    *,
    architecture: str,
    representative: np.ndarray,
    parity_inputs: np.ndarray,
    quantization: str = "auto",
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    budget_ms: float = DEFAULT_BUDGET_MS,
    pi_scale_factor: float = PI4_SCALE_FACTOR,
    log=print,
) -> ModelCard:
    """Write pilot.tflite + model.json into `out`; returns the card written.

    `representative` and `parity_inputs` are prepared frames (N, H, W, C) uint8, as
    `car.frames.prepare_frame` gives them: training frames for int8 calibration (see
    `training.pipeline.representative_frames`), dev frames for the parity check.
    ExportError when no quantisation passes parity (see the module docstring: nothing is
    published then).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".bundle-", dir=out))
    try:
        card = _export_checked(
            model,
            spec,
            staging,
            architecture=architecture,
            representative=representative,
            parity_inputs=parity_inputs,
            quantization=quantization,
            training=training,
            metrics=metrics,
            budget_ms=budget_ms,
            pi_scale_factor=pi_scale_factor,
            log=log,
        )
        _publish(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    size_kib = (out / TFLITE_FILE).stat().st_size / 1024
    log(f"exported {out / TFLITE_FILE} ({card.quantization}, {size_kib:.0f} KiB)")
    return card


def _export_checked(
    model,
    spec: FrameSpec,
    folder: Path,
    *,
    architecture: str,
    representative: np.ndarray,
    parity_inputs: np.ndarray,
    quantization: str,
    training: dict[str, Any] | None,
    metrics: dict[str, Any] | None,
    budget_ms: float,
    pi_scale_factor: float,
    log,
) -> ModelCard:
    """Convert into `folder` until a quantisation passes parity; time it; ExportError if none does."""
    candidates = AUTO_ORDER if quantization == "auto" else (quantization,)
    for name, frames in (("representative", representative), ("parity_inputs", parity_inputs)):
        if frames.dtype != np.uint8 or frames.shape[1:] != spec.input_shape:
            raise ValueError(
                f"{name}: expected prepared frames (N, {', '.join(map(str, spec.input_shape))}) uint8, "
                f"got {frames.shape} {frames.dtype}"
            )
    parity_inputs = parity_inputs[:PARITY_FRAMES]
    reference = keras_predictions(model, parity_inputs, spec)
    if not all(np.isfinite(values).all() for values in reference.values()):
        raise ExportError("the Keras model outputs NaN or inf (its weights are not finite): nothing exported")
    card = ModelCard(
        architecture=architecture,
        quantization=candidates[0],
        input=spec,
        outputs=output_specs(),
        training=training or {},
        metrics=metrics or {},
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        git_revision=git_revision(),
    )
    attempts: dict[str, Any] = {}
    for candidate in candidates:
        (folder / TFLITE_FILE).write_bytes(convert(model, candidate, spec, representative))
        card.quantization = candidate
        card.input = replace(spec, dtype="uint8" if candidate == "int8" else "float32")
        save_card(card, folder)
        pilot = Pilot.load(folder, num_threads=1)
        parity = parity_report(reference, tflite_outputs(pilot, parity_inputs))
        attempts[candidate] = parity
        log(
            f"parity {candidate:>7}: angle max {parity['angle']['max_abs_diff']:.4f} "
            f"mean {parity['angle']['mean_abs_diff']:.4f}, throttle max "
            f"{parity['throttle']['max_abs_diff']:.4f} mean {parity['throttle']['mean_abs_diff']:.4f} "
            f"over {parity['frames']} dev frames -> {'pass' if parity['passed'] else 'FAIL'}"
        )
        if parity["passed"]:
            break
        if candidate == candidates[-1]:
            raise ExportError(
                f"no quantisation of {', '.join(candidates)} keeps TFLite within the parity tolerance "
                f"of Keras (max {PARITY_MAX_ABS}, mean {PARITY_MEAN_ABS}): no bundle was published"
            )
        log(f"{candidate} misses parity tolerance; trying the next quantisation")
    card.parity = {**parity, "quantization": candidate, "attempts": attempts}
    timing = time_pilot(pilot)
    card.latency = LatencySpec(**latency_spec(timing, budget_ms, pi_scale_factor))
    save_card(card, folder)
    for line in latency_report(timing, card.latency, architecture, candidate):
        log(line)
    return card


def _publish(staging: Path, out: Path) -> None:
    """Move the checked bundle into `out`: an older model.json goes first and the new one
    comes last, so a crash in between leaves no loadable half-old, half-new bundle."""
    (out / MODEL_JSON).unlink(missing_ok=True)
    os.replace(staging / TFLITE_FILE, out / TFLITE_FILE)
    os.replace(staging / MODEL_JSON, out / MODEL_JSON)


def export_keras_file(
    keras_path: str | Path,
    tubs: list[str | Path],
    out: str | Path,
    *,
    spec: FrameSpec,
    architecture: str,
    rules=None,
    split_config=None,
    quantization: str = "auto",
    budget_ms: float = DEFAULT_BUDGET_MS,
    pi_scale_factor: float = PI4_SCALE_FACTOR,
    log=print,
) -> ModelCard:
    """Export a saved Keras model, calibrating and checking parity on frames from `tubs`.

    Calibration uses training frames (not augmented: this command does not know the
    training's augmentation), parity dev frames; see `training_and_dev`.
    """
    import keras

    from training.pipeline import prepare_all, representative_frames

    model = keras.models.load_model(keras_path, compile=False)
    train, dev, report = training_and_dev(tubs, rules, split_config, log)
    return export_bundle(
        model,
        spec,
        out,
        architecture=architecture,
        representative=representative_frames(train, spec),
        parity_inputs=prepare_all(dev.images[:PARITY_FRAMES], spec),
        quantization=quantization,
        training={"keras_model": str(Path(keras_path).resolve()), "data": report.to_dict()},
        budget_ms=budget_ms,
        pi_scale_factor=pi_scale_factor,
        log=log,
    )


def training_and_dev(tubs: list[str | Path], rules=None, split_config=None, log=print):
    """(training frames, dev frames, load report) of `tubs`, split exactly as training splits them."""
    from training.data import RecordFilter, load_frames
    from training.split import SplitConfig, split_frames

    frames, report = load_frames(tubs, rules or RecordFilter(), progress=False)
    log(f"data: {report.summary()}")
    split = split_frames(frames.sessions, split_config or SplitConfig())
    if len(split.dev) == 0:
        raise ValueError("no dev frames for the parity check: use more data or a different --split")
    return frames.take(split.train), frames.take(split.dev), report


def remeasure_latency(
    bundle: str | Path, budget_ms: float, pi_scale_factor: float, runs: int = DEFAULT_RUNS, log=print
) -> ModelCard:
    """Time a bundle where this runs (e.g. on the Pi, with pi_scale_factor=1) and update model.json."""
    from car.bundle import bundle_dir, load_card

    pilot = Pilot.load(bundle, num_threads=1)
    card = load_card(bundle)
    timing = time_pilot(pilot, runs=runs)
    card.latency = LatencySpec(**latency_spec(timing, budget_ms, pi_scale_factor))
    save_card(card, bundle_dir(bundle))
    for line in latency_report(timing, card.latency, card.architecture, card.quantization):
        log(line)
    return card
