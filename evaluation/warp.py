"""Re-render a recorded camera frame as if the car stood slightly off its recorded pose.

This is what lets a model drive closed-loop on *recorded* laps (NVIDIA's PilotNet
evaluation): when the model's own driving has moved the car 10 cm left and turned it
3 degrees, the nearest recorded frame is warped to show the world from there.

Two assumptions make one frame enough:
- Below the horizon the world is a flat floor, so the floor seen from the new pose is a
  plane-induced homography of the recorded frame (the simulator camera's
  `view_change_homography`: exact for the floor and its markings, wrong only for things
  standing on it).
- Above the horizon everything is far away, so only the heading change matters there
  (the rotation-only homography); a lateral shift of a few centimetres does not move a
  wall ten metres away. Both homographies agree at the horizon, so the seam is smooth.
Pixels the recorded camera never saw are filled by repeating the nearest recorded edge
pixel: the floor's colour carries on, and no lane marking is invented (as mirroring would).

Offsets are those of the new car pose in the recorded car's frame: forward (x), left (y),
and heading counter-clockwise (a turn to the left). The camera is an ideal pinhole; lens
distortion (strong on wide-angle Pi cameras) is not modelled, so straight markings near
the image edges bend a little after a large warp.
"""

from __future__ import annotations

import cv2
import numpy as np

from sim.camera import CameraModel, view_change_homography

FILL_MODES = {"replicate": cv2.BORDER_REPLICATE, "black": cv2.BORDER_CONSTANT}


def far_homography(camera: CameraModel, heading_rad: float) -> np.ndarray:
    """H (3, 3): recorded pixel -> new pixel for points at infinity (rotation only)."""
    recorded, _ = camera.world_to_camera(0.0, 0.0, 0.0)
    turned, _ = camera.world_to_camera(0.0, 0.0, heading_rad)
    k = camera.intrinsics()
    return k @ turned @ recorded.T @ np.linalg.inv(k)


def warp_frame(
    frame: np.ndarray,
    camera: CameraModel,
    lateral_m: float,
    heading_rad: float,
    forward_m: float = 0.0,
    fill: str = "replicate",
) -> np.ndarray:
    """The recorded RGB frame (H, W, 3) as seen from the car moved by the given offsets.

    lateral_m > 0: the car stands left of where the frame was recorded, so the floor
    ahead appears shifted right. heading_rad > 0: the car is turned left, so the whole
    scene appears shifted right. Returns a new uint8 frame of the same shape.
    """
    if frame.shape[:2] != (camera.height, camera.width):
        raise ValueError(
            f"frame is {frame.shape[1]}x{frame.shape[0]} but the camera model is "
            f"{camera.width}x{camera.height}"
        )
    if fill not in FILL_MODES:
        raise ValueError(f"fill must be one of {sorted(FILL_MODES)}, got {fill!r}")
    if lateral_m == 0.0 and heading_rad == 0.0 and forward_m == 0.0:
        return frame.copy()
    size = (camera.width, camera.height)
    border = FILL_MODES[fill]
    floor = cv2.warpPerspective(
        frame,
        view_change_homography(camera, forward_m, lateral_m, heading_rad),
        size,
        flags=cv2.INTER_LINEAR,
        borderMode=border,
    )
    horizon = camera.horizon_row
    if horizon < 0.0:  # the camera looks so far down that no sky is in view
        return floor
    far = cv2.warpPerspective(
        frame, far_homography(camera, heading_rad), size, flags=cv2.INTER_LINEAR, borderMode=border
    )
    # (H, 1, 1): rows whose centre lies below the horizon see the floor, the rest is far away.
    below = (np.arange(camera.height) > horizon)[:, None, None]
    return np.where(below, floor, far)
