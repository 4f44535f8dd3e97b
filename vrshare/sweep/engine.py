"""Where a batch's tasks run: Ray tasks (a local instance, or a cluster), or one
after another here (``--local``, no Ray needed).

Every task runs in a process of its own that ends with it: a Ray task with
``max_calls=1`` (Ray starts a fresh worker process for the next one), locally a
spawned process per task. So two runs never share a GL context, a CUDA context or
the array backend chosen at import, and a run that crashes its process takes no
other with it. Results come back as tasks finish (``ray.wait``), not in order.
"""

from __future__ import annotations

import logging
import multiprocessing
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..errors import require

log = logging.getLogger(__name__)

S = TypeVar("S")
R = TypeVar("R")

INSTALL_HINT = "or pass --local to run them one after another on this machine"


@dataclass(frozen=True)
class Placement:
    """Where and how a batch runs.

    ``local``: one after another on this machine, each task in its own spawned
    process (no Ray). Otherwise on Ray: ``address`` joins a running cluster (as
    ``ray.init(address=...)`` takes it, e.g. ``"auto"`` or ``"ray://host:10001"``);
    without it a local Ray instance starts with ``num_cpus`` CPUs (default: this
    machine's cores) and is shut down at the end. ``cpus_per_run``: the CPUs Ray
    reserves for each task, which sets how many run at once on a node.
    """

    local: bool = False
    address: str | None = None
    cpus_per_run: float = 1.0
    num_cpus: int | None = None


@dataclass
class Done(Generic[S, R]):
    """A finished task: its input, and its result or, when its process failed
    (crashed, or was lost with its node), the error as text."""

    spec: S
    result: R | None
    error: str | None = None


def execute(fn: Callable[[S], R], specs: Sequence[S], placement: Placement
            ) -> Iterator[Done[S, R]]:
    """Run ``fn(spec)`` for each spec where ``placement`` says; yields each as it
    finishes. ``fn`` must be a module-level function (it is pickled by name) and
    should catch its own errors into its result; what escapes it is caught here."""
    if not specs:
        return
    if placement.local:
        yield from _local(fn, specs)
    else:
        yield from _ray(fn, specs, placement)


def _local(fn: Callable[[S], R], specs: Sequence[S]) -> Iterator[Done[S, R]]:
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no GL state forked
    with ProcessPoolExecutor(max_workers=1, mp_context=context, max_tasks_per_child=1) as pool:
        futures = {pool.submit(fn, spec): spec for spec in specs}
        try:
            for future in as_completed(futures):
                spec = futures[future]
                try:
                    yield Done(spec, future.result())
                except Exception as exc:  # the process died, or fn let an error out
                    yield Done(spec, None, _describe(exc))
        finally:
            for future in futures:
                future.cancel()


def check(placement: Placement) -> None:
    """Raise :class:`~vrshare.errors.MissingDependency` now, before anything is written,
    when the placement needs Ray and it is not installed."""
    if not placement.local:
        _require_ray()


def _require_ray() -> Any:
    return require("ray", "sweep", f"running runs on Ray ({INSTALL_HINT})")


def _ray(fn: Callable[[S], R], specs: Sequence[S], placement: Placement
         ) -> Iterator[Done[S, R]]:
    ray = _require_ray()
    if placement.address is None:
        ray.init(num_cpus=placement.num_cpus, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=placement.address, log_to_driver=False)
    pending: dict[Any, S] = {}
    try:
        log.info("Ray: %s CPUs in the cluster, %g per run",
                 ray.cluster_resources().get("CPU", 0), placement.cpus_per_run)
        task = ray.remote(num_cpus=placement.cpus_per_run, max_calls=1, max_retries=0)(fn)
        pending.update((task.remote(spec), spec) for spec in specs)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            spec = pending.pop(ref)
            try:
                yield Done(spec, ray.get(ref))
            except ray.exceptions.RayError as exc:  # the worker died, or fn raised
                yield Done(spec, None, _describe(exc))
    finally:
        for ref in pending:  # left when the caller stopped early (Ctrl-C)
            ray.cancel(ref, force=True)
        ray.shutdown()


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def worker_error(exc: BaseException) -> dict[str, Any]:
    """An error inside a task as its result records it: the one-line message and the
    traceback."""
    return {"error": _describe(exc), "traceback": traceback.format_exc()}


__all__ = ["INSTALL_HINT", "Done", "Placement", "check", "execute", "worker_error"]
