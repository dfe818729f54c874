"""What a closed-loop replay score means: the model beside two reference pilots on the
same replay, a verdict, and one sentence of advice.

An autonomy of 0.6 says little on its own: the same replay may be easy (a straight
stretch, where a pilot that never steers scores well too) or broken (a path or camera
so wrong that even a lane-marking follower needs help). So every replay also drives
- `straight`: a pilot that never steers (`StraightPilot`): where it scores high, the
  stretch cannot tell models apart;
- `lane_follower`: the classical lane-marking follower (`YellowLinePilot`, set for the
  lane the driver kept): where it scores low, the replay itself is in doubt.
"""

from __future__ import annotations

from typing import Any

from car.contracts import FramePolicy
from evaluation.reference import StraightPilot, YellowLinePilot, lane_offset_m
from evaluation.replay import ClosedLoopConfig, ReplayTrack, closed_loop
from sim.camera import CameraModel
from sim.vehicle import VehicleModel

DRIVES = 0.9  # autonomy from which a pilot "drives" (the car goals' figure)
FAILS = 0.5  # autonomy below which it "fails": a person drives more than it does
REFERENCE_FIGURES = ("autonomy", "interventions", "mean_offset", "max_offset")


def verdict(autonomy: float) -> str:
    """ "drives", "needs help" or "fails": the words the simulator and replay must agree on."""
    return "drives" if autonomy >= DRIVES else "fails" if autonomy < FAILS else "needs help"


def reference_pilots(track: ReplayTrack, camera: CameraModel, every: int = 10) -> dict[str, FramePolicy]:
    """The two reference pilots for this replay; the follower keeps the lane the driver kept
    (measured on every `every`-th replayed frame) and steers as the recorded car did."""
    frames = (track.tub.load_image(track.records[p]) for p in track.path.positions[::every])
    offset = lane_offset_m(frames, camera)
    return {
        "straight": StraightPilot(),
        "lane_follower": YellowLinePilot(offset_m=offset, camera=camera, vehicle=track.path.steering),
    }


def reference_scores(
    track: ReplayTrack,
    camera: CameraModel,
    vehicle: VehicleModel,
    config: ClosedLoopConfig,
    rate_hz: float,
) -> dict[str, dict[str, Any]]:
    """Each reference pilot's figures on the same replay (JSON-ready)."""
    scores = {}
    for name, pilot in reference_pilots(track, camera).items():
        metrics = closed_loop(track, pilot, camera, vehicle, config, rate_hz).metrics()
        scores[name] = {key: metrics[key] for key in REFERENCE_FIGURES}
        if isinstance(pilot, YellowLinePilot):
            scores[name]["lane_offset_m"] = round(pilot.offset_m, 3)
    return scores


def advice(autonomy: float, reference: dict[str, dict[str, Any]]) -> str:
    """One sentence: what the model's autonomy means beside the references, and what to do."""
    straight, follower = reference["straight"]["autonomy"], reference["lane_follower"]["autonomy"]
    if follower < FAILS and autonomy >= DRIVES > straight:
        return (
            f"The model drives this replay ({autonomy:.2f}) where never steering fails ({straight:.2f}); "
            f"the lane-marking follower needs help here ({follower:.2f}), a limit of that classical "
            "pilot (watch its video: where the driver cut a corner, or it lost the line): try the "
            "model on the car, at low speed first."
        )
    if follower < FAILS:
        return (
            f"Even the lane-marking follower needs help on this replay (autonomy {follower:.2f}), "
            "so it cannot judge the model: check the camera settings (--config) and the path "
            "line above, or replay a stretch where the lane markings are in view."
        )
    if straight >= DRIVES:
        return (
            f"A pilot that never steers scores {straight:.2f} here: this stretch is too straight to "
            "tell models apart; replay a stretch with curves (--records)."
        )
    if autonomy <= straight + 0.1:
        return (
            f"The model scores no better than never steering ({autonomy:.2f} vs {straight:.2f}): it "
            "has not learned to steer; check the labels and train longer or on more laps."
        )
    if autonomy >= min(DRIVES, follower - 0.05):
        return (
            f"The model drives this replay as well as the lane-marking follower ({autonomy:.2f} vs "
            f"{follower:.2f}): try it on the car, at low speed first."
        )
    return (
        f"The model steers ({autonomy:.2f}, never steering {straight:.2f}) but needs help where the "
        f"lane follower does not ({follower:.2f}): watch the video for where, record more laps of "
        "those stretches and train again."
    )
