"""The names of the drive loop's channels, in one place.

Parts read and write these names; tub records use the same keys, so a recorded
record is a snapshot of the loop's channels. Import the constants rather than
typing the strings: a typo then fails at import, not silently at run time.
"""

# Camera and the human driver (also the tub's label keys, as in Donkeycar).
CAMERA_IMAGE = "cam/image_array"
CAMERA_TIMESTAMP = "cam/timestamp"
USER_ANGLE = "user/angle"
USER_THROTTLE = "user/throttle"
USER_MODE = "user/mode"
RECORDING = "recording"
THROTTLE_CAP = "user/throttle_cap"
CONTROLLER_TIMESTAMP = "user/timestamp"  # time.monotonic() of the last valid controller message

# The autopilot's proposal, and what the mixer finally sends to the actuators.
PILOT_ANGLE = "pilot/angle"
PILOT_THROTTLE = "pilot/throttle"
ANGLE = "angle"
THROTTLE = "throttle"
FAILSAFE = "failsafe"  # why the throttle was forced to neutral this tick, "" when it was not

# Tub keys that are not channels: the recorder writes what the car did (ANGLE, THROTTLE,
# after the cap, the failsafe and the limiter) under Donkeycar's label keys USER_ANGLE and
# USER_THROTTLE, and the human's stick (the channels USER_ANGLE, USER_THROTTLE) under these.
STICK_ANGLE = "user/stick_angle"
STICK_THROTTLE = "user/stick_throttle"

# Simulator pose, recorded beside the labels in simulated tubs.
SIM_X = "sim/x"
SIM_Y = "sim/y"
SIM_YAW = "sim/yaw"
SIM_SPEED = "sim/speed"
SIM_CTE = "sim/cte"
SIM_TRACK = "sim/track"

# Driving modes: who steers and who sets the throttle.
MODE_USER = "user"  # human steers and throttles
MODE_LOCAL_ANGLE = "local_angle"  # pilot steers, human throttles
MODE_LOCAL = "local"  # pilot steers and throttles
MODES = (MODE_USER, MODE_LOCAL_ANGLE, MODE_LOCAL)
