"""What the benchmark scripts in tools/ share: timing, percentiles, tables, JSON.

* :class:`Timer` times a block (``with Timer() as t: ...``; then ``t.wall_s``,
  ``t.cpu_s``), and :class:`Samples` every call of a repeated step
  (``samples.call(fn, ...)``), in wall time (``time.perf_counter``) and in this
  thread's CPU time (``time.thread_time``, which leaves out time the thread waited
  for a core: the figure to compare on a shared machine);
* :func:`summary_ms` is the distribution of durations the way the frame loop's
  statistics compute it (:func:`vrshare.pipeline.stats.percentiles_ms`);
* :class:`Table` prints a table with rich when it is installed, as plain aligned
  text otherwise, a row at a time as results come;
* :func:`write_json` writes a script's figures plus a ``"run"`` record
  (:func:`run_record`: backend, machine, git revision, date, command line);
* :func:`import_revision` imports files of an older git revision as a package of their
  own, so that a benchmark times before and after in one process.

The scripts import it as ``from benchkit import ...``: a script's own folder is on
``sys.path`` when it runs as ``python tools/bench_x.py``.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from vrshare.pipeline.stats import percentiles_ms

ROOT = Path(__file__).resolve().parent.parent  # the checkout tools/ belongs to

# -- timing -------------------------------------------------------------------------------


class Timer:
    """Wall, thread-CPU and process-CPU seconds of one block: ``with Timer() as t: ...``.

    The process's CPU time counts every thread's (a software rasterizer's workers too).
    While the block runs, :meth:`elapsed` gives the wall seconds so far (for loops
    that run "for about N seconds")."""

    def __init__(self) -> None:
        self.wall_s = 0.0
        self.cpu_s = 0.0
        self.process_s = 0.0
        self._wall0 = self._cpu0 = self._process0 = 0.0

    def __enter__(self) -> Timer:
        self._process0 = time.process_time()
        self._cpu0 = time.thread_time()
        self._wall0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._wall0
        self.cpu_s = time.thread_time() - self._cpu0
        self.process_s = time.process_time() - self._process0

    def elapsed(self) -> float:
        return time.perf_counter() - self._wall0


class Samples:
    """Wall and thread-CPU seconds of each call of a repeated step, in order."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, timed; returns its result."""
        perf, thread = time.perf_counter, time.thread_time
        cpu0 = thread()
        wall0 = perf()
        out = fn(*args, **kwargs)
        wall1 = perf()
        self.cpu.append(thread() - cpu0)
        self.wall.append(wall1 - wall0)
        return out

    def add(self, timer: Timer) -> None:
        """Keep the times of a block timed apart."""
        self.wall.append(timer.wall_s)
        self.cpu.append(timer.cpu_s)

    def __len__(self) -> int:
        return len(self.wall)

    def wall_ms(self, skip: int = 0) -> dict[str, float]:
        """:func:`summary_ms` of the wall times, leaving out the first ``skip`` calls."""
        return summary_ms(self.wall[skip:])

    def cpu_ms(self, skip: int = 0) -> dict[str, float]:
        """:func:`summary_ms` of the CPU times, leaving out the first ``skip`` calls."""
        return summary_ms(self.cpu[skip:])


# -- percentiles --------------------------------------------------------------------------

SUMMARY_KEYS = ("median", "p95", "p99", "p99.9", "max")  # percentiles_ms's order


def summary_ms(times_s: Iterable[float] | np.ndarray) -> dict[str, float]:
    """Median, p95, p99, p99.9, max and mean (ms) of durations in seconds, computed as
    the frame statistics compute them (NaNs left out; all NaN when there are none)."""
    times = np.asarray(list(times_s) if not isinstance(times_s, np.ndarray) else times_s,
                       dtype=float)
    out = dict(zip(SUMMARY_KEYS, percentiles_ms(times), strict=True))
    kept = times[~np.isnan(times)]
    out["mean"] = float(kept.mean() * 1e3) if kept.size else float("nan")
    return out


# -- tables -------------------------------------------------------------------------------


def rich_available() -> bool:
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


@dataclasses.dataclass(frozen=True)
class Column:
    """A table column: its heading, its least width in plain text (a row is printed as
    soon as it comes, so widths cannot wait for the values) and its alignment."""

    name: str
    width: int = 0
    align: str = ">"  # ">" right, "<" left

    @property
    def plain_width(self) -> int:
        return max(self.width, len(self.name))


class Table:
    """A table printed a row at a time, with rich when installed, plain text otherwise.

    ``columns`` are :class:`Column` or headings (right-aligned; the first one left).
    Use it as a context manager: ``with Table(...) as table: table.add_row(...)``.
    In plain text the title and the heading print on entry and each row when added;
    with rich the table updates in place on a terminal (elsewhere it prints once, at
    the end). The caption prints below the table."""

    def __init__(self, columns: Sequence[Column | str], title: str | None = None,
                 caption: str | None = None, rich: bool | None = None) -> None:
        self.columns = [c if isinstance(c, Column) else
                        Column(c, align="<" if i == 0 else ">") for i, c in enumerate(columns)]
        self.title, self.caption = title, caption
        self.rich = rich_available() if rich is None else rich
        self.rows: list[list[str]] = []
        self._live: Any = None
        self._table: Any = None

    def __enter__(self) -> Table:
        if self.rich:
            from rich.live import Live
            from rich.table import Table as RichTable
            from rich.text import Text

            self._table = RichTable(title=Text(self.title) if self.title else None,
                                    caption=Text(self.caption) if self.caption else None)
            for c in self.columns:
                self._table.add_column(Text(c.name), justify="left" if c.align == "<"
                                       else "right", no_wrap=True)
            self._live = Live(self._table, console=_console(), auto_refresh=False)
            self._live.start()
        else:
            if self.title:
                print(self.title)
            print(self._line([c.name for c in self.columns]), flush=True)
        return self

    def add_row(self, *cells: Any) -> None:
        """One row; cells are formatted already (None prints as '-')."""
        row = ["-" if c is None else str(c) for c in cells]
        if len(row) != len(self.columns):
            raise ValueError(f"{len(row)} cells for {len(self.columns)} columns")
        self.rows.append(row)
        if self._live is not None:
            from rich.text import Text

            self._table.add_row(*(Text(c) for c in row))
            self._live.refresh()
        elif not self.rich:
            print(self._line(row), flush=True)

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            if not self._live.console.is_terminal:
                self._live.console.line()  # a file gets the table once, without its end
            self._live = None
        elif not self.rich and self.caption:
            print(self.caption, flush=True)

    def _line(self, cells: Sequence[str]) -> str:
        return "  ".join(f"{cell:{c.align}{c.plain_width}}"
                         for cell, c in zip(cells, self.columns, strict=True)).rstrip()


def _console() -> Any:
    from rich.console import Console

    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=200)  # a file or pipe: don't squeeze wide tables to 80
    return console


