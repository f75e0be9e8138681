#!/usr/bin/env bash
# Fill ./wheelhouse/ with binary wheels of every runtime dependency and of the build
# backend (setuptools), resolved for the Python inside the image's base, so that the
# Containerfile can `pip install --no-index --find-links /wheelhouse` without network.
#
#   scripts/wheelhouse.sh [BASE_IMAGE]
#
# Env:
#   BASE_IMAGE          image whose python3 we target (queried with the engine when the
#                       image is present locally); without it, or when that fails, the
#                       host python's version and platform are used
#   WHEELHOUSE_DIR      output directory (default: <repo>/wheelhouse)
#   WHEELHOUSE_PYTHON   host interpreter that runs pip (default: .venv/bin/python, else python3)
#   TARGET_PY / TARGET_GLIBC / TARGET_ARCH   override the detected target (e.g. 3.11 2.36 x86_64)
set -euo pipefail

log() { printf '[wheelhouse] %s\n' "$*" >&2; }

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

BASE_IMAGE=${1:-${BASE_IMAGE:-}}
OUT=${WHEELHOUSE_DIR:-$REPO_ROOT/wheelhouse}
if [ -z "${WHEELHOUSE_PYTHON:-}" ]; then
    if [ -x "$REPO_ROOT/.venv/bin/python" ]; then
        WHEELHOUSE_PYTHON=$REPO_ROOT/.venv/bin/python
    else
        WHEELHOUSE_PYTHON=python3
    fi
fi

ENGINE=${CONTAINER_ENGINE:-}
if [ -z "$ENGINE" ]; then
    if command -v docker >/dev/null 2>&1; then ENGINE=docker
    elif command -v podman >/dev/null 2>&1; then ENGINE=podman
    fi
fi

# What the target interpreter is: "<major.minor> <glibc major.minor> <machine>".
probe='import platform, sys; libc = platform.libc_ver()[1] or "2.17"; print("%d.%d" % sys.version_info[:2], libc, platform.machine())'
target=""
if [ -n "$BASE_IMAGE" ] && [ -n "$ENGINE" ] && "$ENGINE" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    target=$("$ENGINE" run --rm --network none --entrypoint python3 "$BASE_IMAGE" -c "$probe" 2>/dev/null || true)
    [ -n "$target" ] && log "target from $BASE_IMAGE: $target"
fi
if [ -z "$target" ]; then
    target=$("$WHEELHOUSE_PYTHON" -c "$probe")
    log "target from host python ($WHEELHOUSE_PYTHON): $target"
fi
read -r py glibc arch <<<"$target"
py=${TARGET_PY:-$py}
glibc=${TARGET_GLIBC:-$glibc}
arch=${TARGET_ARCH:-$arch}
pynodot=${py/./}

# Every manylinux tag the target glibc accepts (PEP 600 plus the legacy aliases).
glibc_minor=${glibc#*.}
platforms=()
for ((m = glibc_minor; m >= 5; m--)); do
    platforms+=(--platform "manylinux_2_${m}_${arch}")
done
platforms+=(--platform "manylinux2014_${arch}" --platform "manylinux2010_${arch}" --platform "manylinux1_${arch}")

# Runtime dependencies and build requirements, straight from pyproject.toml.
mapfile -t reqs < <("$WHEELHOUSE_PYTHON" - <<'PY'
import tomllib
with open("pyproject.toml", "rb") as f:
    data = tomllib.load(f)
for req in data["project"].get("dependencies", []):
    print(req)
for req in data.get("build-system", {}).get("requires", ["setuptools"]):
    print(req)
# The Containerfile's builder compiles the hot path with mypyc (see setup.py).
print("setuptools>=77")
print("mypy>=1.11")
# redis-py needs async-timeout below Python 3.11.3 (Debian bookworm has 3.11.2), and pip
# download evaluates that marker against the host's Python, not the target's: fetch it
# always (pure Python, a few KiB); pip in the image installs it only where it applies.
print("async-timeout>=4.0.3")
PY
)
log "requirements: ${reqs[*]}"

mkdir -p "$OUT"
# Not the project itself: the Containerfile builds it from source, so there is never a
# stale wheel of it here.
rm -f "$OUT"/signaling-*.whl
"$WHEELHOUSE_PYTHON" -m pip download --quiet --disable-pip-version-check \
    --dest "$OUT" \
    --only-binary=:all: \
    --implementation cp --python-version "$py" --abi "cp${pynodot}" --abi abi3 --abi none \
    "${platforms[@]}" \
    "${reqs[@]}" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
log "$(find "$OUT" -name '*.whl' | wc -l) wheels in $OUT ($(du -sh "$OUT" | cut -f1))"
