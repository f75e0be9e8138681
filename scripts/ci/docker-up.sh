#!/usr/bin/env bash
# Make sure a Docker engine answers on /var/run/docker.sock: install docker.io when the
# engine is missing (Debian/Ubuntu, as root) and start dockerd in the background.
# Idempotent: when `docker info` already works it does nothing.
#
# Env:
#   DOCKERD_LOG      where dockerd logs (default /var/log/dockerd-ci.log)
#   DOCKER_UP_WAIT_S how long to wait for the engine (default 60)
set -euo pipefail

log() { printf '[docker-up] %s\n' "$*" >&2; }

DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd-ci.log}
WAIT_S=${DOCKER_UP_WAIT_S:-60}

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    log "engine already running ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        log "docker is not installed and we are not root; install docker.io (or podman) first"
        exit 1
    fi
    log "installing docker.io"
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "${DOCKER_UP_SKIP_APT_UPDATE:-}" ]; then
        apt-get update -qq
    fi
    apt-get install -y -qq docker.io iptables >/dev/null
fi

if [ "$(id -u)" -ne 0 ]; then
    log "dockerd is not running and we are not root: start it yourself (e.g. systemctl start docker)"
    exit 1
fi

# dockerd needs the cgroup hierarchy; machines without an init that mounts it need help.
if ! mountpoint -q /sys/fs/cgroup 2>/dev/null && command -v cgroupfs-mount >/dev/null 2>&1; then
    log "mounting cgroups (cgroupfs-mount)"
    cgroupfs-mount || true
fi

# A stale pid file from a dead daemon makes dockerd refuse to start.
if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    rm -f /var/run/docker.pid
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
    log "starting dockerd (log: $DOCKERD_LOG)"
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    disown || true
else
    log "dockerd process exists, waiting for it to answer"
fi

deadline=$((SECONDS + WAIT_S))
while [ "$SECONDS" -lt "$deadline" ]; do
    if [ -S /var/run/docker.sock ] && docker info >/dev/null 2>&1; then
        log "engine up ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
        exit 0
    fi
    sleep 1
done

log "engine did not answer within ${WAIT_S}s; last lines of $DOCKERD_LOG:"
tail -n 40 "$DOCKERD_LOG" >&2 || true
exit 1
