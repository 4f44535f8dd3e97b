"""What this machine offers vrshare: backend, compiled loops, GL, OpenXR, audio. Each probe reports
failure as text instead of raising, so ``vrshare info`` always completes."""

from __future__ import annotations

import logging
import platform
from typing import Any

from . import backend

log = logging.getLogger(__name__)


def probe_backend() -> dict[str, Any]:
    try:
        b = backend.active()
    except backend.BackendError as exc:
        return {"backend": "unavailable", "error": str(exc)}
    return {"backend": b.name, "device": b.device, "reason": b.reason}


def probe_compiled() -> dict[str, Any]:
    """Whether the compiled loops (the scene filter's ``kernel = "numba"``) can run."""
    try:
        import numba
    except ImportError as exc:
        return {"available": False, "error": f"{exc} (install vrshare[fast])"}
    return {"available": True, "numba": numba.__version__}


def probe_gl() -> dict[str, Any]:
    """Open a headless EGL context and read its strings."""
    try:
        import moderngl

        ctx = moderngl.create_standalone_context(backend="egl")
    except Exception as exc:  # moderngl raises plain Exception when EGL has no device
        return {"available": False, "error": f"{type(exc).__name__}: {exc}"}
    try:
        return {"available": True, "vendor": ctx.info["GL_VENDOR"],
                "renderer": ctx.info["GL_RENDERER"], "version": ctx.info["GL_VERSION"]}
    finally:
        ctx.release()


def probe_openxr() -> dict[str, Any]:
    """Whether an OpenXR runtime answers (creates and destroys an instance)."""
    try:
        from .targets.openxr import probe
    except ImportError as exc:
        return {"available": False, "error": f"OpenXR support not importable: {exc}"}
    return probe()


def probe_audio() -> dict[str, Any]:
    try:
        import sounddevice
    except ImportError as exc:
        return {"available": False, "error": f"{exc} (install vrshare[audio])"}
    except OSError as exc:  # PortAudio library missing
        return {"available": False, "error": f"PortAudio not loadable: {exc}"}
    try:
        devices = sounddevice.query_devices()
    except sounddevice.PortAudioError as exc:
        return {"available": False, "error": str(exc)}
    outputs = [d["name"] for d in devices if d["max_output_channels"] >= 2]
    return {"available": bool(outputs), "outputs": outputs,
            **({} if outputs else {"error": "no stereo output device"})}


def gather() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "array": probe_backend(),
        "compiled": probe_compiled(),
        "gl": probe_gl(),
        "openxr": probe_openxr(),
        "audio": probe_audio(),
    }
