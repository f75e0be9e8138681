"""The static files the server carries: the same client as clients/js, served by path."""

from __future__ import annotations

from pathlib import Path

import pytest

from signaling.config import ConfigError, load
from signaling.web.assets import ROUTES, Assets

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "signaling" / "web" / "static"


CLIENT = ["signaling.js", "mesh.js", "signaling.d.ts"]


@pytest.mark.parametrize("name", CLIENT)
def test_served_client_is_the_published_client(name: str) -> None:
    """The browser client has one source, clients/js/ (the npm package: npm leaves
    symlinks out of a package, so the real files live there). The package data the
    server serves is a relative symlink to it, which the wheel, the sdist, the image's
    build context (.dockerignore) and the compiled build (tar --dereference) resolve
    into real files (tests/js/test_client_packages.py)."""
    link = STATIC / name
    assert link.is_symlink(), f"{link} must be a symlink to clients/js/{name}, not a copy"
    target = link.readlink()
    assert not target.is_absolute() and target == Path("../../../clients/js") / name
    assert link.resolve() == (ROOT / "clients" / "js" / name).resolve()
    assert link.read_bytes() == (ROOT / "clients" / "js" / name).read_bytes()
    body = Assets.load(True).response(f"/client/{name}", False, False)
    assert body is not None and body.endswith(link.read_bytes())


def parse(response: bytes | None) -> tuple[str, dict[str, str], bytes]:
    assert response is not None
    head, _, body = response.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return status, headers, body


def test_every_route_is_served_with_its_type() -> None:
    assets = Assets.load(True)
    for path, (name, content_type) in ROUTES.items():
        status, headers, body = parse(assets.response(path, False, False))
        assert status == "HTTP/1.1 200 OK"
        assert body == (STATIC / name).read_bytes()
        assert headers["Content-Type"] == content_type
        assert headers["Content-Length"] == str(len(body))
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Connection"] == "close"
        assert "Date" in headers
    status, headers, body = parse(assets.response("/", True, True))
    assert body == b""  # HEAD
    assert headers["Connection"] == "keep-alive"
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert assets.response("/nope", False, False) is None
    assert assets.response("/client/", False, False) is None


def test_the_page_imports_only_served_modules() -> None:
    html = (STATIC / "index.html").read_text()
    demo = (STATIC / "demo.js").read_text()
    assert '<script type="module" src="/demo.js">' in html
    for module in ('"/client/signaling.js"', '"/client/mesh.js"'):
        assert module in demo
    assert "innerHTML" not in demo  # text only: peer ids and chat are untrusted


def test_demo_page_setting_turns_everything_off() -> None:
    assert not Assets.load(False)
    assert Assets.load(False).response("/", False, False) is None
    assert load([], {}).demo_page is True
    assert load([], {"SIGNALING_DEMO_PAGE": "false"}).demo_page is False
    with pytest.raises(ConfigError, match="SIGNALING_DEMO_PAGE"):
        load([], {"SIGNALING_DEMO_PAGE": "maybe"})


def test_turn_settings(tmp_path: Path) -> None:
    urls = "turn:a:3478?transport=udp, turns:b:5349"
    settings = load([], {"SIGNALING_TURN_URLS": urls, "SIGNALING_TURN_SECRET": "s"})
    assert settings.turn_urls == ("turn:a:3478?transport=udp", "turns:b:5349")
    assert settings.turn_secret_value() == "s"
    assert "'s'" not in repr(settings)  # a secret never reaches a log line
    secret = tmp_path / "turn-secret"
    secret.write_text("from-file\n")
    from_file = load([], {"SIGNALING_TURN_URLS": urls, "SIGNALING_TURN_SECRET_FILE": str(secret)})
    assert from_file.turn_secret_value() == "from-file"
    with pytest.raises(ConfigError, match="SIGNALING_TURN_SECRET"):
        load([], {"SIGNALING_TURN_URLS": urls})
    with pytest.raises(ConfigError, match="SIGNALING_TURN_URLS"):
        load([], {"SIGNALING_TURN_URLS": "http://a", "SIGNALING_TURN_SECRET": "s"})
    with pytest.raises(ConfigError, match="SIGNALING_STUN_URLS"):
        load([], {"SIGNALING_STUN_URLS": "turn:a"})
    with pytest.raises(ConfigError, match="SIGNALING_TURN_TTL_S"):
        load([], {"SIGNALING_TURN_TTL_S": "1"})
    assert load([], {"SIGNALING_STUN_URLS": "stun:x:3478"}).stun_urls == ("stun:x:3478",)


def test_platform_deploy_files() -> None:
    """Procfile runs the package's entry point (which honours PORT); requirements.txt makes
    buildpacks install the project itself, static files included."""
    assert (ROOT / "Procfile").read_text() == "web: python -m signaling\n"
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    assert [line for line in lines if line and not line.startswith("#")] == ["."]
    assert "Deploy to a platform" in (ROOT / "README.md").read_text()
