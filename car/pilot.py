"""The autopilot on the car: a TFLite model bundle that turns a camera frame into commands.

The bundle's model.json says how to prepare the frame (`FrameSpec`) and how to read the
outputs, so the car feeds the model exactly as training did. No TensorFlow here: the
interpreter comes from ai-edge-litert (or tflite-runtime, or TensorFlow as a last resort),
imported only when a model is loaded.

TFLite drops Keras output names; its signature names them `output_0`, `output_1`, ... in
the order of the Keras model's outputs, while `get_output_details()` may list them in
another order. `OutputSpec.index` is the position in the signature's output list, so the
tensors are looked up by signature name, never by detail order.

The frame path costs about what the model costs: an int8 bundle takes the prepared uint8
frame (model.json's `input.dtype`), which `run` writes straight into the interpreter's
input buffer (crop + resize, no float copy); a float bundle's normalised frame is written
there the same way. Older int8 bundles with an int8 input still load: their normalised
input is quantised here.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from car.bundle import BundleError, ModelCard, bundle_dir, load_card
from car.frames import FrameSpec, to_model_input
from car.quiet import native_stderr_silenced

LATENCY_WINDOW = 10_000  # latest run() calls kept for latency_stats()


def _interpreter_class() -> Any:
    """The first TFLite interpreter available: LiteRT (a core dependency), then tflite-runtime.

    Never TensorFlow's: the car does not import TensorFlow (tests/test_layout.py).
    """
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter
    except ImportError as err:
        raise BundleError(
            "no TFLite interpreter installed: pip install ai-edge-litert (or tflite-runtime)"
        ) from err


def open_interpreter(model_path: str | os.PathLike, num_threads: int = 1) -> Any:
    """A TFLite interpreter of the file, its tensors allocated; LiteRT's note that it made
    its XNNPACK delegate is kept out of normal output (`car.quiet`)."""
    with native_stderr_silenced():
        interpreter = _interpreter_class()(model_path=str(model_path), num_threads=num_threads)
        interpreter.allocate_tensors()
    return interpreter


def _quantisation(detail: dict) -> tuple[float, int]:
    """(scale, zero point) of an integer tensor; (1, 0) for a float one."""
    if not np.issubdtype(detail["dtype"], np.integer):
        return 1.0, 0
    scale, zero_point = detail["quantization"]
    return float(scale), int(zero_point)


def _quantise(values: np.ndarray, detail: dict) -> np.ndarray:
    """Normalised float input -> an int8 input tensor's values (as is when the types match)."""
    dtype = detail["dtype"]
    if values.dtype == dtype:
        return values
    scale, zero_point = _quantisation(detail)
    info = np.iinfo(dtype)
    return np.clip(np.round(values / scale + zero_point), info.min, info.max).astype(dtype)


def folds_normalisation(quantization: tuple[float, int], spec: FrameSpec) -> bool:
    """Does a uint8 input quantisation (scale, zero point) compute the spec's x * scale + offset?

    Real value = (q - zero_point) * scale, so it must have the spec's scale and a zero point
    of -offset / scale. A zero point is an integer: (x - 127.5) / 127.5 is met to within
    half a pixel level (zero point 127 or 128), x / 255 exactly.
    """
    scale, zero_point = quantization
    return (
        math.isclose(scale, spec.scale, rel_tol=1e-4)
        and abs(zero_point + spec.offset / spec.scale) <= 0.5 + 1e-6
    )


