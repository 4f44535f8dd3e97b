"""Whether an OpenXR runtime answers, and which extensions it offers.

:func:`probe` asks in a child process with a time limit, so that a stuck runtime or
loader cannot block the caller; :func:`probe_here` is what that child runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from .errors import OpenXRError, RuntimeUnavailable, _xr, call

PROBE_TIMEOUT_S = 15.0  # probe(): a runtime that has not answered by then counts as absent


def _manifest() -> str:
    """Where the loader looks for the runtime, in words."""
    path = os.environ.get("XR_RUNTIME_JSON")
    return f"XR_RUNTIME_JSON={path}" if path else "the system's active_runtime.json"


def runtime_extensions() -> list[str]:
    """Extension names the active runtime offers (RuntimeUnavailable when none answers)."""
    xr = _xr()
    try:
        props = call("xrEnumerateInstanceExtensionProperties",
                     xr.enumerate_instance_extension_properties)
    except RuntimeUnavailable as exc:
        raise RuntimeUnavailable(
            f"no OpenXR runtime answers (runtime from {_manifest()}): {exc} Start SteamVR or "
            "Monado, or set XR_RUNTIME_JSON to a runtime's manifest.", exc.result) from exc
    return [p.extension_name.decode() for p in props]


def probe_here() -> dict[str, Any]:
    """What :func:`probe` reports, computed in this process (may block on a bad runtime)."""
    manifest = _manifest()
    try:
        xr = _xr()
        extensions = runtime_extensions()
        instance = call("xrCreateInstance", xr.create_instance, xr.InstanceCreateInfo(
            application_info=xr.ApplicationInfo(application_name="vrshare info",
                                                engine_name="vrshare",
                                                api_version=xr.Version(1, 0, 0))))
        try:
            props = call("xrGetInstanceProperties", xr.get_instance_properties, instance)
            info: dict[str, Any] = {
                "available": False, "runtime": props.runtime_name.decode(errors="replace"),
                "runtime_version": str(xr.Version(props.runtime_version)), "manifest": manifest,
                "egl_binding": "XR_MNDX_egl_enable" in extensions}
            system = call("xrGetSystem", xr.get_system, instance,
                          xr.SystemGetInfo(xr.FormFactor.HEAD_MOUNTED_DISPLAY))
            sprops = call("xrGetSystemProperties", xr.get_system_properties, instance, system)
            views = call("xrEnumerateViewConfigurationViews",
                         xr.enumerate_view_configuration_views, instance, system,
                         xr.ViewConfigurationType.PRIMARY_STEREO)
            info.update(available=True, system=sprops.system_name.decode(errors="replace"),
                        recommended_eye_size=[views[0].recommended_image_rect_width,
                                              views[0].recommended_image_rect_height])
            return info
        except OpenXRError as exc:
            info["error"] = str(exc)
            return info
        finally:
            call("xrDestroyInstance", xr.destroy_instance, instance)
    except OpenXRError as exc:
        return {"available": False, "manifest": manifest, "error": str(exc)}


def probe(timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
    """Whether an OpenXR runtime answers: runtime name and version, system, recommended
    per-eye size (px). Never raises and never hangs: the runtime is asked from a child
    process given ``timeout_s`` seconds, so a stuck runtime or loader cannot block the
    caller and its process-wide state stays out of this process."""
    code = ("import json, vrshare.targets.openxr as m; "
            "print('VRSHARE_PROBE ' + json.dumps(m.probe_here()))")
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return {"available": False, "error": f"the OpenXR runtime did not answer within "
                                             f"{timeout_s:.0f} s"}
    except OSError as exc:
        return {"available": False, "error": f"cannot start the OpenXR probe: {exc}"}
    for line in done.stdout.splitlines():
        if line.startswith("VRSHARE_PROBE "):
            return json.loads(line.removeprefix("VRSHARE_PROBE "))
    tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"available": False,
            "error": f"the OpenXR probe failed (exit {done.returncode}): {tail[0]}"}
