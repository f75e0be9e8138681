"""Journals: the ``Journal`` contract and its backends."""

from signaling.journal.base import Journal, StaleWriter, UnknownRoom
from signaling.journal.memory import MemoryJournal

__all__ = ["Journal", "MemoryJournal", "StaleWriter", "UnknownRoom"]
