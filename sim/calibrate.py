"""Measure a real car's camera, track and steering from one tub's frames and labels.

`calibrate(frames, angles, throttles)` returns a `Calibration`: the numbers the simulator
needs to look and steer like the real car. How each is measured (frames RGB 160x120 or
any size; rows and widths below scale with it):

1. Lens (k1, k2), plumb lines: posts and poles above the floor are vertical in the world,
   so once the lens is undone each is a straight line through one vertical vanishing point
   below the image centre (its row is fitted too, as a nuisance); white edge tape on the
   straights (the driver holds angle 0 for >= 12 frames) is straight as well. One robust
   (soft-L1) least-squares fit of the pixel-level distortion r' = r (1 + c1 r^2), residuals
   in lens pixels. k2 stays 0: fitted too, it trades off against k1 along a valley that
   0.2 px of noise cannot resolve (the fit of both drifts to a different lens of the same
   residual; tests/test_sim_realism.py shows it on synthetic posts).
2. Horizon: on the straights the undistorted yellow centre line and white edge line meet
   on the horizon; the median row of where they meet.
3. Focal length and pitch, from a lap: the tub passes the same places again (the frame
   that looks most like frame i, 250 or more frames later, is i one lap on), and in one
   lap the car turns by 360 degrees. The room above the floor slides sideways by
   f / cos(pitch) pixels per radian of turn (phase correlation of consecutive undistorted
   frames, middle of the image), so the shifts summed over a lap are 2 pi f / cos(pitch).
   With the horizon at cy - f tan(pitch) that gives f and the pitch; then OpenCV's
   k1 = c1 f^2, k2 = c2 f^4.
4. Height, lane and tape widths: on a flat floor a line at lateral offset X appears (without
   the lens) as u = u_vp + X cos(pitch) (v - v_horizon) / height, so the slopes of the tape
   edges on the straights give every lateral distance in units of the camera height; one
   known width, the white tape's (default 2 inch = 0.048 m), turns them into metres.
5. Steering scale: the room's sideways shift per frame (3.) over f / cos(pitch) is the
   turn per frame; the yellow dashes come closer by the metres driven per frame (straights).
   dyaw per frame against the recorded angle (at the lag that correlates best), divided by
   metres per frame, is the path curvature of angle 1: tan(max wheel angle) / wheelbase.
   The same ratio per frame in the curves gives the radii the driver drove.
6. Look: floor colour (median of the floor pixels that are not tape), specular streaks
   (share of floor pixels >= 25 brighter than the frame's floor median), exposure (each
   frame's floor brightness, 5th-95th percentile over the median), tape widths in pixels
   (horizontal runs in rows 80-110 of 120).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import cv2
import numpy as np
from scipy.optimize import least_squares

from sim.camera import CameraModel
from sim.lens import distort_points, undistort_image, undistort_points
from sim.tape import row_runs, tape_masks, vertical_edge_chains, white_line_chains, yellow_dash_centres

WHITE_TAPE_M = 0.048  # 2 inch tape: the one width taken as known
STRAIGHT_ANGLE = 0.1  # |angle| at or below this ...
STRAIGHT_FRAMES = 12  # ... for this many frames in a row is a straight


@dataclass(frozen=True)
class Calibration:
    """What one tub says about its car, camera and track (see the module docstring)."""

    frames: int
    straight_frames: int
    # lens and mounting
    k1: float
    k2: float
    fov_deg: float  # of the undistorted (pinhole) image
    lens_fov_deg: float  # what the lens frame spans across its width
    pitch_deg: float
    height_m: float
    horizon_row: float  # pinhole row
    lens_residual_px: float  # median plumb-line residual with the fitted lens ...
    pinhole_residual_px: float  # ... and without it
    # track
    lane_width_m: float  # yellow centre line to white edge line centre
    white_tape_m: float
    yellow_tape_m: float
    lane_position: float  # where the camera drives: 0 = on the yellow line, 1 = on the white line
    dash_step_m: float  # metres driven per frame on the straights
    white_tape_px: tuple[float, float, float]  # 10th, 50th, 90th percentile, rows 80-110 of 120
    yellow_tape_px: tuple[float, float, float]
    # steering
    curvature_per_angle: float  # 1/m for angle 1
    steering_lag_frames: int
    steering_correlation: float
    curve_radius_m: tuple[float, float, float]  # 10th, 50th, 90th percentile where |angle| >= 0.4
    # look
    floor_rgb: tuple[int, int, int]
    floor_rgb_p10: tuple[int, int, int]
    floor_rgb_p90: tuple[int, int, int]
    streak_share: float
    exposure_range: tuple[float, float]  # floor brightness, 5th and 95th percentile / median
    room_rgb: tuple[int, int, int]

    def max_wheel_angle_deg(self, wheelbase_m: float) -> float:
        """The front-wheel angle at angle 1 for a car of this wheelbase."""
        return math.degrees(math.atan(self.curvature_per_angle * wheelbase_m))

    def camera(self, width: int = 160, height: int = 120) -> CameraModel:
        """The calibrated camera (forward_m keeps its default: frames cannot tell it)."""
        return CameraModel(
            height_m=self.height_m,
            pitch_deg=self.pitch_deg,
            fov_deg=self.fov_deg,
            width=width,
            height=height,
            k1=self.k1,
            k2=self.k2,
        )

    def to_dict(self) -> dict:
        return asdict(self)


def calibrate(
    frames: np.ndarray,
    angles: np.ndarray,
    white_tape_m: float = WHITE_TAPE_M,
    progress: Callable[[str], None] = lambda step: None,
) -> Calibration:
    """Measure everything from frames (N, H, W, 3) RGB uint8 and their recorded angles (N,)."""
    frames = np.asarray(frames)
    angles = np.asarray(angles, dtype=np.float64)
    count, height, width = frames.shape[:3]
    if count < 100 or len(angles) != count:
        raise ValueError(
            f"calibration needs >= 100 frames with one angle each, got {count} and {len(angles)}"
        )
    straight = straight_frames(angles)
    if len(straight) < 20:
        raise ValueError(
            f"only {len(straight)} frames on straights (|angle| <= {STRAIGHT_ANGLE} for {STRAIGHT_FRAMES} "
            "frames): drive some straights to calibrate the lens"
        )
    floor_top = round(0.42 * height)  # rows below see the floor near the car
    progress("lens")
    posts = [chain for frame in frames for chain in vertical_edge_chains(frame, int(0.35 * height))]
    tape = [chain for i in straight for chain in white_line_chains(frames[i], floor_top)]
    lens = fit_lens(posts, tape, width, height)
    progress("horizon")
    horizon = horizon_row(frames[straight], lens, floor_top)
    progress("focal length")
    shifts = room_shifts(frames, lens)
    turn_scale = focal_over_cos_pitch(frames, shifts, lens)  # f / cos(pitch), pixels per radian
    cy = (height - 1) / 2.0
    focal = math.sqrt(turn_scale**2 - (cy - horizon) ** 2)
    pitch = math.atan((cy - horizon) / focal)
    camera = CameraModel(
        fov_deg=math.degrees(2 * math.atan(width / 2 / focal)),
        pitch_deg=math.degrees(pitch),
        width=width,
        height=height,
        k1=lens.c1 * focal**2,
        k2=lens.c2 * focal**4,
    )
    progress("lane")
    lane = lane_slopes(frames[straight], camera, floor_top)
    to_height = 1.0 / math.cos(pitch)  # slope -> lateral distance in camera heights
    camera_height = white_tape_m / (lane["white"] * to_height)
    camera = camera.replace(height_m=camera_height)
    progress("steering")
    yaw = shifts / turn_scale
    step = dash_step(frames, angles, camera, floor_top)
    steering = steering_scale(yaw, angles, step)
    progress("look")
    look = floor_look(frames, camera)
    lens_edge = undistort_points(camera, np.array([[0.0, cy], [width - 1.0, cy]]))
    lens_fov = math.degrees(
        math.atan((camera.principal_point[0] - lens_edge[0, 0]) / focal)
        + math.atan((lens_edge[1, 0] - camera.principal_point[0]) / focal)
    )
    return Calibration(
        frames=count,
        straight_frames=len(straight),
        k1=round(camera.k1, 4),
        k2=round(camera.k2, 5),
        fov_deg=round(camera.fov_deg, 2),
        lens_fov_deg=round(lens_fov, 1),
        pitch_deg=round(camera.pitch_deg, 2),
        height_m=round(camera_height, 4),
        horizon_row=round(horizon, 2),
        lens_residual_px=round(lens.residual_px, 3),
        pinhole_residual_px=round(lens.pinhole_residual_px, 3),
        lane_width_m=round(lane["lane"] * to_height * camera_height, 3),
        white_tape_m=round(white_tape_m, 4),
        yellow_tape_m=round(lane["yellow"] * to_height * camera_height, 4),
        lane_position=round(lane["position"], 3),
        dash_step_m=round(step, 4),
        white_tape_px=look["white_px"],
        yellow_tape_px=look["yellow_px"],
        curvature_per_angle=round(steering["curvature_per_angle"], 3),
        steering_lag_frames=steering["lag"],
        steering_correlation=round(steering["correlation"], 3),
        curve_radius_m=steering["radius_m"],
        floor_rgb=look["floor_rgb"],
        floor_rgb_p10=look["floor_rgb_p10"],
        floor_rgb_p90=look["floor_rgb_p90"],
        streak_share=look["streak_share"],
        exposure_range=look["exposure_range"],
        room_rgb=look["room_rgb"],
    )


def straight_frames(angles: np.ndarray) -> list[int]:
    """Frames inside runs of >= STRAIGHT_FRAMES with |angle| <= STRAIGHT_ANGLE, three frames
    in from each end (the car may still be turning into or already out of the straight)."""
    calm = np.abs(angles) <= STRAIGHT_ANGLE
    edges = np.flatnonzero(np.diff(np.concatenate([[0], calm.astype(int), [0]])))
    frames: list[int] = []
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        if end - start >= STRAIGHT_FRAMES:
            frames.extend(range(start + 3, end - 3))
    return frames


# ------------------------------------------------------------------------------ 1. lens
@dataclass(frozen=True)
class LensFit:
    c1: float  # per pinhole pixel^2
    c2: float  # per pinhole pixel^4
    down_row: float  # pinhole row of the vertical vanishing point
    residual_px: float
    pinhole_residual_px: float


class _Chains:
    """Point chains packed into one array for vectorised per-chain line fits."""

    def __init__(self, chains: list[np.ndarray]) -> None:
        self.points = np.concatenate(chains) if chains else np.zeros((0, 2))
        self.ids = (
            np.concatenate([np.full(len(c), k) for k, c in enumerate(chains)]) if chains else np.zeros(0, int)
        )
        self.count = len(chains)

    def line_residuals(self, points: np.ndarray, through: np.ndarray | None = None) -> np.ndarray:
        """Distance of each point from its chain's least-squares line (or from the best line
        through `through`)."""
        total = np.bincount(self.ids, minlength=self.count)
        if through is None:
            centre = np.stack(
                [np.bincount(self.ids, w, minlength=self.count) / total for w in points.T], axis=1
            )[self.ids]
        else:
            centre = np.broadcast_to(through, points.shape)
        d = points - centre
        sums = [
            np.bincount(self.ids, d[:, i] * d[:, j], minlength=self.count)
            for i, j in ((0, 0), (1, 1), (0, 1))
        ]
        direction = 0.5 * np.arctan2(2 * sums[2], sums[0] - sums[1])[self.ids]
        return d[:, 1] * np.cos(direction) - d[:, 0] * np.sin(direction)


def fit_lens(posts: list[np.ndarray], tape: list[np.ndarray], width: int, height: int) -> LensFit:
    """Pixel-level radial distortion that makes the posts straight lines through one
    vanishing point below the image centre and the straight tape straight."""
    if len(posts) < 20:
        raise ValueError(f"only {len(posts)} vertical edges above the floor: cannot fit the lens")
    post_chains, tape_chains = _Chains(posts), _Chains(tape)
    nominal = CameraModel(width=width, height=height, fov_deg=60.0, k1=0.0, k2=0.0)
    f2 = nominal.focal_px**2
    centre = nominal.principal_point

    def residuals(x: np.ndarray) -> np.ndarray:
        c1, down_row = x[0] * 1e-5, x[1] * 100.0
        try:
            camera = nominal.replace(k1=c1 * f2, k2=0.0)
        except ValueError:  # the image would fold over: as bad as it gets
            return np.full(len(post_chains.points) + len(tape_chains.points), 10.0)
        out = []
        for chains, through in ((post_chains, np.array([centre[0], down_row])), (tape_chains, None)):
            if chains.count:
                pinhole = undistort_points(camera, chains.points)
                to_lens = np.linalg.norm(chains.points - centre, axis=1).clip(1) / np.linalg.norm(
                    pinhole - centre, axis=1
                ).clip(1)
                out.append(chains.line_residuals(pinhole, through) * to_lens)
        return np.concatenate(out)

    starts = ([0.0, 3.0], [-1.0, 6.0], [-0.5, 6.0])
    fits = [least_squares(residuals, start, loss="soft_l1", f_scale=0.5) for start in starts]
    best = min(fits, key=lambda fit: fit.cost)  # the first of equals, as before
    c1, down = best.x * (1e-5, 100.0)
    return LensFit(
        c1=float(c1),
        c2=0.0,
        down_row=float(down),
        residual_px=float(np.median(np.abs(best.fun))),
        pinhole_residual_px=float(np.median(np.abs(residuals(np.array([0.0, best.x[1]]))))),
    )


def _pixel_lens_camera(lens: LensFit, width: int, height: int) -> CameraModel:
    """A camera whose undistortion is the fitted pixel-level lens (any focal length will do)."""
    nominal = CameraModel(width=width, height=height, fov_deg=60.0, k1=0.0, k2=0.0)
    f2 = nominal.focal_px**2
    return nominal.replace(k1=lens.c1 * f2, k2=lens.c2 * f2 * f2)


# ------------------------------------------------------------------------------ 2. horizon
def horizon_row(frames: np.ndarray, lens: LensFit, floor_top: int) -> float:
    """Median pinhole row where the yellow centre line (left) meets the white edge line
    (right) on the straights."""
    height, width = frames.shape[1:3]
    camera = _pixel_lens_camera(lens, width, height)
    rows = []
    for frame in frames:
        yellow = tape_masks(frame).yellow
        yellow[:floor_top] = False
        yellow[:, int(0.56 * width) :] = False
        v, u = np.nonzero(yellow)
        whites = [c for c in white_line_chains(frame, floor_top) if c[:, 0].mean() > width / 2]
        if len(u) < 40 or not whites:
            continue
        left = _fit_line(undistort_points(camera, np.column_stack([u, v]).astype(np.float64)), robust=True)
        right = _fit_line(undistort_points(camera, max(whites, key=len)), robust=False)
        meet = _intersection(left, right)
        if meet is not None:
            rows.append(meet[1])
    if len(rows) < 10:
        raise ValueError(f"the lane lines meet in only {len(rows)} straight frames: cannot find the horizon")
    return float(np.median(rows))


def _fit_line(points: np.ndarray, robust: bool) -> np.ndarray:
    """(dx, dy, x0, y0) of the line through points."""
    method = cv2.DIST_HUBER if robust else cv2.DIST_L2
    return cv2.fitLine(points.astype(np.float32), method, 0, 0.01, 0.01).ravel().astype(np.float64)


def _intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    matrix = np.array([[a[0], -b[0]], [a[1], -b[1]]])
    if abs(np.linalg.det(matrix)) < 1e-6:
        return None
    t = np.linalg.solve(matrix, b[2:] - a[2:])
    return a[2:] + t[0] * a[:2]


# ------------------------------------------------------------------------------ 4. lane geometry
def lane_slopes(frames: np.ndarray, camera: CameraModel, floor_top: int) -> dict[str, float]:
    """Medians over the straights of the pinhole slopes du/dv of the tape edges: the lane
    (yellow centre to white centre), the two tape widths, and where the camera drives."""
    height, width = frames.shape[1:3]
    rows = range(floor_top, height - 2)
    found = []
    for frame in frames:
        masks = tape_masks(frame)
        yellow = _run_edges(masks.yellow, rows, 0, int(0.6 * width), max_width=int(0.28 * width))
        white = _run_edges(masks.white, rows, int(0.44 * width), width, max_width=int(0.16 * width))
        if min(len(yellow[0]), len(white[0])) < 12:
            continue
        slopes = [_slope(undistort_points(camera, edge)) for edge in (*yellow, *white)]
        found.append(slopes)
    if len(found) < 10:
        raise ValueError(f"both lane lines are visible in only {len(found)} straight frames")
    yellow_left, yellow_right, white_left, white_right = np.array(found).T
    yellow_centre, white_centre = (yellow_left + yellow_right) / 2, (white_left + white_right) / 2
    return {
        "lane": float(np.median(white_centre - yellow_centre)),
        "yellow": float(np.median(yellow_right - yellow_left)),
        "white": float(np.median(white_right - white_left)),
        "position": float(np.median(-yellow_centre / (white_centre - yellow_centre))),
    }


def _run_edges(
    mask: np.ndarray, rows: range, first: int, last: int, max_width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Left and right edge points (N, 2) of the widest run per row within columns
    [first, last), skipping runs that touch the image border or are too wide."""
    width = mask.shape[1]
    left, right = [], []
    window = np.zeros_like(mask)
    window[:, first:last] = mask[:, first:last]
    for row in rows:
        runs = row_runs(window, row)
        if not runs:
            continue
        start, end = max(runs, key=lambda run: run[1] - run[0])
        if end - start + 1 > max_width or start <= 1 or end >= width - 2:
            continue
        left.append((start - 0.5, row))
        right.append((end + 0.5, row))
    return np.array(left, dtype=np.float64).reshape(-1, 2), np.array(right, dtype=np.float64).reshape(-1, 2)


