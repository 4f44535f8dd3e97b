"""The ``scene_filter`` stage: frustum culling, LOD with hysteresis, budget, compaction.

:mod:`.stage` holds the vectorised stage, :mod:`.reference` a brute-force per-object
reference it is tested and benchmarked against, :mod:`.synthetic` random object
tables and eye matrices standing in for the scene and tracking stages.
"""

from .stage import SceneFilterSettings, SceneFilterStage

__all__ = ["SceneFilterSettings", "SceneFilterStage"]