# -- before and after --------------------------------------------------------------------


def import_revision(rev: str, package: str, files: dict[str, str],
                    rewrites: Sequence[tuple[str, str]] = ()) -> ModuleType:
    """Import ``files`` of git revision ``rev`` as the package ``package``.

    ``files`` maps a folder or file of the checkout (``vrshare/pipeline``,
    ``vrshare/weights.py``) to where it goes in the package (``""`` its top); each
    file's text gets ``rewrites`` (old, new), in order, to point its imports at the
    package or at the current vrshare.
    """
    top = Path(tempfile.mkdtemp(prefix=f"{package}_")) / package
    for source, into in files.items():
        listed = subprocess.run(["git", "ls-tree", "--name-only", rev,
                                 source if source.endswith(".py") else f"{source}/"],
                                cwd=ROOT, check=True, capture_output=True, text=True)
        for name in listed.stdout.split():
            if not name.endswith(".py"):
                continue
            text = subprocess.run(["git", "show", f"{rev}:{name}"], cwd=ROOT, check=True,
                                  capture_output=True, text=True).stdout
            for old, new in rewrites:
                text = text.replace(old, new)
            (top / into).mkdir(parents=True, exist_ok=True)
            (top / into / Path(name).name).write_text(text)
    sys.path.insert(0, str(top.parent))
    return importlib.import_module(package)


# -- JSON -------------------------------------------------------------------------------


def git_revision(root: Path = ROOT) -> str | None:
    """``git rev-parse --short HEAD`` of the checkout; None when it is not one."""
    if not (root / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def run_record() -> dict[str, Any]:
    """Where and how the figures were measured."""
    from vrshare import backend

    b = backend.active()
    return {
        "backend": b.name,
        "device": b.device,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "git_revision": git_revision(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "argv": list(sys.argv),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_json(path: str | Path, figures: dict[str, Any], indent: int = 1) -> Path:
    """Write ``figures`` plus a ``"run"`` record (:func:`run_record`) to ``path``
    (folders made as needed) and say so; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**figures, "run": run_record()}, indent=indent,
                               default=_jsonable))
    print(f"wrote {path}")
    return path
