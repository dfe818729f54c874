"""Where int8 loses precision: the error of every quantised tensor, by TFLite's QuantizationDebugger.

`tubcar export layers` prints it. The debugger runs the float and the int8 model side by
side on dev frames and compares each tensor an op writes (every convolution, dense layer
and output). `rmse_steps` is the root-mean-square difference in units of the tensor's
quantisation step (its scale): rounding alone gives 1/sqrt(12) = 0.29 steps. A tensor far
above that is clipped: the calibration frames never showed it the values the dev frames
produce (an output whose calibrated range missed the sharpest turns reads several steps).
"""

from __future__ import annotations

import csv
import io
import math
import re

import numpy as np

from car.frames import FrameSpec, normalise
from training.export import int8_converter, quiet_converter
from training.models import OUTPUT_NAMES

ROUNDING_STEPS = 1 / math.sqrt(12)  # RMS error of rounding to a uniform grid, in steps


def layer_errors(model, spec: FrameSpec, representative: np.ndarray, inputs: np.ndarray) -> list[dict]:
    """Per quantised tensor, in graph order: op, layer, scale and rmse_steps on `inputs`.

    `representative` (calibration) and `inputs` are prepared frames (N, H, W, C) uint8.
    """
    import tensorflow as tf

    samples = normalise(inputs, spec)
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=int8_converter(model, spec, representative),
        debug_dataset=lambda: ([sample[None]] for sample in samples),
    )
    with quiet_converter():
        debugger.run()
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    return [
        {
            "op": row["op_name"],
            "layer": layer_name(row["tensor_name"]),
            "scale": float(row["scale"]),
            "rmse_steps": math.sqrt(float(row["mean_squared_error"])) / float(row["scale"]),
        }
        for row in csv.DictReader(io.StringIO(dump.getvalue()))
    ]


def layer_name(tensor_name: str) -> str:
    """A readable name for a converted tensor: the output's name, or the Keras op it ends with.

    The converter names an output `StatefulPartitionedCall_1:<i>` (i in signature order,
    which is OUTPUT_NAMES's) and a fused op by its parts, `model/re_lu_1/Relu;model/conv...`.
    """
    output = re.fullmatch(r"StatefulPartitionedCall(?:_\d+)?:(\d+)", tensor_name)
    if output and int(output.group(1)) < len(OUTPUT_NAMES):
        return f"output {OUTPUT_NAMES[int(output.group(1))]}"
    first = tensor_name.split(";")[0]
    return first.split("/", 1)[1] if "/" in first else first


def format_errors(rows: list[dict]) -> str:
    """The table `tubcar export layers` prints."""
    lines = [f"{'op':<16} {'layer':<28} {'scale':>9} {'rmse (steps)':>13}"]
    for row in rows:
        flag = "  <- clipped" if row["rmse_steps"] > 3 * ROUNDING_STEPS else ""
        lines.append(
            f"{row['op']:<16} {row['layer']:<28} {row['scale']:>9.5f} {row['rmse_steps']:>13.2f}{flag}"
        )
    lines.append(f"(rounding alone: {ROUNDING_STEPS:.2f} steps)")
    return "\n".join(lines)
