"""The built-in simulator: tracks, car physics, camera, expert driver.

Pure NumPy/OpenCV, thousands of frames per second on one core, deterministic for a seed.

    from sim import Track, Simulation
    from sim.parts import ExpertPilot
    from evaluation.scoring import score

    track = Track.from_seed(7)                    # or Track.from_seed(7, preset="warehouse"), Track.load(...)
    sim = Simulation(track)                       # 20 Hz, 160x120 RGB camera
    obs = sim.reset()                             # obs.image: (120, 160, 3) uint8
    obs = sim.step(angle=0.1, throttle=0.3)       # angle + = right, both in [-1, 1]
    obs.cte, obs.progress, obs.laps, obs.intervened, sim.interventions, sim.lap_times

    result = score(ExpertPilot(sim), sim, laps=2)           # dict: laps, autonomy, ...
    result = score(Pilot.load("models/fast"), sim, laps=5)  # any FramePolicy: run(frame) -> (angle, throttle)
    record_tub(sim, "data/sim7", laps=2, noise=0.3)         # expert laps -> tub with sim/* pose

Scoring and recording run the car's own loop (`car.vehicle.build_car`: mixer, throttle
limiter, failsafe, recorder) on a stepped clock, with the simulator's loop parts
(`sim.parts`) as camera and actuator; `sim.car.simulated_car` is the same car in real
time, driven from the web page (`tubcar drive --sim`).

The camera's textures are built on the first frame (about a second); a real-time loop
should call `sim.render()` once before it starts. Frames are reused buffers: copy to keep.

The pieces, for those who need only one:
    Track / TrackStyle / TrackPoint    centre line, width, look; `locate(x, y)` -> CTE, s
    sim.presets                        `mixed` and `warehouse`: shape, look, camera effects, driver
    VehicleModel / VehicleState        kinematic bicycle; `model.step(state, angle, throttle, dt)`
    CameraModel                        mounting and lens (defaults: the car config's [camera]);
                                       pinhole geometry: `intrinsics()`, `ground_to_image(x, y, yaw)`,
                                       `image_to_ground(...)`, `project(points)`, `horizon_row`
    sim.lens                           the lens: distort/undistort points and images
    view_change_homography             warp a frame's floor to a nearby pose (replay)
    Renderer / ImageEffects            camera view of a track; optional noise, blur, exposure
    ExpertDriver / ExpertCommand       pure pursuit in a lane; `noise` perturbs the car, not the label
    parts: SimCamera, SimActuator,     the simulator as loop parts; the expert as a controller
      ExpertController, ExpertPilot      (recording) or as a FramePolicy (scoring)
    record_tub                         expert laps -> a tub (car/tub.py) with the sim pose
    sim.calibrate                      measure a real tub: lens, camera, lanes, steering scale, look
"""

from sim.camera import CameraModel, intrinsics, view_change_homography
from sim.effects import ImageEffects
from sim.expert import ExpertCommand, ExpertDriver
from sim.recording import record_tub
from sim.render import Renderer
from sim.simulation import DEFAULT_DT, Observation, Simulation
from sim.style import TrackStyle
from sim.track import Track, TrackPoint
from sim.vehicle import VehicleModel, VehicleState

__all__ = [
    "DEFAULT_DT",
    "CameraModel",
    "ExpertCommand",
    "ExpertDriver",
    "ImageEffects",
    "Observation",
    "Renderer",
    "Simulation",
    "Track",
    "TrackPoint",
    "TrackStyle",
    "VehicleModel",
    "VehicleState",
    "intrinsics",
    "record_tub",
    "view_change_homography",
]
