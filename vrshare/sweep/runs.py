"""One sweep run, in the worker process that runs it: a headless ``bench`` run
(:func:`vrshare.bench.bench`, the code ``vrshare bench`` runs) whose row, full
results and printed output come back to the sweep as data, so that a run on another
machine of a cluster lands in the sweep's folder on this one.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .engine import worker_error
from .plan import SweepRun
from .results import Row, measured


@dataclass
class Landed:
    """What a run sends back: its row, its results JSON (None when it failed before
    writing any) and everything it printed or logged."""

    row: Row
    results: str | None
    log: str


@contextlib.contextmanager
def captured(stream: io.StringIO):
    """stdout, stderr and the log records of the block into ``stream``."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
            yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def run_one(spec: SweepRun) -> Landed:
    """Run ``spec`` as a bench run; an error is recorded in the row, not raised."""
    from ..bench import bench

    row = Row(spec.id, spec.label, spec.settings, spec.repeat, host=socket.gethostname(),
              pid=os.getpid(), started=datetime.now(UTC).isoformat(timespec="seconds"))
    out = io.StringIO()
    results = None
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vrshare-sweep-") as tmp, captured(out):
        path = Path(tmp) / "results.json"
        try:
            done = bench(spec.run_file(), spec.frames, path, target=spec.target,
                         clock=spec.clock, title=spec.label, trace=False, plot_png=False)
        except Exception as exc:  # recorded with the run; the sweep goes on
            failure = worker_error(exc)
            row.status, row.error = "failed", failure["error"]
            print(failure["traceback"], file=sys.stderr)
        else:
            for key, value in measured(done.stats).items():
                setattr(row, key, value)
            row.bank = done.extra.get("bank", {})
            if done.stats.interrupted:  # cut short: not a result a later sweep may keep
                row.status, row.error = "interrupted", done.stats.ending
        if path.exists():
            results = path.read_text()
    row.duration_s = time.perf_counter() - t0
    return Landed(row, results, out.getvalue())


__all__ = ["Landed", "captured", "run_one"]
