"""Both hands' grip poses as OpenXR action spaces (controller input of a session)."""

from __future__ import annotations

from typing import Any

from .errors import OpenXRError, call


class Controllers:
    """Both hands' grip poses through one pose action, suggested for the
    ``khr/simple_controller`` profile that every conformant runtime supports (runtimes
    remap it to the controllers they have)."""

    HANDS = ("/user/hand/left", "/user/hand/right")
    PROFILE = "/interaction_profiles/khr/simple_controller"

    def __init__(self, xr: Any, instance: Any, session: Any) -> None:
        self.xr = xr
        self.action_set = self.action = None
        self.spaces: list[Any] = []

        try:
            self._bind(instance, session)
        except OpenXRError:
            self.destroy()
            raise

    def _bind(self, instance: Any, session: Any) -> None:
        xr = self.xr

        def path(text: str) -> Any:
            return call("xrStringToPath", xr.string_to_path, instance, text)

        hands = [path(h) for h in self.HANDS]
        self.action_set = call("xrCreateActionSet", xr.create_action_set, instance,
                               xr.ActionSetCreateInfo(action_set_name="vrshare",
                                                      localized_action_set_name="vrshare"))
        self.action = call("xrCreateAction", xr.create_action, self.action_set,
                           xr.ActionCreateInfo(action_name="grip_pose",
                                               action_type=xr.ActionType.POSE_INPUT,
                                               subaction_paths=hands,
                                               localized_action_name="Grip pose"))
        call("xrSuggestInteractionProfileBindings", xr.suggest_interaction_profile_bindings,
             instance, xr.InteractionProfileSuggestedBinding(
                 interaction_profile=path(self.PROFILE),
                 suggested_bindings=[xr.ActionSuggestedBinding(self.action,
                                                               path(f"{h}/input/grip/pose"))
                                     for h in self.HANDS]))
        call("xrAttachSessionActionSets", xr.attach_session_action_sets, session,
             xr.SessionActionSetsAttachInfo(action_sets=[self.action_set]))
        self.spaces = [call("xrCreateActionSpace", xr.create_action_space, session,
                            xr.ActionSpaceCreateInfo(action=self.action, subaction_path=h))
                       for h in hands]
        self.sync_info = xr.ActionsSyncInfo(
            active_action_sets=[xr.ActiveActionSet(self.action_set, xr.NULL_PATH)])

    def sync(self, session: Any) -> None:
        """Update input (XR_SESSION_NOT_FOCUSED: no input this frame, not an error)."""
        call("xrSyncActions", self.xr.sync_actions, session, self.sync_info)

    def destroy(self) -> None:
        xr = self.xr
        for space in self.spaces:
            call("xrDestroySpace", xr.destroy_space, space)
        self.spaces = []
        if self.action_set is not None:  # destroys its action too
            call("xrDestroyActionSet", xr.destroy_action_set, self.action_set)
            self.action_set = self.action = None
