#!/usr/bin/env bash
# One mutmut run (docs/testing.md, "Mutation testing"): the mutants matching the
# patterns, judged by the given test files only, one worker, with tools/mutation_watch.py
# stopping mutants that deadlock.
#   bash tools/mutation.sh "tests/test_core_weights.py tests/test_audio*.py" "vrshare.weights*"
# The test files replace pyproject.toml's test selection for this run (restored after);
# fewer judging tests can only lower a score. A different selection than the last run's
# makes mutmut forget its results and collect its test statistics again.
set -euo pipefail
cd "$(dirname "$0")/.."
tests=$1
shift
mkdir -p mutants
cp pyproject.toml mutants/pyproject.toml.bak
watcher=
restore() {
    if [ -n "$watcher" ]; then kill "$watcher" 2>/dev/null || true; fi
    mv mutants/pyproject.toml.bak pyproject.toml
}
trap restore EXIT
.venv/bin/python - "$tests" <<'PY'
import re, sys, glob
files = sorted({f for pattern in sys.argv[1].split() for f in glob.glob(pattern)})
text = open("pyproject.toml").read()
listed = "".join(f'\n    "{f}",' for f in files)
text, n = re.subn(r"pytest_add_cli_args_test_selection = \[.*?\n\]",
                  f"pytest_add_cli_args_test_selection = [{listed}\n]", text, flags=re.S)
assert n == 1, "pyproject.toml: no pytest_add_cli_args_test_selection"
open("pyproject.toml", "w").write(text)
PY
.venv/bin/mutmut run --max-children 1 "$@" &
mutmut=$!
.venv/bin/python tools/mutation_watch.py "$mutmut" &
watcher=$!
wait "$mutmut"
