#!/usr/bin/env bash
# Instructions per relayed signal, exact on a busy machine (BENCHMARKS.md, "The compiled
# relay, instruction by instruction"): callgrind runs scripts/relay-microbench.py with 4,000
# and with 8,000 signals per repetition (5 repetitions), and the difference, divided by the
# 20,000 extra signals, cancels start-up and warm-up.
#
#   scripts/relay-callgrind.sh [PYTHON] [WINDOW] [PEERS] [V2]   (defaults: the compiled
#   build's python, 16, 2, 1); OUT=dir keeps the callgrind files (callgrind_annotate them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${1:-.venv-compiled/bin/python}
WINDOW=${2:-16}
PEERS=${3:-2}
V2=${4:-1}
OUT=${OUT:-$(mktemp -d -t relay-callgrind-XXXXXX)}
total() { grep -m1 -E '^(summary|totals):' "$1" | awk '{print $2}'; }
for n in 4000 8000; do
    # -P: the source tree must not shadow the compiled package.
    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file="$OUT/relay.$n.out" \
        "$PY" -P scripts/relay-microbench.py "$n" "$WINDOW" "$PEERS" "$V2" >"$OUT/relay.$n.log" 2>&1
done
a=$(total "$OUT/relay.4000.out")
b=$(total "$OUT/relay.8000.out")
echo "instructions per relayed signal (W=$WINDOW P=$PEERS v2=$V2): $(((b - a) / 20000)) ($OUT)"
