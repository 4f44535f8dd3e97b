"""Print a seeded random sample of mutmut's mutant names matching glob patterns.

For modules whose every mutant takes seconds (each audio mutant's tests build the HRTF
fixtures again), a random sample estimates the mutation score at a fraction of the
cost; docs/testing.md gives each such score with its sample size. Run it in the tree
mutmut ran in (after a first ``mutmut run`` has generated the mutants), then hand the
names to ``tools/mutation.sh``::

    names=$(.venv/bin/python tools/mutation_sample.py 100 "vrshare.stages.audio.grid.*")
    bash tools/mutation.sh "tests/test_audio*.py" $names
"""

from __future__ import annotations

import argparse
import fnmatch
import random
import re
import subprocess
import sys


def mutant_names(mutmut: str) -> list[str]:
    """Every generated mutant's name, as ``mutmut results --all true`` lists them."""
    out = subprocess.run([mutmut, "results", "--all", "true"], check=True,
                         capture_output=True, text=True).stdout
    return re.findall(r"^\s*(\S+__mutmut_\d+):", out, flags=re.M)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, help="mutants to draw (all, if fewer match)")
    parser.add_argument("patterns", nargs="+", help="globs of mutant names")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mutmut", default=".venv/bin/mutmut")
    args = parser.parse_args(argv)
    names = sorted({n for n in mutant_names(args.mutmut)
                    if any(fnmatch.fnmatchcase(n, p) for p in args.patterns)})
    if not names:
        print("no generated mutant matches; run mutmut once first", file=sys.stderr)
        return 1
    sample = random.Random(args.seed).sample(names, min(args.count, len(names)))
    print(f"{len(sample)} of {len(names)} mutants", file=sys.stderr)
    print("\n".join(sorted(sample)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
