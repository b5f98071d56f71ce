"""A value a process reloads from Postgres at most every few seconds, shared by its threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class TimedSnapshot(Generic[T]):
    """The latest ``load()`` result, reloaded when older than ``ttl_s`` or invalidated."""

    def __init__(
        self,
        load: Callable[[], T],
        ttl_s: float = 5.0,
        stamp: Callable[[], Hashable] | None = None,
    ) -> None:
        self._load = load
        self._ttl_s = ttl_s
        self._stamp = stamp
        self._loaded_stamp: Hashable = None
        self._lock = threading.Lock()
        self._value: T | None = None
        # -inf, not 0: the monotonic clock starts near 0 at boot, and a machine up for less
        # than ``ttl_s`` would take an invalidated snapshot for a fresh one.
        self._loaded_at = float("-inf")

    def fresh(self) -> T | None:
        """The value if it is young enough to serve without reloading, else ``None``: what
        a caller that must not block (the event loop) may take without I/O."""
        value = self._value
        if value is not None and time.monotonic() - self._loaded_at < self._ttl_s:
            return value
        return None

    def get(self) -> T:
        value = self.fresh()
        if value is not None:
            return value
        with self._lock:
            if self._value is None or time.monotonic() - self._loaded_at >= self._ttl_s:
                self._loaded_stamp = self._stamp() if self._stamp is not None else None
                self._value = self._load()
                self._loaded_at = time.monotonic()
            return self._value

    def current(self) -> T:
        """The value, reloaded first if its source changed since it was loaded, as ``stamp``
        (a cheap query) tells; without a stamp, always reloaded. For a caller that just met
        something the snapshot may predate: a model or a key added a moment ago."""
        if self._stamp is None:
            self.invalidate()
            return self.get()
        now = self._stamp()
        with self._lock:
            if self._value is None or now != self._loaded_stamp:
                self._loaded_stamp = now
                self._value = self._load()
                self._loaded_at = time.monotonic()
            return self._value

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = float("-inf")
