"""The feed-forward style network (Johnson, Alahi & Fei-Fei 2016), sized for a CPU.

One network per style image renders any frame in that style in a single pass. The
layout is Johnson et al.'s: a wide-kernel convolution, two stride-2 downsampling
convolutions, residual blocks at 1/4 resolution, two upsampling stages, a wide-kernel
convolution back to RGB, with instance normalisation (GroupNormalization with one
group per channel) throughout. Two changes keep it fast enough to stylise whole tubs
on a laptop CPU: far fewer channels (8-16-32 instead of 32-64-128, 3 residual blocks
instead of 5, 3x3 instead of 9x9 end kernels: full-resolution layers dominate the cost), and nearest-neighbour upsampling
followed by a convolution instead of transposed convolutions (no checkerboard
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


def build_transform_net(spec: NetworkSpec = NetworkSpec(), input_shape: tuple = (None, None, 3)) -> Any:
    """The transform network as a Keras model; input_shape may fix H and W (for TFLite)."""
    import keras
    from keras import layers

    def conv_norm(x: Any, filters: int, kernel: int, stride: int = 1, relu: bool = True) -> Any:
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False)(x)
        x = layers.GroupNormalization(groups=-1, epsilon=1e-3)(x)  # instance norm
        return layers.ReLU()(x) if relu else x

    small, medium, large = spec.filters
    frames = keras.Input(shape=input_shape, name="frames")  # (B, H, W, 3) 0..255
    x = layers.Rescaling(1.0 / 255.0)(frames)
    x = conv_norm(x, small, spec.end_kernel)  # (B, H, W, small)
    x = conv_norm(x, medium, 3, stride=2)  # (B, H/2, W/2, medium)
    x = conv_norm(x, large, 3, stride=2)  # (B, H/4, W/4, large)
    for _ in range(spec.residual_blocks):
        y = conv_norm(x, large, 3)
        y = conv_norm(y, large, 3, relu=False)
        x = layers.Add()([x, y])  # (B, H/4, W/4, large)
    x = layers.UpSampling2D(2, interpolation="nearest")(x)
    x = conv_norm(x, medium, 3)  # (B, H/2, W/2, medium)
    x = layers.UpSampling2D(2, interpolation="nearest")(x)
    x = conv_norm(x, small, 3)  # (B, H, W, small)
    x = layers.Conv2D(3, spec.end_kernel, padding="same", activation="sigmoid")(x)
    styled = layers.Rescaling(255.0, name="styled")(x)  # (B, H, W, 3) 0..255
    return keras.Model(frames, styled, name="style_transform")
