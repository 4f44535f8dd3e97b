"""The sweep plot: frame-time p50 and p99 (ms) against each swept key.

One panel per key. In a panel, runs that share the values of the other keys form
one line (the mean over their repeats, each repeat a dot), solid for p50, dashed
for p99, so a 2-key sweep shows the second key as separate lines. Numeric values
are placed by value, others (strings, booleans, arrays) one after another in the
order given.
"""

from __future__ import annotations

import json
import numbers
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from .results import Row


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _positions(values: list[Any]) -> tuple[dict[str, float], list[str] | None]:
    """x of each value (keyed by its JSON text), and tick labels for non-numbers."""
    keys = list(dict.fromkeys(json.dumps(v) for v in values))
    if all(_is_number(v) for v in values):
        return {k: float(json.loads(k)) for k in keys}, None
    return {k: float(i) for i, k in enumerate(keys)}, keys


def plot_sweep(rows: list[Row], keys: list[str], path: Path, title: str = "") -> Path:
    """Write the plot of the runs that completed (``rows`` with status ok) to ``path``
    (PNG); needs matplotlib (the ``report`` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.ok and r.frames]
    shown = keys or ["repeat"]
    fig, axes = plt.subplots(1, len(shown), figsize=(5.5 * len(shown), 4.2), squeeze=False,
                             constrained_layout=True)
    for ax, key in zip(axes[0], shown, strict=True):
        values = [r.settings.get(key) if keys else r.repeat + 1 for r in rows]
        xs, ticks = _positions(values)
        others = [k for k in keys if k != key]
        lines: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
        for r, v in zip(rows, values, strict=True):
            name = " ".join(f"{k}={json.dumps(r.settings.get(k))}" for k in others)
            lines[name].append((xs[json.dumps(v)], r.frame_ms["median"], r.frame_ms["p99"]))
        for i, (name, points) in enumerate(sorted(lines.items())):
            color = f"C{i % 10}"
            pts = np.array(points, dtype=float)
            order = np.unique(pts[:, 0])
            p50 = [np.nanmean(pts[pts[:, 0] == x, 1]) for x in order]
            p99 = [np.nanmean(pts[pts[:, 0] == x, 2]) for x in order]
            ax.plot(order, p50, "-o", color=color, label=f"p50 {name}".strip())
            ax.plot(order, p99, "--s", color=color, label=f"p99 {name}".strip())
            ax.scatter(pts[:, 0], pts[:, 1], s=8, color=color, alpha=0.4)
            ax.scatter(pts[:, 0], pts[:, 2], s=8, color=color, alpha=0.4, marker="s")
        if ticks is not None:
            ax.set_xticks(range(len(ticks)), ticks)
        ax.set(xlabel=key, ylabel="frame time (ms)", title=f"frame time against {key}")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        if lines:
            ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    try:
        fig.savefig(path, dpi=110, format="png")
    finally:
        plt.close(fig)
    return path


__all__ = ["plot_sweep"]
