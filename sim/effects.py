"""Camera imperfections a renderer adds to each frame: sensor noise, blur, exposure drift."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageEffects:
    """Camera imperfections applied to each frame; all off by default (a clean render).

    noise: std of per-pixel Gaussian noise (0-255 scale); blur: Gaussian sigma in pixels;
    exposure: std of a slowly drifting brightness gain (0.1 = +-10 %).
    """

    noise: float = 0.0
    blur: float = 0.0
    exposure: float = 0.0

    @property
    def active(self) -> bool:
        return self.noise > 0 or self.blur > 0 or self.exposure > 0
