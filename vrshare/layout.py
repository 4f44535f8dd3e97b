"""Names, shapes, dtypes and units of the bank buffers the built-in parts share.

This is the contract between stages, the renderer and the targets: each entry
names its one writer. Conventions everywhere:

* Coordinates follow OpenXR: right-handed, +X right, +Y up, -Z forward, metres.
* A pose is 7 floats ``[px, py, pz, qx, qy, qz, qw]``: position (m) and a unit
  quaternion (scalar last, as scipy and OpenXR store it).
* Matrices are stored row-major as NumPy/CuPy arrays and act on column vectors
  (``p_world = M @ [x, y, z, 1]``). Uploading one to GL as-is gives the transposed
  (column-major) layout GLSL expects, so ``mat4`` data in GLSL is ``M`` itself.
* Projection matrices map to OpenGL clip space (NDC z in [-1, 1]).
* Times are seconds; external pose times share the frame clock's timeline.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# -- tracking (writer: the "tracking" stage) --------------------------------------
HEAD_POSE = "head_pose"  # (7,) float32, head pose in stage space
DEVICE_POSES = "device_poses"  # (3, 7) float32, rows: head, left controller, right controller
DEVICE_VALID = "device_valid"  # (3,) float32, 1.0 tracked (or held within limits), 0.0 lost
EYE_VIEW = "eye_view"  # (2, 4, 4) float32, world -> eye (left, right), row-major
EYE_PROJ = "eye_proj"  # (2, 4, 4) float32, eye -> clip (left, right), row-major
DEVICES = ("head", "left", "right")
POSE_SIZE = 7
# param, adapted in place by the tracking stage's learned predictor: (2, 2K) float64, rows
# position / orientation, one weight vector shared by every device and axis (see
# vrshare.stages.tracking.learned)
PREDICTOR_WEIGHTS = "predictor_weights"

# -- written by a target each frame (declared as pipeline sources) ------------------
# Poses the target itself senses: the desktop window's mouse/keyboard head, or the
# OpenXR runtime's head/controllers located at the frame's predicted display time.
TARGET_POSES = "target_poses"  # (3, 9) float64: pose (7), time (s), valid (0/1)
TARGET_FOV = "target_fov"  # (2, 4) float64: per eye angles left, right, up, down (rad)

# -- controllers (writer: the display target; declared as pipeline sources) ----------
# Per hand (row 0 left, row 1 right), one column per CONTROLLER_COMPONENTS entry: values
# 0..1 (triggers, squeezes, clicks and touches as 0/1), axes -1..1 (+x right, +y up).
# A component the hand's interaction profile lacks reads 0 and is 0 in CONTROLLER_BOUND.
CONTROLLER_STATE = "controller_state"  # (2, C) float32
CONTROLLER_BOUND = "controller_bound"  # (2, C) float32: 1.0 where the profile has it bound
# Edges of this frame, so that a stage need not keep state: [hand, 0 pressed / 1 released,
# component], 1.0 where the component crossed PRESS_THRESHOLD since the previous frame
CONTROLLER_EDGES = "controller_edges"  # (2, 2, C) float32; axes columns stay 0
CONTROLLER_TIME = "controller_time"  # (2,) float64: time the input was sampled for (s), frame
CONTROLLER_COMPONENTS = (
    "trigger", "squeeze",  # values 0..1
    "thumbstick_x", "thumbstick_y", "thumbstick_click",
    "trackpad_x", "trackpad_y", "trackpad_click",
    "primary", "secondary",  # A/B on the right hand, X/Y on the left (clicks)
    "menu",  # menu click (the simple controller's menu, Touch's left menu)
    "trigger_touch", "thumbstick_touch", "trackpad_touch", "primary_touch", "secondary_touch",
)
CONTROLLER_AXES = ("thumbstick_x", "thumbstick_y", "trackpad_x", "trackpad_y")  # no edges
PRESS_THRESHOLD = 0.5  # a value at or above it counts as pressed (analog triggers too)
# Haptics, an output the target reads after the stages (writer: one stage of the run,
# e.g. "interaction"): per hand amplitude 0..1, duration (s; 0: the runtime's shortest
# pulse), frequency (Hz; 0: the runtime's default), request number. The target sends a
# row when its request number changes: amplitude > 0 starts a pulse, amplitude 0 stops.
HAPTICS = "haptics"  # (2, 4) float32
HAPTIC_FIELDS = ("amplitude", "duration", "frequency", "request")
# Objects a stage places (writer: the "interaction" stage; scene_motion reads it when
# present and writes these rows into OBJECT_MODEL / OBJECT_BOUNDS after its own):
# rows object index, then its object -> world matrix (16, row-major)
OBJECT_PLACED = "object_placed"  # (K, 17) float32

# -- camera frames (writer: the virtual camera, vrshare.render.camera; declared as sources) --
CAMERA_IMAGE = "camera_image"  # (H, W) uint8 grey, top row first
CAMERA_EXPOSURE = "camera_exposure"  # (2,) float64: mid-exposure time (s), exposure number
#                                      (-1: none yet)
CAMERA_MATRIX = "camera_matrix"  # (3, 3) float64 intrinsics K (px, OpenCV convention)

# -- optical tracking (writer: the "optical_tracking" stage) -------------------------
OPTICAL_POSES = "optical_poses"  # (3, 7) float32: head, left, right poses from markers (m)
OPTICAL_VALID = "optical_valid"  # (3,) float32: 1.0 seen in the newest frame, 0.0 held or never
OPTICAL_TIME = "optical_time"  # (3,) float64: exposure time (s) of each row's newest solve
OPTICAL_ERROR = "optical_error"  # (3,) float32: RMS reprojection error of that solve (px)
# param registered by each optical stage as "<stage name>/optical_markers": the marker
# layout, (N, 14) float32 rows id, rig (-1 room, else device row), 4 corners x xyz (m);
# the same markers -> one buffer (see vrshare.stages.optical.markers)
OPTICAL_MARKERS = "optical_markers"

# -- scene objects (writer: the "scene_motion" stage; read by filters and audio) ----
OBJECT_MODEL = "object_model"  # (N, 4, 4) float32, object -> world, row-major
OBJECT_BOUNDS = "object_bounds"  # (N, 4) float32, world bounding sphere: centre xyz, radius (m)
# Per-object constants are param buffers registered from the scene:
OBJECT_MESH = "object_mesh"  # (N,) int32, index into the scene's mesh table
OBJECT_COLOR = "object_color"  # (N, 4) float32, linear RGBA multiplier
OBJECT_IMPORTANCE = "object_importance"  # (N,) float32, >= 0
MESH_LOD_DRAW = "mesh_lod_draw"  # (M, L) int32, draw slot of mesh m at LOD l, -1 past the last
MESH_LOD_DISTANCE = "mesh_lod_distance"  # (M, L) float32, distance (m) from which LOD l is used


def lod_tables(levels: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """MESH_LOD_DRAW and MESH_LOD_DISTANCE of meshes given each one's LOD start distances
    (m): draw slots are numbered mesh by mesh, level by level (the renderer's order)."""
    width = max((len(d) for d in levels), default=1)
    draw = np.full((len(levels), width), -1, np.int32)
    distance = np.full((len(levels), width), np.inf, np.float32)
    slot = 0
    for m, dists in enumerate(levels):
        draw[m, : len(dists)] = np.arange(slot, slot + len(dists))
        distance[m, : len(dists)] = dists
        slot += len(dists)
    return draw, distance


# -- what the renderer draws (writer: "scene_filter", or "passthrough" without one) --
INSTANCES = "instances"  # (capacity, 20) float32: model matrix as GL column-major mat4 (16)
#                          followed by linear RGBA (4); grouped in contiguous ranges per draw slot
DRAW_RANGES = "draw_ranges"  # (D, 2) int32: [first, count] into instances per draw slot
INSTANCE_FLOATS = 20

# -- audio (writer: the "audio" stage) ----------------------------------------------
AUDIO_BLOCK = "audio_block"  # (2, block) float32, the last rendered stereo block
# Param registered by each audio stage as "<stage name>/hrtf_spectra": HRTF filter spectra on
# the 5-degree direction grid, (2664, 2, fft/2 + 1) complex64; the same HRTF -> one buffer.
HRTF_SPECTRA = "hrtf_spectra"
