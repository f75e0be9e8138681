#!/usr/bin/env bash
# `make bench`: a benchmark from the repository alone. Starts `python -m signaling` pinned
# to one CPU and drives it with `python -m signaling.loadtest` pinned to another, for rooms
# of 2 and of 4, and prints the load tool's reports (msgs/s, latency, msgs per server
# CPU-second, exactly-once verdict). For the comparison with the Node seed and PeerJS,
# use `make bench-shared` (../shared/bench).
#
# Env: PYTHON (default .venv/bin/python; `make bench` passes the compiled build's),
#      SERVER_CPU (0), LG_CPU (1), ROOMS (50),
#      WINDOW (16), DURATION (5), WARMUP (1), PEERS ("2 4"), PROTOCOL (1), PORT (free),
#      LOADTEST_ARGS (extra arguments for the load tool, e.g. --coalesce)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-.venv/bin/python}
SERVER_CPU=${SERVER_CPU:-0}
LG_CPU=${LG_CPU:-1}
PORT=${PORT:-$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
# `pin CPU`: the prefix that pins a command to CPU (nothing without taskset or a 2nd CPU).
pin() { if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -gt 1 ]; then echo "taskset -c $1"; fi; }

ulimit -n 65536 2>/dev/null || true
status=0
for peers in ${PEERS:-2 4}; do
    log=$(mktemp -t signaling-bench-XXXXXX.log)
    # shellcheck disable=SC2046  # pin's output is a list of words
    PORT=$PORT HOST=127.0.0.1 SIGNALING_METRICS_PORT_NUMBER=0 \
        $(pin "$SERVER_CPU") "$PYTHON" -P -m signaling >"$log" 2>&1 &
    server=$!
    trap 'kill -TERM $server 2>/dev/null || true' EXIT
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
        sleep 0.1
    done
    echo "== P=$peers (server pid $server on CPU $SERVER_CPU, load tool on CPU $LG_CPU)"
    # shellcheck disable=SC2086,SC2046  # LOADTEST_ARGS and pin's output are lists of words
    $(pin "$LG_CPU") "$PYTHON" -P -m signaling.loadtest "ws://127.0.0.1:$PORT/" -q \
        --rooms "${ROOMS:-50}" --peers "$peers" --protocol "${PROTOCOL:-1}" \
        --window "${WINDOW:-16}" --duration "${DURATION:-5}" --warmup "${WARMUP:-1}" \
        --source-cidr 127.5.0.0/16 --server-pid "$server" ${LOADTEST_ARGS:-} || status=$?
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    trap - EXIT
    [ "$status" = 0 ] && rm -f "$log" || echo "server log: $log"
    echo
done
exit "$status"
