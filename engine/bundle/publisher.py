"""Taking a rule-file change live and back (SPEC §12.1): drafts, approvals, publications, rollbacks.

Two ways a service holds its rules:

- **the rules directory** (the default): publishing writes the file into the directory — after the
  publication is recorded, so a process killed in between finishes the write when it next looks
  (:meth:`Publisher.reconcile`) — and the running hot reload activates it. A file edited by hand is
  recorded as a change seen in the directory, so the history stays complete.
- **a rules store** (``rulesvc serve --rules-store URL``): the store is the source. Every instance
  sharing it loads the rules directory's files overlaid with each file's newest publication and
  polls for new ones; an empty store is seeded from the directory.

Either way a publication is judged on the whole rulebook it makes (a draft with problems is never
activated), and lands only if the file's live version is still the one the draft was made from.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from engine.bundle.review import candidate_rulebook
from engine.bundle.store import Draft, Publication, RulesStore, StalePublication
from engine.errors import RulesvcError
from engine.rulebook import Rulebook, read_rule_files

DIRECTORY = "rules directory"  # who published what was found in the rules directory


class ChangeRefused(RulesvcError):
    """A draft, approval, publication or rollback that cannot be done; ``code`` is SPEC's error code,
    ``status`` the HTTP status the API answers with."""

    code = "CHANGE_REFUSED"
    status = 409

    def __init__(self, message: str, **details: object):
        super().__init__(message)
        self.details = details


class DraftNotFound(ChangeRefused):
    code, status = "NOT_FOUND", 404


class VersionNotKept(ChangeRefused):
    code, status = "NOT_FOUND", 404


class DraftStale(ChangeRefused):
    code = "DRAFT_STALE"


class DraftClosed(ChangeRefused):
    code = "DRAFT_CLOSED"


class ApprovalRequired(ChangeRefused):
    code = "APPROVAL_REQUIRED"


class AlreadyLive(ChangeRefused):
    code = "ALREADY_LIVE"


class OwnApproval(ChangeRefused):
    code = "OWN_DRAFT"


class Publisher:
    """Drafts and publications of one service's rule files, kept in ``store``."""

    def __init__(self, store: RulesStore, rules_dir: str | Path, *, authoritative: bool, approvals: int = 1):
        self.store = store
        self.rules_dir = Path(rules_dir)
        self.authoritative = authoritative  # the store, not the directory, is the source of the rules
        self.approvals = approvals  # 2: a second admin, not the author, approves before publishing

    # --- what is live --------------------------------------------------------------------------------

    def live_files(self) -> dict[str, str]:
        """The files to load: the rules directory's, each overlaid with its newest publication (a rules store)."""
        files = read_rule_files(self.rules_dir)
        if self.authoritative:
            files.update(self.store.newest_texts())
        return files

    def seed(self, rulebook: Rulebook) -> None:
        """Record the live version of every rule file the store does not know yet (a first start), and —
        in the rules directory — finish a publication a killed process left unwritten, or record a file
        changed by hand."""
        for domain in rulebook.domains.values():
            file = os.path.basename(domain.file)
            newest = self.store.newest(file)
            if newest is None:
                self.store.record(file=file, domain=domain.name, version=domain.version, text=domain.text,
                                  kind="seed", published_by=DIRECTORY, reason="the rules directory's file at the first start")
            elif not self.authoritative and newest.version != domain.version:
                self._reconcile(file, domain.name, domain.version, domain.text, newest)

    def _reconcile(self, file: str, domain: str, version: str, text: str, newest: Publication) -> None:
        parent = next((p for p in self.store.publications(domain, limit=50) if p.seq == newest.parent_seq), None)
        if newest.kind in ("publish", "rollback") and parent is not None and parent.version == version:
            self._write(file, newest.text)  # recorded, then killed before the write: finish it
            return
        self.store.record(file=file, domain=domain, version=version, text=text, kind="file",
                          published_by=DIRECTORY, reason="changed in the rules directory")

    # --- drafts ---------------------------------------------------------------------------------------

    def add_draft(self, active: Rulebook, file: str, text: str, author: str, review: dict[str, object]) -> Draft:
        domain = review.get("domain")
        live = active.domains.get(domain) if isinstance(domain, str) else None
        return self.store.add_draft(file=file, domain=domain if isinstance(domain, str) else None,
                                    base_version=live.version if live else None, text=text, author=author,
                                    review=review)

    def draft(self, draft_id: str) -> Draft:
        draft = self.store.draft(draft_id)
        if draft is None:
            raise DraftNotFound(f"no draft {draft_id!r}")
        return draft

    def approve(self, draft_id: str, admin: str) -> Draft:
        draft = self.draft(draft_id)
        if draft.status != "open":
            raise DraftClosed(f"draft {draft_id} is {draft.status}")
        if admin == draft.author:
            raise OwnApproval(f"{admin} made draft {draft_id}: another admin approves it")
        self.store.approve(draft_id, admin)
        return self.draft(draft_id)

    # --- publishing -----------------------------------------------------------------------------------

    def publish(self, active: Rulebook, draft_id: str, admin: str, reason: str) -> Publication:
        """Put draft ``draft_id`` live. Raises :class:`ChangeRefused` (stale, closed, not approved) or
        :class:`RuleFileError` (the rules it makes do not load: nothing changes)."""
        draft = self.draft(draft_id)
        if draft.status != "open":
            raise DraftClosed(f"draft {draft_id} is {draft.status}")
        if self.approvals > 1 and not any(approval["admin"] != draft.author for approval in draft.approvals):
            raise ApprovalRequired(f"RULESVC_PUBLISH_APPROVALS={self.approvals}: an admin other than "
                                   f"{draft.author} must approve draft {draft_id} first")
        live = self._live_version(active, draft.file, draft.domain)
        if live != draft.base_version:
            raise DraftStale(f"{draft.file} changed since the draft was made: make the draft again from the live file",
                             base_version=draft.base_version, live_version=live)
        return self._put_live(active, draft.file, draft.text, kind="publish", admin=admin, reason=reason,
                              draft_id=draft.draft_id, expected=live)

    def rollback(self, active: Rulebook, domain: str, version: str, admin: str, reason: str,
                 kept_text: Callable[[str, str], tuple[str, str] | None]) -> Publication:
        """Publish a kept ``version`` of ``domain`` again. ``kept_text(domain, version)`` finds a version
        the store does not hold (the decision log's versions) as ``(file, text)``."""
        kept = self.store.version_text(domain, version)
        found = (kept.file, kept.text) if kept is not None else kept_text(domain, version)
        if found is None:
            raise VersionNotKept(f"version {version} of {domain} is not kept")
        file, text = found
        live = self._live_version(active, file, domain)
        return self._put_live(active, file, text, kind="rollback", admin=admin, reason=reason, draft_id=None,
                              expected=live)

    def _live_version(self, active: Rulebook, file: str, domain: str | None) -> str | None:
        if self.authoritative:  # what the store holds now, which this instance may not have loaded yet
            newest = self.store.newest(file)
            return newest.version if newest is not None else None
        live = active.domains.get(domain or "")
        return live.version if live is not None and os.path.basename(live.file) == file else None

    def _put_live(self, active: Rulebook, file: str, text: str, *, kind: str, admin: str, reason: str,
                  draft_id: str | None, expected: str | None) -> Publication:
        candidate = candidate_rulebook(active, file, text)  # RuleFileError: nothing is recorded or written
        domain = next(d for d in candidate.domains.values() if os.path.basename(d.file) == file)
        if domain.version == expected:
            raise AlreadyLive(f"{domain.name} {domain.version} is the live version already")
        newest = self.store.newest(file)
        if (newest.version if newest else None) != expected and self.authoritative:
            raise DraftStale(f"{file} was published meanwhile", live_version=newest.version if newest else None)
        try:
            publication = self.store.publish(file=file, domain=domain.name, version=domain.version, text=text,
                                             kind=kind, published_by=admin, reason=reason,
                                             parent_seq=newest.seq if newest else 0, draft_id=draft_id)
        except StalePublication as error:
            raise DraftStale(str(error)) from None
        if not self.authoritative:
            self._write(file, text)
        return publication

    def _write(self, file: str, text: str) -> None:
        """Replace ``file`` in the rules directory at once (a reader sees the old text or the new)."""
        target = self.rules_dir / file
        handle, temporary = tempfile.mkstemp(prefix=f".{file}.", suffix=".tmp", dir=self.rules_dir)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
