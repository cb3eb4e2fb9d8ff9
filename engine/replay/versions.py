"""The rules a logged decision was made with: the active rulebook when its version is active, else the
version's files as the decision log kept them, loaded again (a few, cached)."""

from __future__ import annotations

from collections import OrderedDict

from ..decisionlog import LogDatabase
from ..errors import RuleFileError
from ..rulebook import Rulebook, rulebook_from_files

CACHED_VERSIONS = 8


class VersionLibrary:
    def __init__(self, database: LogDatabase | None, active: Rulebook | None = None):
        self.database = database
        self.active = active
        self._loaded: OrderedDict[str, Rulebook] = OrderedDict()

    def rulebook(self, version: str) -> tuple[Rulebook | None, str | None]:
        """The rulebook holding domain version ``version``, or None and why it is not available."""
        if self.active is not None and any(domain.version == version for domain in self.active.domains.values()):
            return self.active, None
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
        self._loaded[version] = rulebook
        if len(self._loaded) > CACHED_VERSIONS:
            self._loaded.popitem(last=False)
        return rulebook, None
