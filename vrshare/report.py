"""Run results for people and tools: a summary table, JSON, a Perfetto trace, a plot."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from .pipeline import FrameStats

log = logging.getLogger(__name__)

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


def print_summary(stats: FrameStats, title: str = "frame times (ms)") -> None:
    """Print the summary table (rich when installed, plain text otherwise)."""
    rows = summary_rows(stats)
    footer = (f"{stats.frames} frames, budget {stats.budget_s * 1e3:.2f} ms, "
              f"{stats.deadline_misses} deadline misses, {len(stats.faults)} stage faults"
              + (", interrupted" if stats.interrupted else ""))
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
        for line in _counter_lines(stats):
            print(line)
        for fault in stats.faults:
            print(f"stage {fault.stage!r} disabled at frame {fault.frame}: {fault.error}")
        return
    table = Table(title=title, caption=footer)
    table.add_column("track")
    for c in COLUMNS:
        table.add_column(c, justify="right")
    for r in rows:
        table.add_row(*r)
    Console().print(table)
    for line in _counter_lines(stats):
        Console().print(line)
    for fault in stats.faults:
        Console().print(f"[red]stage {fault.stage!r} disabled at frame {fault.frame}: "
                        f"{fault.error}[/red]")


def write_results(stats: FrameStats, out: Path, extra: dict[str, Any] | None = None) -> list[Path]:
    """Write ``out`` (JSON), ``<out>.trace.json`` and ``<out>.png``; returns the paths.

    The plot needs matplotlib (the ``report`` extra); without it the plot is skipped
    with a logged warning and the JSON and trace are still written.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = stats.as_dict() | (extra or {})
    out.write_text(json.dumps(data, indent=1))
    trace = out.with_suffix(".trace.json")
    trace.write_text(json.dumps(stats.chrome_trace()))
    written = [out, trace]
    try:
        written.append(plot(stats, out.with_suffix(".png")))
    except ImportError as exc:
        log.warning("no plot written: %s (install vrshare[report])", exc)
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
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
