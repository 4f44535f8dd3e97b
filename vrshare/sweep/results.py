"""A sweep's results folder: one row per run as it lands, a merged CSV, a table.

Layout of ``DIR``::

    runs/<id>.json          the run's row (below); its presence with status "ok" is
                            what a re-run of the sweep skips
    runs/<id>.results.json  the run's full bench results (every frame's times)
    runs/<id>.log           what the run printed (its summary table, its log)
    sweep.csv               every row landed so far, one line per run
    sweep.png               frame-time p50 / p99 against each swept key

Times in rows are milliseconds; ``duration_s`` is the run's wall time in seconds,
set-up and closing included.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..pipeline import FrameStats
from ..report import ResultsError, write_atomic

PERCENTILES = ("median", "p95", "p99", "p99.9", "max")  # the summary's order (ms)


@dataclass
class Row:
    """One run of a sweep: its settings and what it measured (ms unless named)."""

    id: str
    label: str
    settings: dict[str, Any]  # dotted key -> value
    repeat: int
    # "ok"; "failed": the run raised or its process died; "interrupted": cut short
    status: str = "ok"
    error: str | None = None
    frames: int = 0
    frame_ms: dict[str, float | None] = field(default_factory=dict)  # PERCENTILES
    deadline_misses: int = 0
    faults: int = 0  # stage or step faults (the run went on)
    stage_median_ms: dict[str, float | None] = field(default_factory=dict)
    counters: dict[str, Any] = field(default_factory=dict)  # per stage, as the stats keep
    bank: dict[str, Any] = field(default_factory=dict)  # bytes held, transfers
    host: str = ""
    pid: int = 0  # the process that ran it (each run has its own)
    duration_s: float = 0.0
    started: str = ""  # ISO 8601, UTC

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Row:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _ms(value: float) -> float | None:
    return None if value != value or math.isinf(value) else round(value, 6)


def measured(stats: FrameStats) -> dict[str, Any]:
    """The row fields a finished run's stats give."""
    frame, *tracks = stats.summary()
    values = (frame.median_ms, frame.p95_ms, frame.p99_ms, frame.p999_ms, frame.max_ms)
    return {
        "frames": stats.frames,
        "frame_ms": {k: _ms(v) for k, v in zip(PERCENTILES, values, strict=True)},
        "deadline_misses": stats.deadline_misses,
        "faults": len(stats.faults),
        "stage_median_ms": {t.name: _ms(t.median_ms) for t in tracks},
        "counters": stats.counters,
    }


class Folder:
    """The results folder of a sweep (layout above)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.runs = self.root / "runs"
        self.csv = self.root / "sweep.csv"
        self.plot = self.root / "sweep.png"

    def row_path(self, run_id: str) -> Path:
        return self.runs / f"{run_id}.json"

    def landed(self, run_id: str) -> Row | None:
        """The row already in the folder for ``run_id``, or None (also for a row that
        cannot be read: the run is done again)."""
        try:
            return Row.from_dict(json.loads(self.row_path(run_id).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def write(self, row: Row, results: str | None, log_text: str) -> None:
        """The run's row, results and log, each atomically."""
        try:
            self.runs.mkdir(parents=True, exist_ok=True)
            if results is not None:
                write_atomic(self.runs / f"{row.id}.results.json",
                             lambda p: p.write_text(results))
            write_atomic(self.runs / f"{row.id}.log", lambda p: p.write_text(log_text))
            write_atomic(self.row_path(row.id),
                         lambda p: p.write_text(json.dumps(row.as_dict(), indent=1)))
        except OSError as exc:
            raise ResultsError(f"cannot write the results of run {row.id} to "
                               f"{self.runs}: {exc}") from exc

    def write_csv(self, rows: list[Row], keys: list[str]) -> Path:
        """``sweep.csv``: one line per row, the swept keys as columns."""
        header, lines = table(rows, keys, everything=True)

        def write(path: Path) -> None:
            with path.open("w", newline="") as f:
                out = csv.writer(f)
                out.writerow(header)
                out.writerows(lines)

        try:
            return write_atomic(self.csv, write)
        except OSError as exc:
            raise ResultsError(f"cannot write {self.csv}: {exc}") from exc


def cell(value: Any) -> str:
    """A table or CSV cell: floats to 3 decimals (ms), None empty, others as JSON."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return value if isinstance(value, str) else json.dumps(value)


def table(rows: list[Row], keys: list[str], everything: bool = False
          ) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the merged table: the swept keys, the repeat, status, frame
    percentiles (ms), deadline misses; ``everything`` adds the per-stage medians, the
    host, the duration, the error and the id (the CSV's columns)."""
    shown = PERCENTILES if everything else ("median", "p99")
    stages = sorted({s for r in rows for s in r.stage_median_ms}) if everything else []
    names = {"median": "p50"}
    header = [*keys, "repeat", "status", "frames",
              *(f"{names.get(p, p)} ms" for p in shown), "misses", "faults"]
    if everything:
        header += [*(f"{s} median ms" for s in stages), "host", "duration s", "error", "id"]
    lines = []
    for r in rows:
        line = [cell(r.settings.get(k)) for k in keys]
        line += [str(r.repeat + 1), r.status, str(r.frames),
                 *(cell(r.frame_ms.get(p)) for p in shown), str(r.deadline_misses),
                 str(r.faults)]
        if everything:
            line += [cell(r.stage_median_ms.get(s)) for s in stages]
            line += [r.host, f"{r.duration_s:.2f}", r.error or "", r.id]
        lines.append(line)
    return header, lines


def print_table(rows: list[Row], keys: list[str], title: str) -> None:
    """The merged table, with rich when installed (plain text otherwise); failed runs
    in red with their error below."""
    header, lines = table(rows, keys)
    failed = [r for r in rows if not r.ok]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
        print(title)
        for cells in (header, *lines):
            print("  ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True)))
        for r in failed:
            print(f"{r.label}: {r.error}")
        return
    out = Table(title=title)
    for i, h in enumerate(header):
        out.add_column(h, justify="left" if i < len(keys) else "right")
    for r, cells in zip(rows, lines, strict=True):
        out.add_row(*cells, style=None if r.ok else "red")
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # a file or pipe: whole columns, not 80 squeezed ones
    console.print(out)
    for r in failed:
        console.print(f"{r.label}: {r.error}", style="red", markup=False, soft_wrap=True)


__all__ = ["PERCENTILES", "Folder", "Row", "cell", "measured", "print_table", "table"]
