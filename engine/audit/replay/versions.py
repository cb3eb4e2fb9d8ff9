"""The rules a logged decision was made with: the active rulebook when its version is active, else the
version's files as the decision log kept them, loaded again (a few, cached)."""

from __future__ import annotations

import threading
from collections import OrderedDict

from engine.audit.log import LogDatabase
from engine.errors import RuleFileError
from engine.rulebook import Rulebook, rulebook_from_files

CACHED_VERSIONS = 8


class VersionLibrary:
    """Rulebooks by domain version; safe to share between a worker's threads."""

    def __init__(self, database: LogDatabase | None, active: Rulebook | None = None):
        self.database = database
        self.active = active
        self._loaded: OrderedDict[str, Rulebook] = OrderedDict()
        self._lock = threading.Lock()

    def rulebook(self, version: str, active: Rulebook | None = None) -> tuple[Rulebook | None, str | None]:
        """The rulebook holding domain version ``version``, or None and why it is not available.

        ``active`` (else the library's own) is tried first: a service passes the rulebook it serves now.
        """
        active = active or self.active
        if active is not None and any(domain.version == version for domain in active.domains.values()):
            return active, None
        with self._lock:
            if version in self._loaded:
                self._loaded.move_to_end(version)
                return self._loaded[version], None
        kept = self.database.version(version) if self.database is not None else None
        if kept is None:
            return None, f"ruleset version {version} is not kept in the decision log and is not active"
        try:
            rulebook = rulebook_from_files(kept["files"], display_dir=f"version {version[:15]}…")
        except RuleFileError as error:  # a version is kept only once it was active: this is unexpected
            return None, f"ruleset version {version} no longer loads: {error.problems[0]}"
        with self._lock:
            self._loaded[version] = rulebook
            if len(self._loaded) > CACHED_VERSIONS:
                self._loaded.popitem(last=False)
        return rulebook, None
