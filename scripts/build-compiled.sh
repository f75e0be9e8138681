#!/usr/bin/env bash
# Build the mypyc-compiled wheel of the server and install it into a venv of its own.
#
#   scripts/build-compiled.sh VENV [EXTRAS]      e.g. scripts/build-compiled.sh .venv-compiled dev
#
# The build runs on a copy of the sources in a temporary directory: compiled `.so` files
# must never land next to the `.py` files of a shared tree, where they would shadow the
# pure modules for every other test run. VENV must already hold setuptools and mypy
# (the Makefile's `compiled` target installs them); gcc and Python's headers are needed.
set -euo pipefail

VENV=${1:?usage: build-compiled.sh VENV [EXTRAS]}
EXTRAS=${2:-}
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=$(cd "$(dirname "$VENV/bin/python")" && pwd)/python

work=$(mktemp -d -t signaling-mypyc-XXXXXX)
trap 'rm -rf "$work"' EXIT
# --dereference: signaling/web/static holds symlinks to the browser client in clients/js.
tar -C "$REPO_ROOT" --dereference --exclude=__pycache__ --exclude='*.so' -cf - \
    pyproject.toml setup.py README.md LICENSE signaling | tar -C "$work" -xf -
mkdir "$work/dist"
# Dependencies first: mypyc compiles against their types (and the extras' for tests).
mapfile -t deps < <("$PY" - "$work/pyproject.toml" "$EXTRAS" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
print("\n".join(project["dependencies"]))
for extra in filter(None, sys.argv[2].split(",")):
    print("\n".join(project["optional-dependencies"][extra]))
PY
)
"$PY" -m pip install --quiet "${deps[@]}"
echo "[build-compiled] compiling the hot path with mypyc (about a minute)" >&2
(cd "$work" && SIGNALING_MYPYC=1 "$PY" -m pip wheel --quiet --no-build-isolation --no-deps \
    --wheel-dir dist .)
wheel=$(ls "$work"/dist/signaling-*.whl)
"$PY" -m pip install --quiet --force-reinstall --no-deps "$wheel"
# Run from / with -P so neither the current directory nor a source tree can shadow it.
(cd / && "$PY" -P -c '
import signaling.core.wire as w, signaling.transport.connection as c
assert w.__file__.endswith(".so") and c.__file__.endswith(".so"), (w.__file__, c.__file__)
print("[build-compiled] compiled:", w.__file__)
')
