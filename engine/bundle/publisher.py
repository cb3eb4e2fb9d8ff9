"""Taking a rule-file change live and back (SPEC §12.1): drafts, approvals, publications, rollbacks.

Two ways a service holds its rules:

- **the rules directory** (the default): publishing records the publication as ``pending``, writes the
  file into the directory, then marks it ``live``; the running hot reload activates it. A process
  killed in between leaves it pending, and the next look of any process (:meth:`Publisher.seed`, after
  every reload) finishes the write if the file is still the one it was judged against, or abandons it
  if the file was changed by hand meanwhile. A file edited by hand is recorded as a change seen in the
  directory, so the history stays complete.
- **a rules store** (``rulesvc serve --rules-store URL``): the store is the source. Every instance
  sharing it loads the rules directory's files overlaid with each file's newest publication and
  polls for new ones; an empty store is seeded from the directory.

Either way a publication is judged on the whole rulebook it makes (a draft with problems is never
activated), and lands only if the file's live version is still the one the draft was made from.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from engine.bundle.review import candidate_rulebook
from engine.bundle.store import ABANDONED, LIVE, PENDING, Draft, Publication, RulesStore, StalePublication
from engine.errors import RulesvcError
from engine.language.model import Domain
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


class NotARuleFile(ChangeRefused):
    code, status = "RULES_INVALID", 422


class WriteFailed(ChangeRefused):
    code, status = "WRITE_FAILED", 503


class AlreadyLive(ChangeRefused):
    code = "ALREADY_LIVE"


class OwnApproval(ChangeRefused):
    code = "OWN_DRAFT"


class Publisher:
    """Drafts and publications of one service's rule files, kept in ``store``."""

    def __init__(self, store: RulesStore, rules_dir: str | Path, *, authoritative: bool, approvals: int = 1,
                 require_partitions: bool = False):
        self.store = store
        self.rules_dir = Path(rules_dir)
        self.authoritative = authoritative  # the store, not the directory, is the source of the rules
        self.approvals = approvals  # 2: a second admin, not the author, approves before publishing
        self.require_partitions = require_partitions  # a Redis Cluster store: judged as the service loads

    # --- what is live --------------------------------------------------------------------------------

    def live_files(self) -> dict[str, str]:
        """The files to load: the rules directory's, each overlaid with its newest publication (a rules store)."""
        files = read_rule_files(self.rules_dir)
        if self.authoritative:
            files.update(self.store.newest_texts())
        return files

    def seed(self, rulebook: Rulebook) -> None:
        """Bring the history up to the live rules: record every rule file the store does not know yet
        (a first start); in the rules directory, also settle a publication a killed process left pending
        and record a file changed by hand."""
        for domain in rulebook.domains.values():
            file = os.path.basename(domain.file)
            newest = self.store.newest(file)
            if newest is None:
                self.store.record(file=file, domain=domain.name, version=domain.version, text=domain.text,
                                  kind="seed", published_by=DIRECTORY, reason="the rules directory's file at the first start")
            elif not self.authoritative:
                self._settle(file, domain.name, domain.version, domain.text, newest)

    def _settle(self, file: str, domain: str, version: str, text: str, newest: Publication) -> None:
        disk = self._on_disk(file)
        if newest.state == PENDING:
            if newest.version == version or disk == newest.text:  # written (then killed before it was marked)
                self.store.settle(newest.seq, LIVE)
                return
            base = self.store.publication(newest.base_seq) if newest.base_seq else None
            if base is not None and base.version == version and disk == text:
                try:
                    self._write(file, newest.text)  # recorded, then killed before the write: finish it
                except OSError:
                    return  # still pending: tried again at the next look
                self.store.settle(newest.seq, LIVE)
                return
            self.store.settle(newest.seq, ABANDONED)  # the file changed by hand since: it never went live
            newest = self.store.newest(file) or newest
        if newest.version != version and disk == text:  # this rulebook is the file as it is now
            self.store.record(file=file, domain=domain, version=version, text=text, kind="file",
                              published_by=DIRECTORY, reason="changed in the rules directory")

    def _on_disk(self, file: str) -> str | None:
        try:
            return (self.rules_dir / file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    # --- drafts ---------------------------------------------------------------------------------------

    def add_draft(self, active: Rulebook, file: str, text: str, author: str, review: dict[str, object]) -> Draft:
        """Keep a draft of ``file``, made from the file's live version (None for a new file)."""
        domain = review.get("domain")
        return self.store.add_draft(file=file, domain=domain if isinstance(domain, str) else None,
                                    base_version=self._live_version(active, file), text=text, author=author,
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
        live = self._live_version(active, draft.file)
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
        live = self._live_version(active, file)
        return self._put_live(active, file, text, kind="rollback", admin=admin, reason=reason, draft_id=None,
                              expected=live)

    def _live_version(self, active: Rulebook, file: str) -> str | None:
        """The live version of ``file`` (whatever domain it declares; None when there is no such file)."""
        if self.authoritative:  # what the store holds now, which this instance may not have loaded yet
            newest = self.store.newest(file)
            return newest.version if newest is not None else None
        live = _domain_of(active, file)
        return live.version if live is not None else None

    def _put_live(self, active: Rulebook, file: str, text: str, *, kind: str, admin: str, reason: str,
                  draft_id: str | None, expected: str | None) -> Publication:
        candidate = candidate_rulebook(active, file, text, require_partitions=self.require_partitions)
        domain = _domain_of(candidate, file)  # RuleFileError above: nothing is recorded or written
        if domain is None:
            raise NotARuleFile(f"{file} is not loaded as a rule file (a rule file is NAME.yaml)")
        if domain.version == expected:
            raise AlreadyLive(f"{domain.name} {domain.version} is the live version already")
        newest = self.store.newest(file)
        if (newest.version if newest else None) != expected:
            raise DraftStale(f"{file} was published meanwhile", live_version=newest.version if newest else None)
        live = _domain_of(active, file)
        if not self.authoritative and live is not None and self._on_disk(file) != live.text:
            raise DraftStale(f"{file} was changed in the rules directory meanwhile")
        try:
            publication = self.store.publish(file=file, domain=domain.name, version=domain.version, text=text,
                                             kind=kind, published_by=admin, reason=reason,
                                             based_on=newest.seq if newest else 0, draft_id=draft_id,
                                             state=LIVE if self.authoritative else PENDING)
        except StalePublication as error:
            raise DraftStale(str(error)) from None
        if self.authoritative:
            return publication
        try:
            self._write(file, text)
        except OSError as error:
            self.store.settle(publication.seq, ABANDONED)
            raise WriteFailed(f"{file} could not be written ({error.strerror or error}); nothing changed") from None
        self.store.settle(publication.seq, LIVE)
        return dataclasses.replace(publication, state=LIVE)

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


def _domain_of(rulebook: Rulebook, file: str) -> Domain | None:
    return next((domain for domain in rulebook.domains.values() if os.path.basename(domain.file) == file), None)
