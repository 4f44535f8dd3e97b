"""Stop mutants that wait forever, for a mutmut run (docs/testing.md, "Mutation testing").

mutmut limits a mutant's test run by CPU seconds, so a mutant that deadlocks (sleeps on a
lock or a queue) is never stopped. This loop sends SIGXCPU, which mutmut records as a
timeout, to a mutant's test process (a grandchild of the ``mutmut run`` process, forked
by its fork server) that has used less than ``--busy`` of one core over ``--idle``
seconds and has no child process: a thread asleep on a lock uses none, one polling with
a timeout a little (a test's own work keeps a core busy). A stopped process (state T:
someone paused the run with SIGSTOP) is left alone, and its window starts again when it
runs.
Linux only: it reads /proc.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path


def _processes() -> dict[int, tuple[int, str, int]]:
    """pid -> (parent pid, state letter, CPU clock ticks used) of every process."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name in parentheses may hold spaces: the fields follow the last ")"
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = int(fields[11]) + int(fields[12])  # user + system
        found[int(entry.name)] = (int(fields[1]), fields[0], ticks)
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=int, help="pid of the mutmut run process")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds without CPU use")
    parser.add_argument("--busy", type=float, default=0.05,
                        help="share of one core below which a process counts as idle")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between looks")
    args = parser.parse_args(argv)
    most = args.busy * args.idle * os.sysconf("SC_CLK_TCK")  # CPU ticks in a window
    last: dict[int, tuple[int, float]] = {}  # pid -> (CPU ticks, time) at its window's start
    while True:
        now = time.monotonic()
        procs = _processes()
        if args.root not in procs:
            return
        parents = {parent for parent, _, _ in procs.values()}
        for pid, (parent, state, ticks) in procs.items():
            if procs.get(parent, (None,))[0] != args.root:
                continue  # not a mutant's test process
            if state == "T" or pid in parents or pid not in last:
                last[pid] = (ticks, now)
            elif now - last[pid][1] >= args.idle:
                if ticks - last[pid][0] < most:
                    print(f"mutation_watch: SIGXCPU to {pid}, idle {args.idle:.0f} s", flush=True)
                    os.kill(pid, signal.SIGXCPU)
                last[pid] = (ticks, now)
        last = {pid: seen for pid, seen in last.items() if pid in procs}
        time.sleep(args.poll)


if __name__ == "__main__":
    main()
