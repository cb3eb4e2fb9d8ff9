"""Heavy runs — scenario runs, validations, impact replays — bounded per worker (SPEC §7.1).

Each worker process runs at most one heavy run at a time, on one of its threads, within a
:class:`~engine.limits.Budget`; another heavy request meanwhile gets 429 with ``Retry-After`` (the
seconds left of the running one's time budget), while the worker's other threads go on answering
decisions and ``/healthz``. Usage in a view::

    with heavy_run(Budget("validation", seconds=VALIDATION_SECONDS)):
        ...  # engine work calling engine.limits.checkpoint()
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from engine.limits import AUDIT_SECONDS, Budget

_slot = threading.Lock()  # one per process: gunicorn forks before any request takes it
_running: list[Budget] = []  # the budget of the run holding the slot


class Busy(Exception):
    """This worker is running another heavy request; ``retry_after`` in whole seconds."""

    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        super().__init__(f"another scenario run, validation or impact request is running on this worker; "
                         f"retry in {retry_after} s")


@contextmanager
def heavy_run(budget: Budget) -> Iterator[Budget]:
    """Hold this worker's heavy-run slot with ``budget`` active; raise :class:`Busy` if it is taken."""
    if not _slot.acquire(blocking=False):
        raise Busy(_seconds_left())
    try:
        budget.start()  # the budget counts from when the work starts
        _running.append(budget)
        with budget.active():
            yield budget
    finally:
        _running.clear()
        _slot.release()


def _seconds_left() -> int:
    running = list(_running)
    left = running[0].seconds_left() if running else None
    return 1 if left is None else max(1, math.ceil(left))


def audit_read(what: str) -> AbstractContextManager[Budget]:
    """:func:`heavy_run` for one read of what was decided (a page of the log or records, an explanation,
    a shadow report): SPEC §7.1 bounds them like heavy work, within ``RULESVC_AUDIT_SECONDS``."""
    return heavy_run(Budget(what, seconds=AUDIT_SECONDS))
