"""A room actor's mailbox: a bounded deque with one wake-up future per batch.

Why not ``asyncio.Queue``: the actor drains *everything* queued on each wake-up, so it
needs the whole backlog at once, and posting must cost no future or task per message
(a future is created only when the actor actually goes to sleep on an empty box).

The deque exists only while something is queued: an empty ``deque`` costs about 760
bytes, and most rooms sit idle between an offer and the next ICE burst, so an idle room
holds no buffer at all.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class MailboxClosed(Exception):
    """The actor stopped for good (its room expired)."""


class Mailbox(Generic[T]):
    __slots__ = ("_capacity", "_closed", "_items", "_loop", "_waiter")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: deque[T] | None = None  # created by the first post after a take
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        # The actor's loop, read once by its first ``take``: CPython's
        # ``get_running_loop`` makes a ``getpid()`` system call every time (a fork check),
        # which under load was one more system call for most socket reads.
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        items = self._items
        return 0 if items is None else len(items)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def idle(self) -> bool:
        """Nothing queued and the actor is asleep waiting for work (tests, diagnostics)."""
        return not self._items and self._waiter is not None

    def post(self, item: T, *, force: bool = False) -> bool:
        """Queue ``item``; False when full (``force`` is for system messages, never refused)."""
        if self._closed:
            return False
        items = self._items
        if items is None:
            items = self._items = deque()
        elif not force and len(items) >= self._capacity:
            return False
        items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        return True

    def push_front(self, items: Iterable[T]) -> None:
        """Return unprocessed items to the head, in order (actor restart)."""
        back = list(items)
        if not back:
            return
        if self._items is None:
            self._items = deque(back)
        else:
            self._items.extendleft(reversed(back))

    async def take(self, limit: int = 0) -> deque[T]:
        """Wait until something is queued, then hand over the backlog: all of it, or at
        most ``limit`` items (the actor's fairness bound) when ``limit`` is positive."""
        items = self._items
        while not items:
            if self._closed:
                raise MailboxClosed
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            self._waiter = loop.create_future()
            await self._waiter
            items = self._items
        if 0 < limit < len(items):
            popleft = items.popleft
            return deque([popleft() for _ in range(limit)])
        self._items = None
        return items

    def drain(self) -> list[T]:
        """Take everything queued, leaving the mailbox open (before its actor runs)."""
        left = list(self._items or ())
        self._items = None
        return left

    def close(self) -> list[T]:
        """Stop accepting; wake the actor; return what was still queued."""
        self._closed = True
        left = list(self._items or ())
        self._items = None
        waiter = self._waiter
        self._waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return left
