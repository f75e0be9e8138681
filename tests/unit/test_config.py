"""Settings: defaults, environment, flags, and exit status 2 naming the bad variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from signaling import config


def test_defaults_match_the_seed() -> None:
    s = config.load([], {})
    assert (s.port, s.room_timeout_ms, s.host, s.room_id_digits) == (8080, 300_000, "", 4)


def test_environment_then_flags_win() -> None:
    env = {"PORT": "9000", "ROOM_TIMEOUT_MS": "1000", "SIGNALING_LOG_FORMAT": "JSON"}
    s = config.load([], env)
    assert (s.port, s.room_timeout, s.log_format) == (9000, 1.0, "json")
    assert config.load(["--port", "9001"], env).port == 9001


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"PORT": "http"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"ROOM_TIMEOUT_MS": "0"}, "ROOM_TIMEOUT_MS"),
        ({"SIGNALING_PING_INTERVAL_S": "-1"}, "SIGNALING_PING_INTERVAL_S"),
        ({"SIGNALING_PING_TIMEOUT_S": "nan"}, "SIGNALING_PING_TIMEOUT_S"),
        ({"SIGNALING_LOG_FORMAT": "xml"}, "SIGNALING_LOG_FORMAT"),
        ({"SIGNALING_ROOM_ID_DIGITS": "3"}, "SIGNALING_ROOM_ID_DIGITS"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(config.ConfigError, match=name):
        config.load([], env)


def test_process_exits_2_with_a_message() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "signaling"],
        env={"PORT": "nope", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert "PORT" in proc.stderr


def test_help_lists_every_variable() -> None:
    text = config.parser().format_help()
    for knob in config.KNOBS.values():
        assert knob.env in text and knob.flag in text


@pytest.mark.parametrize("bad", ["*", "app.example.com", "https://app.example/path", "https://"])
def test_an_allowed_origin_that_no_browser_sends_is_refused(bad: str) -> None:
    """Each of these would match no Origin header and quietly 403 every page."""
    with pytest.raises(config.ConfigError, match="SIGNALING_ALLOWED_ORIGINS"):
        config.load([], {"SIGNALING_ALLOWED_ORIGINS": f"https://ok.example,{bad}"})


def test_allowed_origins_are_normalised() -> None:
    env = {"SIGNALING_ALLOWED_ORIGINS": " https://App.example/ ,http://localhost:8080,null"}
    s = config.load([], env)
    assert s.allowed_origins == "https://app.example,http://localhost:8080,null"


def test_the_resume_window_fits_twice_in_the_send_buffer() -> None:
    """A resume replays up to the journal window into the send buffer at once: with a
    window over half the buffer, a slow resuming client would be cut by its own replay."""
    s = config.load([], {})
    assert s.journal_max_bytes <= s.send_buffer_bytes // 2
    ok = {"SIGNALING_SEND_BUFFER_BYTES": "262144", "SIGNALING_JOURNAL_MAX_BYTES": "131072"}
    assert config.load([], ok).journal_max_bytes == 131072
    for env in (
        {"SIGNALING_JOURNAL_MAX_BYTES": str(s.send_buffer_bytes)},
        {"SIGNALING_SEND_BUFFER_BYTES": str(s.journal_max_bytes)},
        {"SIGNALING_SEND_BUFFER_BYTES": "262144"},  # lowering the buffer alone
    ):
        with pytest.raises(config.ConfigError, match="at most half") as err:
            config.load([], env)
        assert "SIGNALING_JOURNAL_MAX_BYTES" in str(err.value)
        assert "SIGNALING_SEND_BUFFER_BYTES" in str(err.value)


def test_a_window_over_half_the_send_buffer_exits_2_naming_both() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "signaling", "--journal-max-bytes", "1048576"],
        env={"PATH": ""},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "invalid configuration: SIGNALING_JOURNAL_MAX_BYTES" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"SIGNALING_JOURNAL": "postgres"}, "SIGNALING_JOURNAL='postgres': must be one of"),
        ({"SIGNALING_JOURNAL": "redis"}, "SIGNALING_JOURNAL=redis needs SIGNALING_REDIS_URL"),
        ({"SIGNALING_REDIS_URL": "redis://r:6379/0"}, "SIGNALING_JOURNAL is memory"),
        ({"SIGNALING_JOURNAL": "redis", "SIGNALING_REDIS_URL": "http://r"}, "redis://"),
        ({"SIGNALING_JOURNAL": "redis", "SIGNALING_REDIS_URL": "redis://"}, "needs a host"),
        ({"SIGNALING_JOURNAL": "redis", "SIGNALING_REDIS_URL": "redis://r:99999"}, "bad port"),
        ({"SIGNALING_JOURNAL": "redis", "SIGNALING_REDIS_URL": "redis://r/db"}, "database"),
        ({"SIGNALING_JOURNAL": "redis", "SIGNALING_REDIS_URL": "unix://"}, "socket path"),
        ({"SIGNALING_REDIS_PREFIX": "a b"}, "SIGNALING_REDIS_PREFIX"),
    ],
)
def test_journal_backend_settings_are_checked_at_start_up(env: dict[str, str], needle: str) -> None:
    with pytest.raises(config.ConfigError) as err:
        config.load([], env)
    assert needle in str(err.value)


def test_a_redis_url_never_shows_its_password() -> None:
    url = "redis://user:hunter2@redis.internal:6379/3"
    s = config.load([], {"SIGNALING_JOURNAL": "redis", "SIGNALING_REDIS_URL": url})
    assert (s.journal_backend, s.redis_url, s.redis_prefix) == ("redis", url, "signaling")
    assert "hunter2" not in repr(s)
    bad = "http://user:hunter2@redis.internal"
    with pytest.raises(config.ConfigError) as err:
        config.load([], {"SIGNALING_JOURNAL": "redis", "SIGNALING_REDIS_URL": bad})
    assert "hunter2" not in str(err.value) and "SIGNALING_REDIS_URL" in str(err.value)
    for ok in ("rediss://h", "redis://h:1/15", "unix:///run/redis.sock", "redis://[::1]:6379"):
        config.load([], {"SIGNALING_JOURNAL": "redis", "SIGNALING_REDIS_URL": ok})


def test_the_redis_journal_without_a_url_exits_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "signaling"],
        env={"SIGNALING_JOURNAL": "redis", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert "SIGNALING_REDIS_URL" in proc.stderr and "Traceback" not in proc.stderr
