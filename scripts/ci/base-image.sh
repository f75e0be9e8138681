#!/usr/bin/env bash
# Build a local Debian bookworm base image with python3 + venv, for machines that cannot
# pull from a container registry. Cached by tag: does nothing when the tag exists.
#
#   scripts/ci/base-image.sh [TAG]      (default: $SIGNALING_LOCAL_BASE_IMAGE or signaling-base:bookworm)
#
# Needs root, mmdebstrap (installed via apt when missing) and a running engine
# (docker, or podman when docker is absent). Prints the tag on stdout.
set -euo pipefail

log() { printf '[base-image] %s\n' "$*" >&2; }

TAG=${1:-${SIGNALING_LOCAL_BASE_IMAGE:-signaling-base:bookworm}}
SUITE=${BASE_SUITE:-bookworm}
# BASE_PACKAGES adds to them, e.g. the Containerfile's builder (signaling-build:bookworm,
# see build-image.sh) needs gcc,libc6-dev,python3-dev to compile the hot path.
# BASE_PACKAGES=redis-server makes the Redis image of tests/container/test_replicas.py
# (signaling-redis:bookworm; run it with an explicit redis-server command).
PACKAGES=python3,python3-venv,ca-certificates${BASE_PACKAGES:+,$BASE_PACKAGES}

if command -v docker >/dev/null 2>&1; then
    ENGINE=docker
elif command -v podman >/dev/null 2>&1; then
    ENGINE=podman
else
    log "no container engine (docker or podman) found"
    exit 1
fi

if "$ENGINE" image inspect "$TAG" >/dev/null 2>&1; then
    log "$TAG already present, skipping"
    echo "$TAG"
    exit 0
fi

if ! command -v mmdebstrap >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        log "mmdebstrap missing and not root; install it first"
        exit 1
    fi
    log "installing mmdebstrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
fi

log "building $TAG from Debian $SUITE with $PACKAGES (mmdebstrap, ~1 min)"
start=$SECONDS
# --variant=minbase: essential + apt only. The tarball goes straight into the engine.
# Docs, man pages and translations are dropped (copyright files kept): ~50 MB smaller.
# The merged-usr hook (when this mmdebstrap ships it) merges /usr itself instead of
# installing the usrmerge package, which would pull in perl (~30 MB).
hook_args=()
if [ -d /usr/share/mmdebstrap/hooks/merged-usr ]; then
    hook_args+=(--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr)
fi
# shellcheck disable=SC2016  # "$1" (the new root) is expanded by mmdebstrap's hook
mmdebstrap --quiet --variant=minbase --include="$PACKAGES" \
    "${hook_args[@]}" \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*' \
    "$SUITE" - \
    | "$ENGINE" import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        - "$TAG" >/dev/null
log "built $TAG in $((SECONDS - start))s"
echo "$TAG"
