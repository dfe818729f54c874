"""Reference pilots: classical camera pilots of known behaviour, no learning involved.

They calibrate evaluations: a method that scores models (closed-loop replay, the
simulator) must rank a pilot that follows the line above one with a steering trim, and
both far above one that steers away from the line. Each has the car's pilot interface,
`run(frame) -> (angle, throttle)`.
"""

from __future__ import annotations

import numpy as np


class YellowLinePilot:
    """Steer toward the yellow centre line seen in the lower half of the frame.

    `sign=-1` steers away from the line instead; `bias` adds a steering trim.
    """

    def __init__(
        self, gain: float = 1.2, bias: float = 0.0, sign: float = 1.0, throttle: float = 0.3
    ) -> None:
        self.gain, self.bias, self.sign, self.throttle = gain, bias, sign, throttle

    def run(self, frame: np.ndarray) -> tuple[float, float]:
        pixels = frame[frame.shape[0] // 2 :].astype(np.int16)  # (H/2, W, 3)
        yellow = (pixels[..., 0] + pixels[..., 1]) // 2 - pixels[..., 2] > 80  # (H/2, W)
        if not yellow.any():
            return float(np.clip(self.bias, -1.0, 1.0)), self.throttle
        offset = (np.nonzero(yellow)[1].mean() - (frame.shape[1] - 1) / 2) / (frame.shape[1] / 2)  # + = right
        return float(np.clip(self.sign * self.gain * offset + self.bias, -1.0, 1.0)), self.throttle
