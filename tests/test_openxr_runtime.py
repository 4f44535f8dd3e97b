"""xrsim itself: it must refuse what a real runtime may silently accept, and the core
validation layer must report parameter errors into the file the tests read; otherwise
the end-to-end tests in test_openxr.py could pass for the wrong reason."""

from __future__ import annotations

import json

import pytest
import xrsimkit as kit


@pytest.fixture(scope="session")
def manifest():
    return kit.build_xrsim()


CALL_ORDER = """
import json
import xr
from vrshare.targets.openxr import OpenXRError, XrSession, call

results = {}

def expect(name, fn, *args):
    try:
        call(name, fn, *args)
        results[name] = "accepted"
    except OpenXRError as exc:
        results[name] = exc.result

OPAQUE = xr.EnvironmentBlendMode.OPAQUE
with XrSession(None) as s:  # XR_MND_headless: no graphics
    q = s.session
    expect("wait before the session runs", xr.wait_frame, q)
    s.poll_events()  # IDLE, READY -> xrBeginSession
    expect("end session while running", xr.end_session, q)
    expect("begin without wait", xr.begin_frame, q)
    first = xr.wait_frame(q)
    expect("wait twice", xr.wait_frame, q)
    xr.begin_frame(q)
    expect("end with an unpredicted time", xr.end_frame, q,
           xr.FrameEndInfo(first.predicted_display_time + 1, OPAQUE))
    expect("end with additive blending", xr.end_frame, q,
           xr.FrameEndInfo(first.predicted_display_time, xr.EnvironmentBlendMode.ADDITIVE))
    xr.end_frame(q, xr.FrameEndInfo(first.predicted_display_time, OPAQUE))
    expect("end without begin", xr.end_frame, q,
           xr.FrameEndInfo(first.predicted_display_time, OPAQUE))
    second = xr.wait_frame(q)
    xr.begin_frame(q)
    expect("end with the previous frame's time", xr.end_frame, q,
           xr.FrameEndInfo(first.predicted_display_time, OPAQUE))
    xr.end_frame(q, xr.FrameEndInfo(second.predicted_display_time, OPAQUE))
    bad = xr.ReferenceSpaceCreateInfo(xr.ReferenceSpaceType.LOCAL)
    bad.type = xr.StructureType.SESSION_BEGIN_INFO
    expect("wrong structure type", xr.create_reference_space, q, bad)
    assert s.running
print("RESULTS " + json.dumps(results))
print("ENDED", s.ended)
"""


def test_call_order_and_frame_times_are_enforced(manifest, tmp_path):
    done = kit.run_code(CALL_ORDER, kit.xr_env(manifest, tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULTS "))
    results = json.loads(line.removeprefix("RESULTS "))
    assert results == {
        "wait before the session runs": "XR_ERROR_SESSION_NOT_RUNNING",
        "end session while running": "XR_ERROR_SESSION_NOT_STOPPING",
        "begin without wait": "XR_ERROR_CALL_ORDER_INVALID",
        "wait twice": "XR_ERROR_CALL_ORDER_INVALID",
        "end with an unpredicted time": "XR_ERROR_TIME_INVALID",
        "end with additive blending": "XR_ERROR_ENVIRONMENT_BLEND_MODE_UNSUPPORTED",
        "end without begin": "XR_ERROR_CALL_ORDER_INVALID",
        "end with the previous frame's time": "XR_ERROR_TIME_INVALID",
        "wrong structure type": "XR_ERROR_VALIDATION_FAILURE",
    }
    assert "ENDED exiting" in done.stdout  # close() requested exit and reached EXITING
    # every refusal is logged with its reason by the runtime ...
    errors = kit.sim_errors(tmp_path)
    assert any("xrBeginFrame without a preceding xrWaitFrame" in e for e in errors)
    assert any("not a time xrWaitFrame predicted" in e for e in errors)
    assert any("another frame's predicted time" in e for e in errors)
    # ... and the validation layer caught the parameter error before the runtime saw it
    problems = kit.validation_problems(tmp_path)
    assert problems and all("xrCreateReferenceSpace" in p for p in problems)
    assert not any("xrCreateReferenceSpace" in e for e in errors)


LAYERS = """
import ctypes
import json
import moderngl
import xr
from vrshare.targets.openxr import OpenXRError, XrSession, call
from vrshare.targets.openxr.gl import EGLBinding

ctx = moderngl.create_standalone_context(backend="egl", require=430)
results = {}

def end(s, frame, layer):
    try:
        call("end", xr.end_frame, s.session, xr.FrameEndInfo(
            frame.display_time, xr.EnvironmentBlendMode.OPAQUE, layers=[ctypes.byref(layer)]))
        return "accepted"
    except OpenXRError as exc:
        return exc.result

def layer(s, frame, width=None):
    views = []
    for eye, sc in enumerate(s.swapchains):
        w, h = sc.size
        views.append(xr.CompositionLayerProjectionView(
            pose=frame.views[eye].pose, fov=frame.views[eye].fov,
            sub_image=xr.SwapchainSubImage(swapchain=sc.handle, image_rect=xr.Rect2Di(
                extent=xr.Extent2Di(width or w, h)))))
    return xr.CompositionLayerProjection(space=s.space, views=views)

with XrSession(ctx, binding=EGLBinding()) as s:
    frames = s.frames()
    frame = next(f for f in frames if f.should_render)
    frame.locate()
    fbos = frame.acquire()  # images acquired, not released
    proj = layer(s, frame)
    results["unreleased image"] = end(s, frame, proj)
    for sc in s.swapchains:
        xr.release_swapchain_image(sc.handle)
    results["rect outside the image"] = end(s, frame, layer(s, frame, width=10_000))
    proj = layer(s, frame)
    results["good layer"] = end(s, frame, proj)
    frame.ended = True
    other = moderngl.create_standalone_context(backend="egl", require=430)  # now current
    frame = next(frames)
    try:
        frame.acquire()
        results["acquire in another context"] = "accepted"
    except OpenXRError as exc:
        results["acquire in another context"] = exc.result
    s.binding.restore()
    frame.ended = True
    xr.end_frame(s.session, xr.FrameEndInfo(frame.display_time, xr.EnvironmentBlendMode.OPAQUE))
    frames.close()
print("RESULTS " + json.dumps(results))
"""


def test_submitted_layers_are_checked(manifest, tmp_path):
    done = kit.run_code(LAYERS, kit.xr_env(manifest, tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULTS "))
    assert json.loads(line.removeprefix("RESULTS ")) == {
        "unreleased image": "XR_ERROR_LAYER_INVALID",
        "rect outside the image": "XR_ERROR_SWAPCHAIN_RECT_INVALID",
        "good layer": "accepted",
        "acquire in another context": "XR_ERROR_GRAPHICS_DEVICE_INVALID",
    }
    assert kit.validation_problems(tmp_path) == []
