"""Controller input and haptics of a session: one action set, attached once.

OpenXR lets a session attach action sets only once, so every action vrshare offers
(:data:`.profiles.ACTIONS`: buttons, triggers, sticks, touches, the grip pose and
haptics) is declared up front in one set, with suggested bindings for every
interaction profile of :data:`.profiles.PROFILES` the runtime can take. Each frame
:meth:`Controllers.read` fills the host arrays of a
:class:`~vrshare.targets.controls.ControllerInput`; :meth:`Controllers.apply` sends a
haptic pulse (``xrApplyHapticFeedback``) or stops one (``xrStopHapticFeedback``).
The active profile per hand is logged when first known and whenever the runtime says
it changed.
"""

from __future__ import annotations

import ctypes
import logging
from typing import Any

import numpy as np

from ..controls import COLUMN, HANDS, HapticPulse
from .errors import OpenXRError, call
from .profiles import ACTIONS, PROFILES, Profile, usable

log = logging.getLogger(__name__)

NS_PER_S = 1e9


def _plain(xr: Any, name: str) -> Any:
    """The loader's ``name`` as a ctypes function of pyopenxr's argument types that
    returns the XrResult as an int (a separate function object: pyopenxr's is left as
    it is)."""
    fn = xr.raw_functions.openxr_loader_library[name]
    fn.argtypes = getattr(xr.raw_functions, name).argtypes
    fn.restype = ctypes.c_int32
    return fn


