#!/usr/bin/env bash
# Tracing cost, measured with ../shared/bench: tracing off, default sampling, every span.
#
# The harness runs one project command per run, and run-to-run noise on a shared VM is
# larger than the cost of 1% sampling. So the configurations are interleaved over ROUNDS
# runs, each run has seed-node beside the project, and each configuration reports the
# median of its per-run efficiency ratio vs seed-node (msgs per server CPU-second).
# Spans go to scripts/otlp-sink.py on loopback, so the export path is real.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROUNDS=${ROUNDS:-3}
CONFIGS=${CONFIGS:-off default all}
PY=${PY:-.venv/bin/python}
OUT=${BENCH_RESULTS:-bench-results}/tracing
mkdir -p "$OUT"
SINK_PORT=${SINK_PORT:-4318}
taskset -c "${LG_CPU:-1}" "$PY" scripts/otlp-sink.py "$SINK_PORT" >"$OUT/sink.log" 2>&1 &
sink=$!
trap 'kill -TERM $sink 2>/dev/null || true' EXIT
otlp="OTEL_TRACES_EXPORTER=otlp OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$SINK_PORT"
declare -A cmd=(
    [off]="$PY -m signaling"
    [default]="env $otlp $PY -m signaling"
    [all]="env $otlp OTEL_TRACES_SAMPLER=parentbased_always_on $PY -m signaling"
)
for round in $(seq 1 "$ROUNDS"); do
    for config in $CONFIGS; do
        PROJECT_CMD="${cmd[$config]}" SERVERS=seed-node,project REPS=1 \
            DURATION="${DURATION:-3}" CONNS="${CONNS:-1000}" TAG="tracing-$config-$round" \
            BENCH_RESULTS="$OUT" ../shared/bench/run.sh 2>/dev/null |
            grep '^RATIO project' | sed "s/^/$config round $round: /" | tee -a "$OUT/ratios.txt"
    done
done
echo "medians of the per-run ratios vs seed-node (P=2, P=4):"
for config in $CONFIGS; do
    grep "^$config " "$OUT/ratios.txt" | tail -n "$ROUNDS" | python3 -c '
import re, statistics, sys
rows = [re.search(r"p2=([\d.]+) p4=([\d.]+)", line).groups() for line in sys.stdin]
p2 = statistics.median(float(a) for a, _ in rows)
p4 = statistics.median(float(b) for _, b in rows)
print(f"  {sys.argv[1]:8} p2={p2:.2f} p4={p4:.2f}  (runs: {len(rows)})")' "$config"
done
