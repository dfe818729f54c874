"""The feed-forward style network (Johnson, Alahi & Fei-Fei 2016), sized for a CPU.

One network per style image renders any frame in that style in a single pass. The
layout is Johnson et al.'s: a wide-kernel convolution, two stride-2 downsampling
convolutions, residual blocks at 1/4 resolution, two upsampling stages, a wide-kernel
convolution back to RGB, with instance normalisation (GroupNormalization with one
group per channel) throughout. Two changes keep it fast enough to stylise whole tubs
on a laptop CPU: far fewer channels (8-16-32 instead of 32-64-128, 3 residual blocks
instead of 5, 3x3 instead of 9x9 end kernels: full-resolution layers dominate the cost),
and nearest-neighbour upsampling followed by a convolution instead of transposed convolutions (no checkerboard
artefacts, Odena et al. 2016).

Shapes: (B, H, W, 3) float RGB in 0..255 -> (B, H, W, 3) float RGB in 0..255,
H and W divisible by 4.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class NetworkSpec:
    """Width and depth of a transform network; stored with the trained weights."""

    filters: tuple[int, int, int] = (8, 16, 32)
    residual_blocks: int = 3
    end_kernel: int = 3

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> NetworkSpec:
        return cls(tuple(values["filters"]), int(values["residual_blocks"]), int(values["end_kernel"]))


def instance_norm_layer() -> Any:
    """Instance normalisation written for TFLite: per-channel means over (H, W).

    Same weights (gamma, beta) and result as the GroupNormalization(groups=-1) used in
    training, but it converts to 4-D MEAN/SUB/MUL/RSQRT that XNNPACK runs, where Keras's
    grouped form leaves 5-D reshapes and TILE outside the delegate (half the speed).
    """
    from keras import layers, ops

    class InstanceNormalization(layers.GroupNormalization):
        def call(self, inputs: Any) -> Any:  # (B, H, W, C) -> (B, H, W, C)
            mean = ops.mean(inputs, axis=(1, 2), keepdims=True)  # (B, 1, 1, C)
            variance = ops.mean(ops.square(inputs - mean), axis=(1, 2), keepdims=True)
            scale = self.gamma * ops.rsqrt(variance + self.epsilon)  # (B, 1, 1, C)
            return inputs * scale + (self.beta - mean * scale)

    return InstanceNormalization(groups=-1, epsilon=1e-3)


def build_transform_net(
    spec: NetworkSpec = NetworkSpec(),
    input_shape: tuple = (None, None, 3),
    batch_size: int | None = None,
    for_tflite: bool = False,
) -> Any:
    """The transform network as a Keras model.

    input_shape and batch_size may fix its shape, and for_tflite swaps in the TFLite-friendly
    instance norm: the layer order and weights stay the same, so `set_weights` copies a
    trained network into it.
    """
    import keras
    from keras import layers

    def conv_norm(x: Any, filters: int, kernel: int, stride: int = 1, relu: bool = True) -> Any:
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False)(x)
        norm = instance_norm_layer() if for_tflite else layers.GroupNormalization(groups=-1, epsilon=1e-3)
        x = norm(x)  # instance norm
        return layers.ReLU()(x) if relu else x

    def upsample(x: Any) -> Any:  # (B, h, w, C) -> (B, 2h, 2w, C), nearest neighbour
        if for_tflite:  # one RESIZE_NEAREST_NEIGHBOR op instead of Keras's repeat (RESHAPE + TILE)
            return layers.Resizing(x.shape[1] * 2, x.shape[2] * 2, interpolation="nearest")(x)
        return layers.UpSampling2D(2, interpolation="nearest")(x)

    small, medium, large = spec.filters
    frames = keras.Input(shape=input_shape, batch_size=batch_size, name="frames")  # (B, H, W, 3) 0..255
    x = layers.Rescaling(1.0 / 255.0)(frames)
    x = conv_norm(x, small, spec.end_kernel)  # (B, H, W, small)
    x = conv_norm(x, medium, 3, stride=2)  # (B, H/2, W/2, medium)
    x = conv_norm(x, large, 3, stride=2)  # (B, H/4, W/4, large)
    for _ in range(spec.residual_blocks):
        y = conv_norm(x, large, 3)
        y = conv_norm(y, large, 3, relu=False)
        x = layers.Add()([x, y])  # (B, H/4, W/4, large)
    x = upsample(x)
    x = conv_norm(x, medium, 3)  # (B, H/2, W/2, medium)
    x = upsample(x)
    x = conv_norm(x, small, 3)  # (B, H, W, small)
    x = layers.Conv2D(3, spec.end_kernel, padding="same", activation="sigmoid")(x)
    styled = layers.Rescaling(255.0, name="styled")(x)  # (B, H, W, 3) 0..255
    return keras.Model(frames, styled, name="style_transform")


def to_tflite(network: Any, spec: NetworkSpec, height: int, width: int, batch_size: int) -> bytes:
    """The trained network as a float32 TFLite model for (batch_size, height, width, 3) frames.

    Shapes are fixed so XNNPACK plans every layer once; H and W must be divisible by 4.
    """
    import contextlib
    import io

    import tensorflow as tf

    if height % 4 or width % 4:
        raise ValueError(f"frame size {width}x{height}: width and height must be divisible by 4")
    fixed = build_transform_net(spec, (height, width, 3), batch_size, for_tflite=True)
    fixed.set_weights(network.get_weights())
    with contextlib.redirect_stdout(io.StringIO()):  # Keras prints the SavedModel signature
        return tf.lite.TFLiteConverter.from_keras_model(fixed).convert()
