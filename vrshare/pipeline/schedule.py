"""The stage schedule, derived from declared reads and writes."""

from __future__ import annotations

import graphlib
import heapq
import itertools
from collections.abc import Iterable, Sequence

from ..errors import VrshareError
from .stage import Stage


class PipelineError(VrshareError, ValueError):
    """The stages cannot form a pipeline; the message names stages and buffers."""


def schedule(stages: Sequence[Stage], sources: Iterable[str] = ()) -> list[Stage]:
    """Order ``stages`` so that every writer runs before its readers.

    ``sources`` are buffers written outside any stage (by a target or the caller).
    A stage's ``optional_reads`` order it after their writers when they have one and
    are no error when they have none. Each next stage is the earliest listed of those
    whose writers have run, so stages keep their given order wherever the data allows.
    Raises :class:`PipelineError` for duplicate stage names, two writers of one buffer,
    a read that nothing writes, or a cycle.
    """
    sources = set(sources)
    names: dict[str, Stage] = {}
    for st in stages:
        if not st.name:
            raise PipelineError(f"stage {type(st).__name__} has no name")
        if st.name in names:
            raise PipelineError(f"two stages are named {st.name!r}; give one a distinct name")
        names[st.name] = st

    writer: dict[str, Stage] = {}
    for st in stages:
        for buf in st.writes:
            if buf in writer:
                raise PipelineError(
                    f"buffer {buf!r} has two writers: stages {writer[buf].name!r} and {st.name!r}"
                )
            if buf in sources:
                raise PipelineError(
                    f"buffer {buf!r} is written by stage {st.name!r} and also declared as an "
                    "external source"
                )
            writer[buf] = st

    graph = graphlib.TopologicalSorter()
    position = {st.name: i for i, st in enumerate(stages)}
    for st in stages:
        deps = []
        for buf in st.reads:
            if buf not in writer and buf not in sources:
                raise PipelineError(
                    f"stage {st.name!r} reads buffer {buf!r}, which no stage writes and no "
                    "source provides"
                )
        for buf in (*st.reads, *st.optional_reads):
            if buf in writer and writer[buf] is not st:
                deps.append(writer[buf].name)
        graph.add(st.name, *deps)

    try:
        graph.prepare()
    except graphlib.CycleError as exc:
        cycle = exc.args[1]
        links = []
        for a, b in itertools.pairwise(cycle):
            # each node is a predecessor of the next: a writes something b reads
            buf = next(x for x in (*names[b].reads, *names[b].optional_reads)
                       if x in names[a].writes)
            links.append(f"{a!r} writes {buf!r} read by {b!r}")
        raise PipelineError("stages form a cycle: " + "; ".join(links)) from None

    # one stage at a time, the earliest listed of those ready: file order is kept
    # wherever the data allows (taking whole batches of ready stages would not)
    order: list[Stage] = []
    ready: list[tuple[int, str]] = []
    while graph.is_active():
        for n in graph.get_ready():
            heapq.heappush(ready, (position[n], n))
        _, n = heapq.heappop(ready)
        order.append(names[n])
        graph.done(n)
    return order
