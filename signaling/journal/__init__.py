"""Journals: the ``Journal`` contract and its backends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from signaling.journal.base import Journal, StaleWriter, UnknownRoom
from signaling.journal.memory import MemoryJournal

if TYPE_CHECKING:
    from signaling.config import Settings

__all__ = ["Journal", "MemoryJournal", "StaleWriter", "UnknownRoom", "from_settings"]


def from_settings(settings: Settings) -> Journal:
    """The backend ``SIGNALING_JOURNAL`` names. The Redis client is imported only here, so
    the default in-memory journal never loads it."""
    if settings.journal_backend == "redis":
        from signaling.journal.redis import RedisJournal

        # A room's keys outlive its last append by the longest a live room can stay
        # silent (the expiry timer, a detached member's grace) plus a minute of slack:
        # only rooms nobody serves any more vanish.
        ttl = settings.room_timeout + settings.resume_grace + 60.0
        return RedisJournal.from_url(
            settings.redis_url,
            prefix=settings.redis_prefix,
            max_events=settings.journal_max_events,
            max_bytes=settings.journal_max_bytes,
            ttl=ttl,
        )
    return MemoryJournal(
        settings.journal_max_events, settings.journal_max_bytes, settings.journal_total_bytes
    )
