#!/bin/bash
# System calls and CPU per relayed message, server and load generator side by side.
#
# usage: scripts/relay-syscalls.sh [ENV=VALUE ...]
#   e.g. scripts/relay-syscalls.sh SIGNALING_LOOP_PACING_US=0
#   knobs (environment): WINDOW (16), PEERS (2), ROOMS (50), PORT (18301),
#                        PYTHON (.venv-compiled/bin/python), LG (the shared bench's lg.js)
#
# Runs `python -m signaling` pinned to CPU 0 and ../shared/bench's lg.js pinned to CPU 1
# (its node_modules come from a `../shared/bench/run.sh` run: BENCH_WORKDIR, default
# ~/.cache/signaling-bench), and reads /proc/PID/io (syscr/syscw: read and write system
# calls) and /proc/PID/stat (user/system CPU) of both over 3 s of steady load. Why: in
# the closed-loop relay the generator sets the pace, and a server's CPU per message then
# depends on how many messages each system call carries (BENCHMARKS.md, loop pacing).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-18301} WINDOW=${WINDOW:-16} PEERS=${PEERS:-2} ROOMS=${ROOMS:-50}
PYTHON=${PYTHON:-.venv-compiled/bin/python}
LG=${LG:-${BENCH_WORKDIR:-${XDG_CACHE_HOME:-$HOME/.cache}/signaling-bench}/loadgen/lg.js}
[ -f "$LG" ] || { echo "no $LG: run ../shared/bench/run.sh once" >&2; exit 2; }
out=$(mktemp)
env "$@" PORT="$PORT" HOST=127.0.0.1 SIGNALING_METRICS_PORT_NUMBER=0 \
    taskset -c 0 "$PYTHON" -P -m signaling >"$out.server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$out" "$out.server.log"' EXIT
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
    sleep 0.1
done
taskset -c 1 node "$LG" --url "ws://127.0.0.1:$PORT" --rooms "$ROOMS" --peers "$PEERS" \
    --window "$WINDOW" --duration 4 --warmup 0.5 >"$out" &
lg=$!
snap() { awk '/syscr/{r=$2}/syscw/{w=$2}END{printf "%s %s ", r, w}' "/proc/$1/io"; awk '{print $14, $15}' "/proc/$1/stat"; }
sleep 1.0  # past the generator's connect and warm-up
a1=$(snap $server) b1=$(snap $lg) t1=$(date +%s.%N)
sleep 3.0
a2=$(snap $server) b2=$(snap $lg) t2=$(date +%s.%N)
wait $lg
python3 - "$(tail -1 "$out")" "$a1" "$a2" "$b1" "$b2" "$t1" "$t2" "$(getconf CLK_TCK)" <<'PY'
import json, sys
report = json.loads(sys.argv[1])
a1, a2, b1, b2 = (list(map(int, x.split())) for x in sys.argv[2:6])
secs, tick = float(sys.argv[7]) - float(sys.argv[6]), int(sys.argv[8])
n = report["msgs_per_s"] * secs
def side(x1, x2):
    cpu = (x2[2] + x2[3] - x1[2] - x1[3]) / tick
    return (f"reads/msg {(x2[0] - x1[0]) / n:.3f} writes/msg {(x2[1] - x1[1]) / n:.3f} "
            f"user µs/msg {(x2[2] - x1[2]) / tick * 1e6 / n:.2f} sys µs/msg {(x2[3] - x1[3]) / tick * 1e6 / n:.2f} "
            f"cores {cpu / secs:.2f}")
srv_cpu = (a2[2] + a2[3] - a1[2] - a1[3]) / tick
print(f"msgs/s {report['msgs_per_s']} p50 {report['p50_ms']} ms p99 {report['p99_ms']} ms "
      f"msgs per server CPU-s {report['msgs_per_s'] * secs / srv_cpu:,.0f}")
print(f"  server: {side(a1, a2)}")
print(f"  lg.js:  {side(b1, b2)}")
PY
