"""The ModernGL stereo renderer: draws the bank's instance buffer for each eye.

It reads only bank buffers named in :mod:`vrshare.layout` (``instances``,
``draw_ranges``, ``eye_view``, ``eye_proj``) and the scene's meshes; it knows no
stage and no target (targets hand it :class:`~vrshare.targets.base.EyeSurface`\\ s).
"""

from .renderer import Renderer, RenderError

__all__ = ["RenderError", "Renderer"]
