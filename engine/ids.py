"""Decision ids: ULIDs (time-ordered, 26 characters of Crockford base32), made fast.

A ULID is 48 bits of milliseconds and 80 random bits. Within one millisecond the random part is
incremented (monotonic, as the ULID spec allows), so ids made by one process sort in the order they
were made; every process — every gunicorn worker after its fork — draws its own random start.
"""

from __future__ import annotations

import os
import random
import threading
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [first + second for first in _CROCKFORD for second in _CROCKFORD]  # 10 bits -> 2 characters
_RANDOM_BITS = 80


class _Generator:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seed()

    def _seed(self) -> None:
        self._random = random.Random(os.urandom(16))
        self._last_ms = -1
        self._last_random = 0

    def new(self) -> str:
        milliseconds = time.time_ns() // 1_000_000
        with self._lock:
            if milliseconds <= self._last_ms:
                milliseconds = self._last_ms
                self._last_random += 1
                if self._last_random >> _RANDOM_BITS:  # 2^80 ids in one millisecond: borrow the next one
                    milliseconds += 1
                    self._last_random = self._random.getrandbits(_RANDOM_BITS - 1)
            else:
                self._last_random = self._random.getrandbits(_RANDOM_BITS - 1)  # room to count up
            self._last_ms = milliseconds
            value = milliseconds << _RANDOM_BITS | self._last_random
        return encode(value)


def encode(value: int) -> str:
    """The 26-character text of a 128-bit ULID value: 130 bits ("00" + value), ten at a time."""
    p = _PAIRS
    return (p[value >> 120] + p[value >> 110 & 1023] + p[value >> 100 & 1023] + p[value >> 90 & 1023]
            + p[value >> 80 & 1023] + p[value >> 70 & 1023] + p[value >> 60 & 1023] + p[value >> 50 & 1023]
            + p[value >> 40 & 1023] + p[value >> 30 & 1023] + p[value >> 20 & 1023] + p[value >> 10 & 1023]
            + p[value & 1023])


_generator = _Generator()
os.register_at_fork(after_in_child=_generator._seed)


def new_id() -> str:
    """A new ULID, e.g. ``01JD2Q8Z0M4X9V6T3R1P5N7K2B``."""
    return _generator.new()
