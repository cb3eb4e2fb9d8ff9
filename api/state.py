"""What the service holds: the active rulebook and the store, one of each per worker process."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from engine import Rulebook
from engine.model import Counter
from engine.store import Store


class ServiceState:
    def __init__(self, rulebook: Rulebook, open_store: Callable[[], Store]):
        self.rulebook = rulebook
        self._open_store = open_store
        self._store: Store | None = None
        self._store_pid: int | None = None
        self._lock = threading.Lock()

    @property
    def store(self) -> Store:
        """Opened on first use in each process: connections must not cross gunicorn's fork."""
        if self._store is None or self._store_pid != os.getpid():
            with self._lock:
                if self._store is None or self._store_pid != os.getpid():
                    self._store = self._open_store()
                    self._store_pid = os.getpid()
        return self._store

    def counters(self) -> StoreCounters:
        """Counters for a plain evaluation; the store is only touched if a counter is read."""
        return StoreCounters(self)


class StoreCounters:
    """A counter source that reaches the store lazily, so decisions without counters never need it."""

    def __init__(self, state: ServiceState):
        self._state = state

    def read(self, decision: str, counter: Counter, key: tuple[object, ...], now: datetime) -> int | Decimal:
        return self._state.store.reader().read(decision, counter, key, now)
