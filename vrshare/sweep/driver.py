"""A sweep from the command line's words to its merged table: plan and validate the
runs, skip those already in the results folder, run the rest where the placement
says, and write each row as it lands, the CSV, the plot and the table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..report import check_writable, progress_bar
from .engine import Placement, check, execute
from .overrides import Override
from .plan import SweepRun, plan
from .results import Folder, Row, cell, print_table
from .runs import run_one

log = logging.getLogger(__name__)


@dataclass
class SweepResult:
    """Every run's row in plan order, how many ran now (the rest were in the folder
    already), and the files written."""

    rows: list[Row]
    ran: int
    written: list[Path]

    @property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if not r.ok]


def sweep(path: Path, overrides: list[Override], out: Path, placement: Placement, *,
          repeat: int = 1, frames: int = 300, target: str = "headless",
          clock: str = "unthrottled") -> SweepResult:
    """Run the sweep of ``path`` over ``overrides`` into the folder ``out``.

    Every run is validated before the first starts, and ``out`` is checked writable.
    A run already in ``out`` with status ok is not run again; a failed run is recorded
    with its error (and run again by a later sweep into the same folder) while the
    others go on.
    """
    runs = plan(path, overrides, repeat=repeat, frames=frames, target=target, clock=clock)
    check(placement)
    check_writable(out, folder=True)
    folder = Folder(out)
    keys = [o.key for o in overrides]
    rows: dict[str, Row] = {}
    for spec in runs:
        row = folder.landed(spec.id)
        if row is not None and row.ok:
            rows[spec.id] = row
    todo = [spec for spec in runs if spec.id not in rows]
    if rows:
        print(f"{len(rows)} of {len(runs)} runs already in {out}; running {len(todo)}")
    update, bar = progress_bar(len(runs), f"sweep of {Path(path).name}")
    with bar:
        update(len(rows))
        for done in execute(run_one, todo, placement):
            landed = done.result
            if landed is None:  # the process was lost: the engine's error stands for it
                row = _lost(done.spec, done.error or "the run's process was lost")
                folder.write(row, None, f"{row.error}\n")
            else:
                row = landed.row
                folder.write(row, landed.results, landed.log)
            rows[row.id] = row
            folder.write_csv(_ordered(runs, rows), keys)
            update(len(rows))
            print(_line(row, len(rows), len(runs)))
    merged = _ordered(runs, rows)
    written = [folder.csv]
    try:
        from .plots import plot_sweep

        written.append(plot_sweep(merged, keys, folder.plot, title=f"sweep of {Path(path).name}"))
    except ImportError as exc:
        log.warning("no sweep plot written: %s (install vrshare[report])", exc)
    except Exception as exc:  # the plot is a convenience; the rows and CSV hold the results
        log.error("no sweep plot written: %s: %s", type(exc).__name__, exc)
    print_table(merged, keys, f"sweep of {path}: {len(merged)} runs, frame times (ms)")
    return SweepResult(merged, len(todo), written)


def _ordered(runs: list[SweepRun], rows: dict[str, Row]) -> list[Row]:
    return [rows[spec.id] for spec in runs if spec.id in rows]


def _lost(spec: SweepRun, error: str) -> Row:
    return Row(spec.id, spec.label, spec.settings, spec.repeat, status="failed", error=error)


def _line(row: Row, done: int, total: int) -> str:
    if not row.ok:
        return f"run {done}/{total} {row.label}: failed: {row.error}"
    return (f"run {done}/{total} {row.label}: p50 {cell(row.frame_ms['median'])} ms, "
            f"p99 {cell(row.frame_ms['p99'])} ms, {row.deadline_misses} deadline misses "
            f"({row.host}, {row.duration_s:.1f} s)")


__all__ = ["SweepResult", "sweep"]