class Controllers:
    """The action set, its actions, the grip-pose spaces and the last known profiles."""

    HANDS = ("/user/hand/left", "/user/hand/right")

    def __init__(self, xr: Any, instance: Any, session: Any,
                 offered: set[str] | None = None) -> None:
        self.xr = xr
        self.instance = instance
        self.action_set = None
        self.actions: dict[str, Any] = {}
        self.spaces: list[Any] = []
        self.profiles: list[str] = ["", ""]  # per hand: the current profile path, "" none
        self.suggested: list[Profile] = []
        self._profiles_stale = True  # ask the runtime at the next focused read
        try:
            self._bind(instance, session, offered if offered is not None else set())
        except OpenXRError:
            self.destroy()
            raise

    def _path(self, text: str) -> Any:
        return call("xrStringToPath", self.xr.string_to_path, self.instance, text)

    def _bind(self, instance: Any, session: Any, offered: set[str]) -> None:
        xr = self.xr
        hands = self.hand_paths = [self._path(h) for h in self.HANDS]
        self.action_set = call("xrCreateActionSet", xr.create_action_set, instance,
                               xr.ActionSetCreateInfo(action_set_name="vrshare",
                                                      localized_action_set_name="vrshare"))
        kinds = {"float": xr.ActionType.FLOAT_INPUT, "boolean": xr.ActionType.BOOLEAN_INPUT,
                 "vector2": xr.ActionType.VECTOR2F_INPUT, "pose": xr.ActionType.POSE_INPUT,
                 "vibration": xr.ActionType.VIBRATION_OUTPUT}
        for spec in ACTIONS:
            self.actions[spec.name] = call(
                "xrCreateAction", xr.create_action, self.action_set,
                xr.ActionCreateInfo(action_name=spec.name, action_type=kinds[spec.kind],
                                    subaction_paths=hands,
                                    localized_action_name=spec.name.replace("_", " ")))
        for profile in usable(offered):
            self._suggest(profile)
        if not self.suggested:
            raise OpenXRError("the runtime took no suggested bindings for any interaction "
                              f"profile ({', '.join(p.path for p in PROFILES)})")
        call("xrAttachSessionActionSets", xr.attach_session_action_sets, session,
             xr.SessionActionSetsAttachInfo(action_sets=[self.action_set]))
        self.spaces = [call("xrCreateActionSpace", xr.create_action_space, session,
                            xr.ActionSpaceCreateInfo(action=self.actions["grip_pose"],
                                                     subaction_path=h))
                       for h in hands]
        self.sync_info = xr.ActionsSyncInfo(
            active_action_sets=[xr.ActiveActionSet(self.action_set, xr.NULL_PATH)])
        self._get = [[xr.ActionStateGetInfo(action=self.actions[spec.name], subaction_path=h)
                      for h in hands] for spec in ACTIONS]
        # each frame's state queries go straight to the loader, into these preallocated
        # structs, returning a plain int (pyopenxr's wrappers allocate a struct and an
        # enum per call); a call that does not return XR_SUCCESS is made again through
        # pyopenxr, which raises the error
        self._query = {"float": (_plain(xr, "xrGetActionStateFloat"), xr.ActionStateFloat,
                                 xr.get_action_state_float),
                       "boolean": (_plain(xr, "xrGetActionStateBoolean"),
                                   xr.ActionStateBoolean, xr.get_action_state_boolean),
                       "vector2": (_plain(xr, "xrGetActionStateVector2f"),
                                   xr.ActionStateVector2f, xr.get_action_state_vector2f)}
        # per input action: (query, pyopenxr getter, state columns), infos, states
        self._queries = [((self._query[spec.kind][0], self._query[spec.kind][2],
                           tuple(COLUMN[c] for c in spec.components)),
                          infos, [self._query[spec.kind][1]() for _ in hands])
                         for spec, infos in zip(ACTIONS, self._get, strict=True)
                         if spec.kind in self._query]

    def _suggest(self, profile: Profile) -> None:
        """Suggest one profile's bindings; a runtime refusing a profile is logged and the
        others still count (runtimes of older OpenXR versions lack newer profiles)."""
        xr = self.xr
        bindings = [xr.ActionSuggestedBinding(self.actions[name], self._path(f"{hand}{inp}"))
                    for name in profile.bindings
                    for hand, inp in zip(self.HANDS, profile.inputs(name), strict=True)
                    if inp is not None]
        try:
            call("xrSuggestInteractionProfileBindings", xr.suggest_interaction_profile_bindings,
                 self.instance, xr.InteractionProfileSuggestedBinding(
                     interaction_profile=self._path(profile.full_path),
                     suggested_bindings=bindings))
        except OpenXRError as exc:
            log.warning("OpenXR: the runtime refused the bindings for %s: %s", profile.path, exc)
            return
        self.suggested.append(profile)

    def sync(self, session: Any) -> None:
        """Update input (XR_SESSION_NOT_FOCUSED: no input this frame, not an error; the
        actions then read inactive)."""
        call("xrSyncActions", self.xr.sync_actions, session, self.sync_info)

    def profile_changed(self) -> None:
        """The runtime sent XrEventDataInteractionProfileChanged: ask again at the next read."""
        self._profiles_stale = True

    def read(self, session: Any, state: np.ndarray, bound: np.ndarray) -> None:
        """Fill ``state`` / ``bound`` (2, C) in place from the actions' current states
        (after :meth:`sync`); an inactive action (unbound in the hand's profile, or the
        session not focused) reads 0 and is 0 in ``bound``."""
        byref = ctypes.byref
        for (raw, get, columns), infos, states in self._queries:
            for hand in (0, 1):
                s, info = states[hand], infos[hand]
                if raw(session, byref(info), byref(s)) != 0:
                    s = call("xrGetActionState", get, session, info)
                active = s is not None and bool(s.is_active)
                if len(columns) == 2:  # a vector2: x, y
                    xy = s.current_state if active else None
                    state[hand, columns[0]] = xy.x if active else 0.0
                    state[hand, columns[1]] = xy.y if active else 0.0
                else:
                    state[hand, columns[0]] = float(s.current_state) if active else 0.0
                bound[hand, columns[0]] = bound[hand, columns[-1]] = float(active)
        if self._profiles_stale:
            self._profiles_stale = False
            self._update_profiles(session)

    def _update_profiles(self, session: Any) -> None:
        xr = self.xr
        for hand, path in enumerate(self.hand_paths):
            got = call("xrGetCurrentInteractionProfile", xr.get_current_interaction_profile,
                       session, path)
            now = "" if got is None or got.interaction_profile == xr.NULL_PATH else call(
                "xrPathToString", xr.path_to_string, self.instance, got.interaction_profile)
            if now != self.profiles[hand]:
                self.profiles[hand] = now
                log.info("OpenXR: %s hand: %s", HANDS[hand],
                         now or "no interaction profile (no controller, or none of the "
                                "suggested profiles fits it: no input from this hand)")

    def apply(self, session: Any, pulse: HapticPulse) -> None:
        """Send one haptic request: a vibration, or a stop when its amplitude is 0."""
        xr = self.xr
        info = xr.HapticActionInfo(action=self.actions["haptic"],
                                   subaction_path=self.hand_paths[pulse.hand])
        if pulse.stop:
            call("xrStopHapticFeedback", xr.stop_haptic_feedback, session, info)
            return
        duration = round(pulse.duration * NS_PER_S) if pulse.duration > 0 \
            else xr.MIN_HAPTIC_DURATION
        frequency = pulse.frequency if pulse.frequency > 0 else xr.FREQUENCY_UNSPECIFIED
        call("xrApplyHapticFeedback", xr.apply_haptic_feedback, session, info,
             xr.HapticVibration(duration=duration, frequency=frequency,
                                amplitude=min(pulse.amplitude, 1.0)))

    def destroy(self) -> None:
        xr = self.xr
        for space in self.spaces:
            call("xrDestroySpace", xr.destroy_space, space)
        self.spaces = []
        if self.action_set is not None:  # destroys its actions too
            call("xrDestroyActionSet", xr.destroy_action_set, self.action_set)
            self.action_set = None
            self.actions = {}
