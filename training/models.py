"""The three steering models: `linear` (Donkeycar's default), `pilotnet` (NVIDIA) and `fast`.

Each architecture comes with the camera-frame preparation it was designed for (a
`FrameSpec`), so a model and its input always travel together into model.json.
All return a Keras model with two outputs in this order: angle, throttle. That order is
the TFLite signature's order (`output_0`, `output_1`), which the car relies on.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from car.frames import FrameSpec, normalise
from training.flags import flag

ARCHITECTURES = ("fast", "linear", "pilotnet")
OUTPUT_NAMES = ("angle", "throttle")
# Batch norm's moving statistics, used at inference, start at mean 0 / variance 1 and
# move 1 - momentum of the way to each batch's. Keras's default 0.99 needs ~500 steps to
# forget the start, and a small tub gives 30 steps an epoch: dev loss (inference mode)
# stays at the mean predictor's while the training loss falls, and early stopping keeps
# an early epoch. 0.9 (PyTorch's default) settles in ~50 steps. Batch norm is also
# synchronised: under a tf.distribute strategy its statistics are the global batch's, so
# every worker holds the same model (outside a strategy this changes nothing).
BATCH_NORM_MOMENTUM = 0.9


@dataclass(frozen=True)
class ModelOptions:
    """Knobs shared by all architectures (None = the architecture's default).

    `width` multiplies the filters of every convolution and the units of every hidden
    dense layer (1.0 = the architecture as published): the capacity knob of the recipe's
    "bigger network", and the one that moves latency most after the input size.
    """

    dropout: float | None = flag(None, "dropout rate (default: the architecture's)")
    l2: float = flag(0.0, "L2 weight penalty on convs and dense layers")
    batch_norm: bool | None = flag(
        None, "batch normalisation (default: the architecture's)", action=argparse.BooleanOptionalAction
    )
    width: float = flag(
        1.0,
        "scales every layer's filters/units (1.0: the architecture as published)",
        name="--width-multiplier",
    )

    def __post_init__(self) -> None:
        if self.width <= 0:
            raise ValueError(f"model width multiplier must be > 0, got {self.width}")


def default_frame_spec(architecture: str, source_width: int = 160, source_height: int = 120) -> FrameSpec:
    """The input each architecture was designed for, for a camera of the given size.

    `linear` sees the whole frame as in Donkeycar. `pilotnet` and `fast` crop the top
    third (sky, ceiling, people: nothing that tells where the road goes). `fast` then
    halves the resolution: lane lines stay several pixels wide at 80x40, and a 4x smaller
    input is the largest single latency saving.
    """
    sky = source_height // 3
    if architecture == "linear":
        return FrameSpec(source_width, source_height, width=source_width, height=source_height)
    if architecture == "pilotnet":
        return FrameSpec(source_width, source_height, crop_top=sky, width=200, height=66)
    if architecture == "fast":
        return FrameSpec(
            source_width,
            source_height,
            crop_top=sky,
            width=source_width // 2,
            height=(source_height - sky) // 2,
        )
    raise ValueError(f"unknown architecture {architecture!r}; choose from {ARCHITECTURES}")


def build_model(architecture: str, input_shape: tuple[int, int, int], options: ModelOptions = ModelOptions()):
    """A compiled-ready (uncompiled) Keras model: image (H, W, C) -> [angle (1,), throttle (1,)]."""
    builders: dict[str, Callable] = {"linear": _linear, "pilotnet": _pilotnet, "fast": _fast}
    if architecture not in builders:
        raise ValueError(f"unknown architecture {architecture!r}; choose from {ARCHITECTURES}")
    return builders[architecture](input_shape, options)


def keras_predictions(
    model, prepared: np.ndarray, spec: FrameSpec, batch_size: int = 256
) -> dict[str, np.ndarray]:
    """The Keras model's outputs by name, each (N,), for prepared uint8 frames.

    Called eagerly, batch by batch: `model.predict` traces a graph for every new batch
    shape (each set's last, partial batch), and for the small models those traces cost
    more than the predictions themselves (the simulator acceptance's `fast`: its
    evaluation took 3x as long).
    """
    batches = [
        model(normalise(prepared[start : start + batch_size], spec), training=False)
        for start in range(0, len(prepared), batch_size)
    ]
    return {
        name: np.concatenate([np.asarray(outputs[position]).reshape(-1) for outputs in batches])
        if batches
        else np.zeros(0, np.float32)
        for position, name in enumerate(OUTPUT_NAMES)
    }


def set_output_bias(model, means: dict[str, float]) -> None:
    """Start each output at its training-label mean (zero kernel, bias = mean).

    A randomly initialised head starts with predictions spread far beyond the labels'
    range, and the first epochs go into undoing that instead of learning to steer.
    """
    for name, mean in means.items():
        kernel, bias = model.get_layer(name).get_weights()
        model.get_layer(name).set_weights([np.zeros_like(kernel), np.full_like(bias, mean)])


class _Blocks:
    """Conv/dense blocks with the configured L2 penalty, batch norm and dropout."""

    def __init__(self, options: ModelOptions, dropout: float, batch_norm: bool) -> None:
        import keras

        self.keras = keras
        self.width = options.width
        self.dropout = dropout if options.dropout is None else options.dropout
        self.batch_norm = batch_norm if options.batch_norm is None else options.batch_norm
        self.regulariser = keras.regularizers.L2(options.l2) if options.l2 > 0 else None

    def conv(self, x, filters: int, kernel: int, stride: int, padding: str = "valid", dropout: bool = True):
        layers = self.keras.layers
        x = layers.Conv2D(
            self._scaled(filters),
            kernel,
            strides=stride,
            padding=padding,
            use_bias=not self.batch_norm,
            kernel_regularizer=self.regulariser,
        )(x)
        if self.batch_norm:
            x = layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, synchronized=True)(x)
        x = layers.ReLU()(x)
        if dropout and self.dropout > 0:
            x = layers.Dropout(self.dropout)(x)
        return x

    def dense(self, x, units: int):
        layers = self.keras.layers
        x = layers.Dense(
            self._scaled(units), use_bias=not self.batch_norm, kernel_regularizer=self.regulariser
        )(x)
        if self.batch_norm:
            x = layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, synchronized=True)(x)
        x = layers.ReLU()(x)
        if self.dropout > 0:
            x = layers.Dropout(self.dropout)(x)
        return x

    def _scaled(self, count: int) -> int:
        return max(1, round(count * self.width))

    def heads(self, x, inputs, name: str):
        """Two linear outputs, angle then throttle (the order the TFLite signature keeps)."""
        layers = self.keras.layers
        outputs = [layers.Dense(1, name=output)(x) for output in OUTPUT_NAMES]
        return self.keras.Model(inputs, outputs, name=name)


def _linear(input_shape, options: ModelOptions):
    """Donkeycar's KerasLinear: five convs, dense 100 and 50, dropout 0.2, no batch norm."""
    import keras

    blocks = _Blocks(options, dropout=0.2, batch_norm=False)
    inputs = keras.Input(input_shape, name="image")  # (120, 160, 3)
    x = blocks.conv(inputs, 24, 5, 2)  # (58, 78, 24)
    x = blocks.conv(x, 32, 5, 2)  # (27, 37, 32)
    x = blocks.conv(x, 64, 5, 2)  # (12, 17, 64)
    x = blocks.conv(x, 64, 3, 1)  # (10, 15, 64)
    x = blocks.conv(x, 64, 3, 1)  # (8, 13, 64)
    x = keras.layers.Flatten()(x)  # (6656,)
    x = blocks.dense(x, 100)
    x = blocks.dense(x, 50)
    return blocks.heads(x, inputs, "linear")


def _pilotnet(input_shape, options: ModelOptions):
    """NVIDIA's PilotNet (Bojarski et al. 2016): five convs, dense 100-50-10."""
    import keras

    blocks = _Blocks(options, dropout=0.1, batch_norm=True)
    inputs = keras.Input(input_shape, name="image")  # (66, 200, 3)
    x = blocks.conv(inputs, 24, 5, 2, dropout=False)  # (31, 98, 24)
    x = blocks.conv(x, 36, 5, 2, dropout=False)  # (14, 47, 36)
    x = blocks.conv(x, 48, 5, 2, dropout=False)  # (5, 22, 48)
    x = blocks.conv(x, 64, 3, 1, dropout=False)  # (3, 20, 64)
    x = blocks.conv(x, 64, 3, 1)  # (1, 18, 64)
    x = keras.layers.Flatten()(x)  # (1152,)
    x = blocks.dense(x, 100)
    x = blocks.dense(x, 50)
    x = blocks.dense(x, 10)
    return blocks.heads(x, inputs, "pilotnet")


def _fast(input_shape, options: ModelOptions):
    """Small strided CNN for the latency budget: ~3 M multiply-adds on a 40x80 input.

    Four strided 'same' convs shrink the image 8x before a small dense layer; the final
    feature map is flattened, not pooled, because *where* the lane is decides the angle.
    Batch norm folds into the convs at export, so it costs nothing on the car.
    """
    import keras

    blocks = _Blocks(options, dropout=0.2, batch_norm=True)
    inputs = keras.Input(input_shape, name="image")  # (40, 80, 3)
    x = blocks.conv(inputs, 16, 5, 2, "same", dropout=False)  # (20, 40, 16)
    x = blocks.conv(x, 32, 3, 2, "same", dropout=False)  # (10, 20, 32)
    x = blocks.conv(x, 48, 3, 2, "same", dropout=False)  # (5, 10, 48)
    x = blocks.conv(x, 64, 3, 1, "valid", dropout=False)  # (3, 8, 64)
    x = keras.layers.Flatten()(x)  # (1536,)
    x = keras.layers.Dropout(blocks.dropout)(x) if blocks.dropout > 0 else x
    x = blocks.dense(x, 64)
    return blocks.heads(x, inputs, "fast")