def _slope(points: np.ndarray) -> float:
    """du/dv of the least-squares line u = a + b v."""
    design = np.column_stack([np.ones(len(points)), points[:, 1]])
    return float(np.linalg.lstsq(design, points[:, 0], rcond=None)[0][1])


# ------------------------------------------------------------------------------ 5. steering
def room_shifts(frames: np.ndarray, lens: LensFit) -> np.ndarray:
    """Sideways shift (pinhole pixels, + = right: the car turned left) of the room between
    each frame and the next (N - 1,): phase correlation of the undistorted frames' rows
    7-27 % of the height, middle half of the width. 0 where two frames are the same picture;
    failed correlations (> 8 % of the width) are interpolated from their neighbours."""
    height, width = frames.shape[1:3]
    camera = _pixel_lens_camera(lens, width, height)
    rows, columns = slice(int(0.07 * height), int(0.27 * height)), slice(width // 4, 3 * width // 4)
    grey = [
        cv2.cvtColor(undistort_image(camera, f), cv2.COLOR_RGB2GRAY)[rows, columns].astype(np.float32)
        for f in frames
    ]
    window = cv2.createHanningWindow((columns.stop - columns.start, rows.stop - rows.start), cv2.CV_32F)
    shifts = np.array([_shift(grey[t], grey[t + 1], window) for t in range(len(frames) - 1)])
    failed = np.abs(shifts) > 0.08 * width
    index = np.arange(len(shifts))
    shifts[failed] = np.interp(index[failed], index[~failed], shifts[~failed])
    return shifts


def _shift(before: np.ndarray, after: np.ndarray, window: np.ndarray) -> float:
    if np.abs(after - before).mean() < 1.0:  # the camera delivered the same picture twice
        return 0.0
    (dx, _), _ = cv2.phaseCorrelate(before, after, window)
    return float(dx)


def focal_over_cos_pitch(frames: np.ndarray, shifts: np.ndarray, lens: LensFit, min_lap: int = 250) -> float:
    """f / cos(pitch) in pixels per radian: the room's shift summed over each lap (from a
    frame to the frame that looks most like it >= `min_lap` frames later, if they look
    alike), plus what is left between those two, over 2 pi. Median over the laps."""
    height, width = frames.shape[1:3]
    thumbs = np.stack(
        [
            cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (32, 24), interpolation=cv2.INTER_AREA).ravel()
            for f in frames
        ]
    ).astype(np.float64)
    thumbs = (thumbs - thumbs.mean(axis=1, keepdims=True)) / thumbs.std(axis=1, keepdims=True).clip(1e-6)
    camera = _pixel_lens_camera(lens, width, height)
    rows, columns = slice(int(0.07 * height), int(0.27 * height)), slice(width // 4, 3 * width // 4)
    window = cv2.createHanningWindow((columns.stop - columns.start, rows.stop - rows.start), cv2.CV_32F)

    def room(i: int) -> np.ndarray:
        return cv2.cvtColor(undistort_image(camera, frames[i]), cv2.COLOR_RGB2GRAY)[rows, columns].astype(
            np.float32
        )

    scales = []
    for start in range(0, len(frames) - min_lap, 25):
        later = np.arange(start + min_lap, len(frames))
        similarity = thumbs[later] @ thumbs[start] / thumbs.shape[1]
        end = int(later[np.argmax(similarity)])
        if similarity.max() < 0.8:
            continue
        left_over = _shift(room(start), room(end), window)
        scales.append(abs(shifts[start:end].sum() - left_over) / (2 * math.pi))
    if len(scales) < 3:
        raise ValueError(f"the tub passes the same place again only {len(scales)} times: drive >= 1.5 laps")
    return float(np.median(scales))


def dash_step(frames: np.ndarray, angles: np.ndarray, camera: CameraModel, floor_top: int) -> float:
    """Median metres driven per frame on the straights: how far each yellow dash (on the
    floor, 0.3-1.6 m ahead) came closer since the frame before."""
    to_floor = camera.image_to_ground()

    def floor_points(frame: np.ndarray) -> np.ndarray:
        centres = yellow_dash_centres(frame, floor_top)
        if len(centres) == 0:
            return centres
        pinhole = np.column_stack([undistort_points(camera, centres), np.ones(len(centres))]) @ to_floor.T
        points = pinhole[:, :2] / pinhole[:, 2:3]
        return points[(points[:, 0] > 0.3) & (points[:, 0] < 1.6)]

    found: list[float] = []
    calm = np.abs(angles) <= STRAIGHT_ANGLE
    before = floor_points(frames[0])
    for t in range(1, len(frames)):
        after = floor_points(frames[t])
        if calm[t - 1] and len(before) >= 2:
            for point in after:
                ahead = before[:, 0] - point[0]
                near = (ahead >= 0) & (ahead < 0.3) & (np.abs(before[:, 1] - point[1]) < 0.08)
                if near.any():
                    found.append(ahead[near].min())
        before = after
    steps = np.array(found)
    steps = steps[steps > 0.01]  # a repeated frame: no motion
    if len(steps) < 30:
        raise ValueError(f"only {len(steps)} yellow dash steps on the straights: cannot measure the speed")
    return float(np.median(steps))


def steering_scale(yaw: np.ndarray, angles: np.ndarray, step_m: float, max_lag: int = 10) -> dict:
    """Curvature per unit of angle: the least-squares slope of the yaw per frame against the
    angle `lag` frames earlier (the lag that correlates best), over the metres per frame."""
    best: tuple[int, float, float, np.ndarray, np.ndarray] | None = None
    for lag in range(max_lag + 1):
        command = angles[: len(yaw) - lag]
        turn = yaw[lag:]
        ok = np.isfinite(turn)
        correlation = float(np.corrcoef(command[ok], turn[ok])[0, 1])
        if best is None or -correlation > -best[1]:
            slope = float(np.sum(command[ok] * turn[ok]) / np.sum(command[ok] ** 2))
            best = (lag, correlation, slope, command, turn)
    if best is None:
        raise ValueError(f"max_lag must be at least 0, got {max_lag}")
    lag, correlation, slope, command, turn = best
    curvature = -slope / step_m  # angle + is right: the heading turns clockwise
    turning = np.isfinite(turn) & (np.abs(command) >= 0.4)
    radii = step_m / np.abs(turn[turning]).clip(1e-4)
    return {
        "lag": lag,
        "correlation": correlation,
        "curvature_per_angle": curvature,
        "radius_m": tuple(round(float(r), 2) for r in np.percentile(radii, [10, 50, 90])),
    }


# ------------------------------------------------------------------------------ 6. look
def floor_look(frames: np.ndarray, camera: CameraModel, sample: int = 2) -> dict:
    """Floor and room colour, streaks, exposure and tape widths in pixels (every
    `sample`-th frame)."""
    height, width = camera.height, camera.width
    horizon = math.ceil(_lens_horizon_row(camera))
    floor_rows = slice(min(horizon + int(0.08 * height), height - 1), height)
    tape_rows = range(int(80 / 120 * height), int(110 / 120 * height))
    colours, brightness, streaks, rooms = [], [], [], []
    white_px: list[int] = []
    yellow_px: list[int] = []
    for frame in frames[::sample]:
        masks = tape_masks(frame)
        tape = cv2.dilate((masks.yellow | masks.white).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        floor = frame[floor_rows][~tape[floor_rows]]
        if len(floor) < 100:
            continue
        colours.append(np.median(floor, axis=0))
        value = floor.max(axis=1).astype(np.float64)
        brightness.append(np.median(value))
        streaks.append(np.mean(value >= np.median(value) + 25))
        rooms.append(np.median(frame[: max(horizon - 2, 1)].reshape(-1, 3), axis=0))
        for mask, widths in ((masks.white, white_px), (masks.yellow, yellow_px)):
            for row in tape_rows:
                widths.extend(
                    end - start + 1 for start, end in row_runs(mask, row) if start > 0 and end < width - 1
                )
    floor_colours, floor_brightness = np.array(colours), np.array(brightness)

    def rgb(values: np.ndarray) -> tuple[int, int, int]:
        red, green, blue = (round(float(v)) for v in values)
        return red, green, blue

    return {
        "floor_rgb": rgb(np.median(floor_colours, axis=0)),
        "floor_rgb_p10": rgb(np.percentile(floor_colours, 10, axis=0)),
        "floor_rgb_p90": rgb(np.percentile(floor_colours, 90, axis=0)),
        "streak_share": round(float(np.median(streaks)), 3),
        "exposure_range": tuple(
            round(float(p / np.median(floor_brightness)), 3) for p in np.percentile(floor_brightness, [5, 95])
        ),
        "room_rgb": rgb(np.median(np.array(rooms), axis=0)),
        "white_px": _percentiles([w for w in white_px if w >= 3]),
        "yellow_px": _percentiles([w for w in yellow_px if w >= 3]),
    }


def _lens_horizon_row(camera: CameraModel) -> float:
    """Row where the horizon crosses the image centre in the lens frame."""
    return float(distort_points(camera, np.array([[camera.principal_point[0], camera.horizon_row]]))[0, 1])


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return (math.nan, math.nan, math.nan)
    low, median, high = (round(float(p), 1) for p in np.percentile(values, [10, 50, 90]))
    return low, median, high
