"""The autopilot on the car: a TFLite model bundle that turns a camera frame into commands.

The bundle's model.json says how to prepare the frame (`FrameSpec`) and how to read the
outputs, so the car feeds the model exactly as training did. No TensorFlow here: the
interpreter comes from ai-edge-litert (or tflite-runtime, or TensorFlow as a last resort),
imported only when a model is loaded.

TFLite drops Keras output names; its signature names them `output_0`, `output_1`, ... in
the order of the Keras model's outputs, while `get_output_details()` may list them in
another order. `OutputSpec.index` is the position in the signature's output list, so the
tensors are looked up by signature name, never by detail order.
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
from car.frames import to_model_input

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


def _quantise(values: np.ndarray, detail: dict) -> np.ndarray:
    """float -> the tensor's integer type with its scale/zero point (no-op for float tensors)."""
    dtype = detail["dtype"]
    if not np.issubdtype(dtype, np.integer):
        return values.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(values / scale + zero_point), info.min, info.max).astype(dtype)


def _dequantise(values: np.ndarray, detail: dict) -> np.ndarray:
    """Tensor values -> float32, undoing integer quantisation where the tensor has it."""
    if not np.issubdtype(detail["dtype"], np.integer):
        return values.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return (values.astype(np.float32) - zero_point) * np.float32(scale)


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

    @classmethod
    def load(cls, bundle_path: str | os.PathLike, num_threads: int = 1) -> Pilot:
        """Open a bundle (its folder, model.json or .tflite); BundleError names what is wrong."""
        card = load_card(bundle_path)
        model_path = bundle_dir(bundle_path) / card.model_file
        try:
            interpreter = _interpreter_class()(model_path=str(model_path), num_threads=num_threads)
            interpreter.allocate_tensors()
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

    def run(self, frame: np.ndarray) -> tuple[float, float]:
        """RGB uint8 camera frame -> (angle, throttle), clipped; neutral on non-finite output."""
        start = time.perf_counter()
        values = self.predict(to_model_input(frame, self.card.input)[None])
        self._latencies_ms.append((time.perf_counter() - start) * 1000.0)
        angle, throttle = values["angle"], values["throttle"]
        if not (math.isfinite(angle) and math.isfinite(throttle)):
            self.non_finite += 1
            return 0.0, 0.0
        return self._clip("angle", angle), self._clip("throttle", throttle)

    def predict(self, batch: np.ndarray) -> dict[str, float]:
        """One normalised input (1, H, W, C) float32 -> raw scaled outputs by name (unclipped)."""
        interpreter = self._interpreter
        interpreter.set_tensor(self._input["index"], _quantise(batch, self._input))
        interpreter.invoke()
        values = {}
        for name, (detail, spec) in self._outputs.items():
            raw = _dequantise(interpreter.get_tensor(detail["index"]), detail)
            values[name] = float(raw.reshape(-1)[0]) * spec.scale + spec.offset
        return values

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
