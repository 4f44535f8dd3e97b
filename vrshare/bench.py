"""A headless benchmark run: what ``vrshare bench`` does, and each run of a sweep.

One code path for both, so a sweep's row and a single ``vrshare bench`` of the same
settings come from the same run: open the run file (headless, or the stages alone),
play it on the given clock, write the results JSON (with the bank's report and host
to device transfers per frame), close, print the summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import app
from .config import RunFile, load_run_file
from .pipeline import FrameStats


def open_target_run(source: Path | RunFile, target: str, clock: str | None,
                    **display: Any) -> app.Run:
    """A run of ``source`` (a path or a loaded run file) with its display path;
    ``target = "none"`` runs the stages alone (nothing drawn)."""
    if target == "none":
        from .scene import load_run_scene

        run_file = source if isinstance(source, RunFile) else load_run_file(source)
        return app.open_run(run_file, clock=clock, scene=load_run_scene(run_file))
    from .display import open_display

    return open_display(source, target=target, clock=clock, **display)


@dataclass
class BenchResult:
    """What one bench run left: its stats, the files written and the JSON's extra
    fields (``file``, ``bank``: bytes held and transfers, per frame too)."""

    stats: FrameStats
    written: list[Path]
    extra: dict[str, Any] = field(default_factory=dict)


def bench(source: Path | RunFile, frames: int, out: Path, *, target: str = "headless",
          clock: str = "unthrottled", title: str | None = None, trace: bool = True,
          plot_png: bool = True) -> BenchResult:
    """Run ``frames`` frames of ``source`` on ``clock`` (default: unthrottled, as
    ``vrshare bench``) and write the results to ``out`` (JSON; with ``trace`` and
    ``plot_png`` also the Perfetto trace and the plot beside it).

    ``out`` is checked writable before any frame. Raises
    :class:`~vrshare.errors.VrshareError` for bad input, as the command does.
    """
    from .report import check_writable, write_results

    check_writable(out)  # before any frame: an unwritable out fails now
    name = source.path if isinstance(source, RunFile) else source
    run = open_target_run(source, target, clock)
    extra: dict[str, Any] = {"file": str(name)}

    def write(stats: FrameStats, again: bool) -> list[Path]:
        if not again:
            report = run.bank.report().as_dict()
            report["transfers_per_frame"] = (
                (report["transfers_to_device"] + report["transfers_to_host"])
                / max(stats.frames, 1))
            extra["bank"] = report
            print(f"transfers per frame (host<->device): {report['transfers_per_frame']:.2f}")
            return write_results(stats, out, extra, trace=trace, plot_png=plot_png)
        return write_results(stats, out, extra, trace=False, plot_png=False)

    stats, written = app.finish(run, frames, None, title or f"bench {name}", write)
    return BenchResult(stats, written, extra)


__all__ = ["BenchResult", "bench", "open_target_run"]
