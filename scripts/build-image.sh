#!/usr/bin/env bash
# Build the server's container image from Containerfile (what `make image` runs).
#
# Env:
#   IMAGE                         tag to build (default signaling:dev)
#   BASE_IMAGE                    base image (default python:3.11-slim-bookworm)
#   BUILD_IMAGE                   builder stage image with gcc and Python headers (default:
#                                 derived from BASE_IMAGE: python:3.11-bookworm, or
#                                 signaling-build:bookworm, built here when missing)
#   MYPYC                         yes, no or auto: compile the hot path in the builder
#                                 (default yes for a derived BUILD_IMAGE, else auto)
#   SIGNALING_OFFLINE_WHEELHOUSE  1: resolve every wheel on the host first (scripts/wheelhouse.sh)
#                                 and install offline in the build; 0: never; unset: only when
#                                 BASE_IMAGE is a local-only image (no registry digest), i.e. a
#                                 machine without registry access such as CI
#   CONTAINER_ENGINE              docker or podman (default: docker if present, else podman)
#   BUILD_ARGS                    extra arguments for the engine's build command
set -euo pipefail

log() { printf '[build-image] %s\n' "$*" >&2; }

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

IMAGE=${IMAGE:-signaling:dev}
BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim-bookworm}

ENGINE=${CONTAINER_ENGINE:-}
if [ -z "$ENGINE" ]; then
    if command -v docker >/dev/null 2>&1; then ENGINE=docker
    elif command -v podman >/dev/null 2>&1; then ENGINE=podman
    else
        log "neither docker nor podman found"
        exit 1
    fi
fi

offline=${SIGNALING_OFFLINE_WHEELHOUSE:-}
if [ -z "$offline" ]; then
    offline=0
    if [ "$ENGINE" != docker ]; then
        # Podman/Buildah give every stored image a RepoDigest (its local manifest digest),
        # even one loaded or built locally: the check below cannot spot a local-only base.
        log "$ENGINE: cannot tell whether $BASE_IMAGE is local-only; set SIGNALING_OFFLINE_WHEELHOUSE=1 to build offline"
    elif "$ENGINE" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        digests=$("$ENGINE" image inspect --format '{{len .RepoDigests}}' "$BASE_IMAGE" 2>/dev/null || echo 1)
        if [ "$digests" = 0 ]; then
            log "$BASE_IMAGE is a local-only image: building offline from a wheelhouse"
            offline=1
        fi
    fi
fi

if [ "$offline" = 1 ]; then
    BASE_IMAGE=$BASE_IMAGE scripts/wheelhouse.sh
    wheelhouse=yes
else
    wheelhouse=no
fi

version=$( (python3 - <<'PY'
import tomllib
with open("pyproject.toml", "rb") as f:
    print(tomllib.load(f)["project"]["version"])
PY
) 2>/dev/null || sed -n 's/^version *= *"\(.*\)"/\1/p' pyproject.toml | head -n1)
revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
# The commit's time, not the build's: same sources, same labels.
created=$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
source_url=${SOURCE_URL:-$(git config --get remote.origin.url 2>/dev/null || echo unknown)}

# The builder stage: the same Python as BASE_IMAGE plus gcc and headers (for mypyc).
# A builder known to have them must compile (MYPYC=yes); any other compiles when it can.
mypyc=${MYPYC:-}
if [ -z "${BUILD_IMAGE:-}" ]; then
    case "$BASE_IMAGE" in
        python:*-slim*) BUILD_IMAGE=${BASE_IMAGE/-slim/}; mypyc=${mypyc:-yes} ;;
        signaling-base:*)
            BUILD_IMAGE=signaling-build:${BASE_IMAGE#*:}
            mypyc=${mypyc:-yes}
            if ! "$ENGINE" image inspect "$BUILD_IMAGE" >/dev/null 2>&1; then
                BASE_PACKAGES=gcc,libc6-dev,python3-dev \
                    "$REPO_ROOT/scripts/ci/base-image.sh" "$BUILD_IMAGE" >/dev/null
            fi
            ;;
        *) BUILD_IMAGE=$BASE_IMAGE ;;  # without a compiler there: the pure-Python build
    esac
fi
mypyc=${mypyc:-auto}
log "builder stage: $BUILD_IMAGE (mypyc: $mypyc)"

args=(
    --build-arg "BASE_IMAGE=$BASE_IMAGE"
    --build-arg "BUILD_IMAGE=$BUILD_IMAGE"
    --build-arg "MYPYC=$mypyc"
    --build-arg "WHEELHOUSE=$wheelhouse"
    --build-arg "VERSION=${version:-0.0.0}"
    --build-arg "REVISION=$revision"
    --build-arg "CREATED=$created"
    --build-arg "SOURCE_URL=$source_url"
    -t "$IMAGE"
    -f Containerfile
)
if [ "$ENGINE" = podman ] || [ "$ENGINE" = buildah ]; then
    # Docker image format keeps HEALTHCHECK and STOPSIGNAL (OCI format drops HEALTHCHECK).
    args+=(--format docker)
fi
if [ -n "${BUILD_ARGS:-}" ]; then
    # shellcheck disable=SC2206  # word splitting wanted
    args+=($BUILD_ARGS)
fi

log "building $IMAGE from $BASE_IMAGE with $ENGINE (wheelhouse: $wheelhouse)"
start=$SECONDS
if [ "$ENGINE" = docker ]; then
    # The legacy builder: works on engines without BuildKit/buildx, like the Debian one.
    DOCKER_BUILDKIT=0 docker build "${args[@]}" .
else
    "$ENGINE" build "${args[@]}" .
fi
size=$("$ENGINE" image inspect --format '{{.Size}}' "$IMAGE" 2>/dev/null || echo 0)
log "built $IMAGE in $((SECONDS - start))s, $((size / 1000000)) MB"
