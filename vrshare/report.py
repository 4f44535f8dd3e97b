"""Run results for people and tools: a summary table, JSON, a Perfetto trace, a plot."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import VrshareError
from .pipeline import FrameStats

log = logging.getLogger(__name__)


class ResultsError(VrshareError, OSError):
    """Results cannot be written where asked; the message names the path."""


COLUMNS = ("median", "p95", "p99", "p99.9", "max", "over budget")


def summary_rows(stats: FrameStats) -> list[list[str]]:
    rows = []
    for s in stats.summary():
        if s.frames == 0:
            continue
        rows.append([s.name, f"{s.median_ms:.3f}", f"{s.p95_ms:.3f}", f"{s.p99_ms:.3f}",
                     f"{s.p999_ms:.3f}", f"{s.max_ms:.3f}", str(s.over_budget)])
    return rows


def _counter_lines(stats: FrameStats) -> list[str]:
    """One line per stage with non-zero event counts (the JSON keeps the zeros)."""
    lines = []
    for stage, counts in stats.counters.items():
        nonzero = [f"{k} {v}" for k, v in counts.items() if v]
        if nonzero:
            lines.append(f"{stage}: " + ", ".join(nonzero))
    return lines


def _cadence_lines(stats: FrameStats) -> list[str]:
    """One line per stage run by a rate or off the loop (rate, latency, skips)."""
    lines = []
    for stage, c in stats.cadence.items():
        rate = f" (declared {c.rate_hz:g} Hz)" if c.rate_hz else ""
        moved = f", moved off the loop in frame {c.moved_async_at}" \
            if c.moved_async_at is not None else ""
        latency = (f", latency median {c.latency_ms[0]:.1f} ms (at most "
                   f"{c.latency_frames_max} frames)" if c.mode == "async" and c.runs else "")
        achieved = f" at {c.achieved_hz:.1f} Hz" if c.achieved_hz == c.achieved_hz else ""
        lines.append(f"{stage}: {c.mode}, {c.runs} runs{achieved}{rate}"
                     f"{latency}, {c.skipped} skipped{moved}")
    return lines


def _ending(stats: FrameStats) -> str:
    if stats.interrupted:
        by = stats.ending not in ("completed", "interrupted")
        return ", interrupted" + (f" ({stats.ending})" if by else "")
    return "" if stats.ending == "completed" else f", ended by {stats.ending}"


def _event_lines(stats: FrameStats) -> list[tuple[str, bool]]:
    """Faults, hangs and where an interrupted run stopped: (line, is it bad)."""
    lines = [(f"{'step' if f.phase == 'step' else 'stage'} {f.describe()}", True)
             for f in stats.faults]
    lines += [(f"watchdog: {h.describe()}", True) for h in stats.hangs]
    where = stats.interrupted_in
    if where is not None and not any(h.returned is False for h in stats.hangs):
        lines.append((f"the run ended while {where['stage']!r} was running in frame "
                      f"{where['frame']} (for {where['seconds']:.3f} s)", False))
    return lines


def progress_bar(total: int | None, description: str) -> tuple[Callable[[int], None], Any]:
    """A progress callback (frames done) and the context that shows and then removes the
    bar (rich when installed; without it, a callback that does nothing)."""
    try:
        from rich.progress import Progress
    except ImportError:
        from contextlib import nullcontext

        return (lambda n: None), nullcontext()
    bar = Progress(transient=True)
    task = bar.add_task(description, total=total)
    return (lambda n: bar.update(task, completed=n)), bar


def print_summary(stats: FrameStats, title: str = "frame times (ms)") -> None:
    """Print the summary table (rich when installed, plain text otherwise), with the
    faults (close faults too, when called after the run closed), the watchdog's hangs
    and how the run ended."""
    rows = summary_rows(stats)
    footer = (f"{stats.frames} frames, budget {stats.budget_s * 1e3:.2f} ms, "
              f"{stats.deadline_misses} deadline misses, {len(stats.faults)} stage faults"
              + (f", {len(stats.hangs)} hangs" if stats.hangs else "") + _ending(stats))
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        width = max(len(r[0]) for r in rows) if rows else 5
        print(title)
        print(f"{'track':<{width}}  " + "  ".join(f"{c:>11}" for c in COLUMNS))
        for r in rows:
            print(f"{r[0]:<{width}}  " + "  ".join(f"{c:>11}" for c in r[1:]))
        print(footer)
        for line in (*_cadence_lines(stats), *_counter_lines(stats)):
            print(line)
        for line, _ in _event_lines(stats):
            print(line)
        return
    table = Table(title=title, caption=footer)
    table.add_column("track")
    for c in COLUMNS:
        table.add_column(c, justify="right")
    for r in rows:
        table.add_row(*r)
    Console().print(table)
    console = Console()
    for line in (*_cadence_lines(stats), *_counter_lines(stats)):  # whole lines: easy to grep
        console.print(line, markup=False, soft_wrap=True)
    for line, bad in _event_lines(stats):
        console.print(line, style="red" if bad else None, markup=False, highlight=False,
                      soft_wrap=True)


def check_writable(out: Path, *, folder: bool = False) -> None:
    """Fail now, before any frame, if results cannot be written to ``out`` (a file, or
    with ``folder`` a folder to write into): :class:`ResultsError` naming the path.

    Creates the missing folders and writes and removes a temporary file there.
    """
    out = Path(out)
    where = out if folder else out.parent
    if not folder and out.is_dir():
        raise ResultsError(f"cannot write results to {out}: it is a folder")
    try:
        where.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=where):
            pass
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise ResultsError(f"cannot write results to {out}: {why}"
                           + ("" if exc.filename in (None, str(out)) else f" ({exc.filename})")
                           ) from exc


def write_atomic(path: Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to
    ``path``: a reader (or a run cut short) sees the old file or the new one, never
    half of one."""
    path = Path(path)
    # named by process: one process writes a results file at a time; ``write`` creates
    # it as any file is created (the umask applies), unlike mkstemp's private 0600
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_results(stats: FrameStats, out: Path, extra: dict[str, Any] | None = None, *,
                  trace: bool = True, plot_png: bool = True) -> list[Path]:
    """Write ``out`` (JSON), ``<out>.trace.json`` and ``<out>.png``; returns the paths.

    Each file is written atomically (a temporary file beside it, then a rename). The
    plot needs matplotlib (the ``report`` extra); without it, or if it fails, the plot
    is skipped with a logged message and the JSON and trace are still written. A
    failure to write the JSON or the trace is a :class:`ResultsError`.
    """
    out = Path(out)
    data = stats.as_dict() | (extra or {})
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, lambda p: p.write_text(json.dumps(data, indent=1)))
        written = [out]
        if trace:
            path = out.with_suffix(".trace.json")
            events = stats.chrome_trace()
            written.append(write_atomic(path, lambda p: p.write_text(json.dumps(events))))
    except OSError as exc:
        raise ResultsError(f"cannot write results to {out}: {exc}") from exc
    if plot_png:
        try:
            written.append(write_atomic(out.with_suffix(".png"), lambda p: plot(stats, p)))
        except ImportError as exc:
            log.warning("no plot written: %s (install vrshare[report])", exc)
        except Exception as exc:  # the plot is a convenience; the JSON holds the results
            log.error("no plot written: %s: %s", type(exc).__name__, exc)
    return written


