"""Optical tracking: device poses from camera images of fiducial markers (needs the
``optical`` extra: OpenCV with ``cv2.aruco``)."""

from .stage import OpticalSettings, OpticalTrackingStage

__all__ = ["OpticalSettings", "OpticalTrackingStage"]
