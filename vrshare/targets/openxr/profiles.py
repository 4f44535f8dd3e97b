"""The controller actions vrshare declares and their suggested bindings per interaction
profile (plain data; :mod:`.controllers` makes the OpenXR calls).

Every action has both hands as subaction paths. A binding is an input path below
``/user/hand/<hand>``, the same on both hands or a (left, right) pair where the hands
differ (Touch's X/Y are on the left, A/B on the right); None leaves that hand unbound.
Profiles that come with an extension are suggested only when the runtime offers it
(the extension is then enabled at instance creation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

PREFIX = "/interaction_profiles/"
HANDS = ("/user/hand/left", "/user/hand/right")

Binding = str | tuple[str | None, str | None]


@dataclass(frozen=True)
class ControllerAction:
    """One action: its name, its OpenXR type, and the CONTROLLER_STATE columns it fills
    (two for a vector2: x then y; none for poses and haptics)."""

    name: str
    kind: str  # "float", "boolean", "vector2", "pose" or "vibration"
    components: tuple[str, ...] = ()


def _buttons(*names: str) -> tuple[ControllerAction, ...]:
    return tuple(ControllerAction(n, "boolean", (n,)) for n in names)


ACTIONS: tuple[ControllerAction, ...] = (
    ControllerAction("trigger", "float", ("trigger",)),
    ControllerAction("squeeze", "float", ("squeeze",)),
    ControllerAction("thumbstick", "vector2", ("thumbstick_x", "thumbstick_y")),
    ControllerAction("trackpad", "vector2", ("trackpad_x", "trackpad_y")),
    *_buttons("thumbstick_click", "trackpad_click", "primary", "secondary", "menu",
              "trigger_touch", "thumbstick_touch", "trackpad_touch", "primary_touch",
              "secondary_touch"),
    ControllerAction("grip_pose", "pose"),
    ControllerAction("haptic", "vibration"),
)

_POSES = {"grip_pose": "/input/grip/pose", "haptic": "/output/haptic"}
_STICK = {"thumbstick": "/input/thumbstick", "thumbstick_click": "/input/thumbstick/click"}
_PAD = {"trackpad": "/input/trackpad", "trackpad_click": "/input/trackpad/click",
        "trackpad_touch": "/input/trackpad/touch"}
_XYAB: dict[str, Binding] = {"primary": ("/input/x/click", "/input/a/click"),
                             "secondary": ("/input/y/click", "/input/b/click")}
_TOUCH_XYAB: dict[str, Binding] = {"primary_touch": ("/input/x/touch", "/input/a/touch"),
                                   "secondary_touch": ("/input/y/touch", "/input/b/touch")}


@dataclass(frozen=True)
class Profile:
    """An interaction profile's suggested bindings (action name -> binding)."""

    path: str  # below /interaction_profiles/
    bindings: dict[str, Binding] = field(default_factory=dict)
    extension: str | None = None  # the extension that defines the profile, if any

    @property
    def full_path(self) -> str:
        return PREFIX + self.path

    def inputs(self, action: str) -> tuple[str | None, str | None]:
        """The action's input path on each hand (None: unbound there)."""
        b = self.bindings.get(action)
        return b if isinstance(b, tuple) else (b, b)


_TOUCH_LIKE = {"trigger": "/input/trigger/value", "squeeze": "/input/squeeze/value",
               **_STICK, "thumbstick_touch": "/input/thumbstick/touch",
               "trigger_touch": "/input/trigger/touch", **_XYAB, **_TOUCH_XYAB,
               "menu": ("/input/menu/click", None), **_POSES}

PROFILES: tuple[Profile, ...] = (
    Profile("khr/simple_controller", {"trigger": "/input/select/click",
                                      "menu": "/input/menu/click", **_POSES}),
    Profile("oculus/touch_controller", _TOUCH_LIKE),
    Profile("valve/index_controller", {
        "trigger": "/input/trigger/value", "squeeze": "/input/squeeze/value", **_STICK,
        "thumbstick_touch": "/input/thumbstick/touch", "trigger_touch": "/input/trigger/touch",
        "trackpad": "/input/trackpad", "trackpad_touch": "/input/trackpad/touch",
        "primary": "/input/a/click", "secondary": "/input/b/click",
        "primary_touch": "/input/a/touch", "secondary_touch": "/input/b/touch", **_POSES}),
    Profile("htc/vive_controller", {"trigger": "/input/trigger/value",
                                    "squeeze": "/input/squeeze/click", **_PAD,
                                    "menu": "/input/menu/click", **_POSES}),
    Profile("microsoft/motion_controller", {"trigger": "/input/trigger/value",
                                            "squeeze": "/input/squeeze/click", **_STICK, **_PAD,
                                            "menu": "/input/menu/click", **_POSES}),
    Profile("hp/mixed_reality_controller", {
        "trigger": "/input/trigger/value", "squeeze": "/input/squeeze/value", **_STICK, **_XYAB,
        "menu": "/input/menu/click", **_POSES}, extension="XR_EXT_hp_mixed_reality_controller"),
    Profile("bytedance/pico4_controller", {**_TOUCH_LIKE},
            extension="XR_BD_controller_interaction"),
    Profile("facebook/touch_controller_pro", {**_TOUCH_LIKE},
            extension="XR_FB_touch_controller_pro"),
    Profile("meta/touch_controller_plus", {**_TOUCH_LIKE},
            extension="XR_META_touch_controller_plus"),
)


def usable(offered: set[str]) -> tuple[Profile, ...]:
    """The profiles to suggest: the core ones and those whose extension is offered."""
    return tuple(p for p in PROFILES if p.extension is None or p.extension in offered)


def extensions(offered: set[str]) -> list[str]:
    """The profile extensions to enable at instance creation (those offered)."""
    return [p.extension for p in usable(offered) if p.extension is not None]