class Pilot:
    """A loaded model bundle: `run(frame) -> (angle, throttle)`, with latency statistics."""

    def __init__(self, interpreter: Any, card: ModelCard, model_path: Path) -> None:
        self.card = card
        self.model_path = model_path
        self.non_finite = 0  # run() calls whose model output was NaN/inf (answered neutral)
        self._interpreter = interpreter
        self._latencies_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._input, self._outputs = self._resolve_tensors()
        for name in ("angle", "throttle"):
            if name not in self._outputs:
                raise BundleError(
                    f"{bundle_dir(model_path) / 'model.json'}: no output named {name!r} "
                    f"(outputs: {[o.name for o in card.outputs]})"
                )
        self._check_input_type()
        # run() writes the frame into the input tensor's own buffer when the model takes
        # exactly what to_model_input gives (every bundle but old int8-input ones).
        self._input_buffer = interpreter.tensor(self._input["index"])
        self._writes_in_place = self._input["dtype"] == np.dtype(card.input.dtype)
        self._angle = self._output_reader("angle")
        self._throttle = self._output_reader("throttle")

    @classmethod
    def load(cls, bundle_path: str | os.PathLike, num_threads: int = 1) -> Pilot:
        """Open a bundle (its folder, model.json or .tflite); BundleError names what is wrong."""
        card = load_card(bundle_path)
        model_path = bundle_dir(bundle_path) / card.model_file
        try:
            interpreter = open_interpreter(model_path, num_threads)
        except (ValueError, RuntimeError) as err:
            raise BundleError(f"{model_path}: not a loadable TFLite model ({err})") from err
        return cls(interpreter, card, model_path)

    def _resolve_tensors(self) -> tuple[dict, dict[str, tuple[dict, Any]]]:
        """Find the input tensor and each named output's tensor via the signature."""
        interpreter = self._interpreter
        signatures = interpreter.get_signature_list()
        if not signatures:
            raise BundleError(f"{self.model_path}: the TFLite model has no signature")
        key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
        runner = interpreter.get_signature_runner(key)
        inputs = list(runner.get_input_details().values())
        if len(inputs) != 1:
            raise BundleError(f"{self.model_path}: expected one input tensor, found {len(inputs)}")
        input_detail = inputs[0]
        expected = (1, *self.card.input.input_shape)
        actual = tuple(int(d) for d in input_detail["shape"])
        if actual != expected:
            raise BundleError(
                f"{self.model_path}: model input shape {actual} does not match model.json's "
                f"input {expected} (height, width, channels from its FrameSpec)"
            )
        output_names = signatures[key]["outputs"]
        output_details = runner.get_output_details()
        outputs: dict[str, tuple[dict, Any]] = {}
        for spec in self.card.outputs:
            if spec.index >= len(output_names):
                raise BundleError(
                    f"{bundle_dir(self.model_path) / 'model.json'}: output {spec.name!r} has index "
                    f"{spec.index} but the model has {len(output_names)} outputs"
                )
            outputs[spec.name] = (output_details[output_names[spec.index]], spec)
        return input_detail, outputs

    def _check_input_type(self) -> None:
        """A uint8-input model must normalise exactly as model.json's FrameSpec says."""
        spec, detail = self.card.input, self._input
        if spec.dtype == "float32":
            return
        card_path = bundle_dir(self.model_path) / "model.json"
        if detail["dtype"] != np.uint8:
            raise BundleError(
                f"{card_path}: input dtype uint8 but {self.model_path.name} takes {np.dtype(detail['dtype'])}"
            )
        if not folds_normalisation(detail["quantization"], spec):
            scale, zero_point = detail["quantization"]
            raise BundleError(
                f"{card_path}: the input is normalised as x * {spec.scale:.6g} + {spec.offset:.6g} but "
                f"{self.model_path.name}'s uint8 input quantisation is scale {scale:.6g}, zero point "
                f"{zero_point}: they disagree"
            )

    def _output_reader(self, name: str):
        """A function reading one output as its command value, unclipped (dequantised, scaled)."""
        detail, spec = self._outputs[name]
        scale, zero_point = _quantisation(detail)
        index, get_tensor = detail["index"], self._interpreter.get_tensor
        return lambda: (float(get_tensor(index).flat[0]) - zero_point) * scale * spec.scale + spec.offset

    def run(self, frame: np.ndarray) -> tuple[float, float]:
        """RGB uint8 camera frame -> (angle, throttle), clipped; neutral on non-finite output."""
        start = time.perf_counter()
        buffer = self._input_buffer()  # a view of the input tensor: released before invoke
        if self._writes_in_place:
            to_model_input(frame, self.card.input, out=buffer[0])
        else:
            buffer[0] = _quantise(to_model_input(frame, self.card.input), self._input)
        del buffer
        self._interpreter.invoke()
        angle, throttle = self._angle(), self._throttle()
        self._latencies_ms.append((time.perf_counter() - start) * 1000.0)
        if not (math.isfinite(angle) and math.isfinite(throttle)):
            self.non_finite += 1
            return 0.0, 0.0
        return self._clip("angle", angle), self._clip("throttle", throttle)

    def predict(self, batch: np.ndarray) -> dict[str, float]:
        """One model input (1, H, W, C), as to_model_input gives it -> raw outputs by name (unclipped)."""
        expected = np.dtype(self.card.input.dtype)
        if batch.dtype != expected:
            raise ValueError(f"{self.model_path} takes {expected} input (model.json), got {batch.dtype}")
        self._interpreter.set_tensor(self._input["index"], _quantise(batch, self._input))
        self._interpreter.invoke()
        return {name: reader() for name, reader in (("angle", self._angle), ("throttle", self._throttle))}

    def _clip(self, name: str, value: float) -> float:
        spec = self._outputs[name][1]
        return float(min(max(value, spec.low), spec.high))

    def latency_stats(self) -> dict[str, float]:
        """Median, p99 and max milliseconds of run() (frame preparation + inference)."""
        samples = sorted(self._latencies_ms)
        if not samples:
            return {"count": 0, "median_ms": math.nan, "p99_ms": math.nan, "max_ms": math.nan}
        p99 = samples[min(len(samples) - 1, math.ceil(0.99 * len(samples)) - 1)]
        return {
            "count": len(samples),
            "median_ms": statistics.median(samples),
            "p99_ms": p99,
            "max_ms": samples[-1],
        }
