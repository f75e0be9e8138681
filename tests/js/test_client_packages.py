"""The browser client has one source (clients/js); every package carries it as real files.

signaling/web/static/{signaling,mesh}.js and signaling.d.ts are symlinks to clients/js
(tests/unit/test_web_assets.py checks them). Each way the client leaves the repository
must carry the file, not the link: npm leaves symlinks out of a package, so clients/js
holds the real files; the sdist and the wheel (package data) must resolve the links; the
container image is checked by tests/container/test_protocol.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "js"
SHIPPED = ["signaling.js", "mesh.js", "signaling.d.ts"]


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required for the JavaScript client's packaging tests")
        pytest.skip(f"{name} is not installed")
    return found


def test_npm_pack_carries_the_client_files() -> None:
    npm = tool("npm")
    result = subprocess.run(
        [npm, "pack", "--dry-run", "--json", "--ignore-scripts"],
        cwd=CLIENT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (packed,) = json.loads(result.stdout)
    sizes = {entry["path"]: entry["size"] for entry in packed["files"]}
    for name in [*SHIPPED, "index.js", "mesh.d.ts", "index.d.ts", "package.json"]:
        assert sizes.get(name) == (CLIENT / name).stat().st_size, (name, sizes)


def test_npm_pack_would_drop_a_symlinked_file(tmp_path: Path) -> None:
    """Why clients/js holds the real files and not the links: npm leaves them out."""
    npm = tool("npm")
    (tmp_path / "real.js").write_text("export const x = 1;\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "linked.js").symlink_to("../real.js")
    (tmp_path / "pkg" / "package.json").write_text(
        '{"name": "t", "version": "1.0.0", "files": ["linked.js"]}'
    )
    result = subprocess.run(
        [npm, "pack", "--dry-run", "--json", "--ignore-scripts"],
        cwd=tmp_path / "pkg",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert [f["path"] for f in json.loads(result.stdout)[0]["files"]] == ["package.json"]


@pytest.mark.slow
def test_sdist_and_wheel_carry_the_client_files(tmp_path: Path) -> None:
    """`python -m build` makes the sdist, then the wheel from the sdist (a release's path)."""
    pytest.importorskip("build")
    source = tmp_path / "src"
    # A copy of what git tracks, symlinks kept as symlinks, so the build leaves no
    # build/ or egg-info behind in the checkout.
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        src, dst = ROOT / name, source / name
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst, follow_symlinks=False)
    assert (source / "signaling" / "web" / "static" / "signaling.js").is_symlink()
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp_path / "dist")],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (sdist,) = (tmp_path / "dist").glob("*.tar.gz")
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with tarfile.open(sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        for name in SHIPPED:
            member = tar.getmember(f"{top}/signaling/web/static/{name}")
            assert member.isfile(), f"{name} is a {member.type!r} in the sdist"
            data = tar.extractfile(member)
            assert data is not None and data.read() == (CLIENT / name).read_bytes(), name
    with zipfile.ZipFile(wheel) as whl:
        for name in SHIPPED:
            assert whl.read(f"signaling/web/static/{name}") == (CLIENT / name).read_bytes()