def plot(stats: FrameStats, path: Path) -> Path:
    """Frame times over the run with the budget line, a histogram, per-track stacks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = stats.frames
    frame_ms = stats.total[:n] * 1e3
    budget_ms = stats.budget_s * 1e3
    fig, (ax_t, ax_h, ax_s) = plt.subplots(3, 1, figsize=(9, 9), constrained_layout=True)
    ax_t.plot(np.arange(n), frame_ms, lw=0.6, label="frame")
    ax_t.axhline(budget_ms, color="tab:red", ls="--", label=f"budget {budget_ms:.2f} ms")
    ax_t.set(xlabel="frame", ylabel="ms", title="frame time")
    ax_t.legend(loc="upper right")
    ax_h.hist(frame_ms, bins=60)
    ax_h.axvline(budget_ms, color="tab:red", ls="--")
    ax_h.set(xlabel="frame time (ms)", ylabel="frames", title="distribution")
    # The loop's own tracks add up to the frame time and are stacked; measured ones
    # (GPU passes) overlap them and are drawn as lines.
    own = [i for i, name in enumerate(stats.tracks) if name not in stats.measured]
    if own:
        durs = np.nan_to_num(stats.dur[:n, own] * 1e3)
        ax_s.stackplot(np.arange(n), durs.T, labels=[stats.tracks[i] for i in own], lw=0)
    for name in stats.measured:
        i = stats.tracks.index(name)
        ax_s.plot(np.arange(n), stats.dur[:n, i] * 1e3, lw=0.8, ls="--", label=name)
    if stats.tracks:
        ax_s.legend(loc="upper right", fontsize="small")
    ax_s.set(xlabel="frame", ylabel="ms", title="per-stage time, stacked (measured passes dashed)")
    try:
        fig.savefig(path, dpi=110, format="png")
    finally:
        plt.close(fig)
    return path
