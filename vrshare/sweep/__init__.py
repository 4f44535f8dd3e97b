"""Benchmark sweeps and batch renders, one process per run, on Ray or here.

``vrshare sweep`` runs the cartesian product of ``--set`` overrides of a run file as
headless bench runs (:mod:`.plan`, :mod:`.runs`), each a Ray task in its own process
(:mod:`.engine`), and writes each run's row as it lands, a merged CSV, a table and
plots (:mod:`.results`, :mod:`.plots`). ``vrshare render`` renders a pose trace to
images with their camera parameters, in chunks across tasks (:mod:`.render`).
Ray is the ``sweep`` extra; without it ``--local`` runs one task after another.
"""

from __future__ import annotations

from .driver import SweepResult, sweep
from .engine import Placement
from .overrides import Override, SweepError, parse_set
from .plan import SweepRun, plan

__all__ = ["Override", "Placement", "SweepRun", "SweepError", "SweepResult", "parse_set", "plan",
           "sweep"]
