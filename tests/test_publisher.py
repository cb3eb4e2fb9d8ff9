"""The publication workflow's hard cases (a review's findings): stale drafts however they arise, a process
killed between recording and writing, a hand edit or revert of the rules directory, a failed write,
rules judged as the service loads them, and form edits of shared YAML values."""

from __future__ import annotations

import errno

import pytest

from api import create_app
from engine.bundle import publisher as publisher_module
from engine.bundle.publisher import DraftStale, NotARuleFile, Publisher
from engine.bundle.store import PENDING, RulesStore
from engine.errors import RuleFileError
from engine.language.edit import EditError, find_editable, replace_value
from engine.rulebook import load_rulebook

from .conftest import ROOT
from .test_console_changes import _csrf, _signed_in
from .test_publishing import AS_ALICE, YAML, _draft_text, _make_draft

ALICE = "alice-token"


@pytest.fixture
def service(copy, tmp_path, monkeypatch):
    monkeypatch.setenv("RULESVC_ADMIN_TOKENS", f"alice:{ALICE},bob:bob-token")
    monkeypatch.delenv("RULESVC_ADMIN_TOKEN", raising=False)
    return create_app(copy, store_url=f"sqlite:///{tmp_path}/store.db", log_url="none",
                      scenarios_dir=ROOT / "tests" / "scenarios")


def _publish(client, draft_id: str, reason: str = "why"):
    return client.post(f"/v1/rulesets/drafts/{draft_id}/publish", json={"reason": reason}, headers=AS_ALICE)


def _history(service) -> list[tuple[str, str]]:
    return [(p.kind, p.state) for p in service.extensions["rulesvc"].publisher.store.publications("recovery")]


def test_a_draft_that_renames_the_domain_is_stale_after_a_hand_edit(service, copy):
    client = service.test_client()
    renamed = _draft_text(copy).replace("domain: recovery", "domain: recovery2", 1)
    draft = _make_draft(client, renamed).get_json()
    assert draft["base_version"] == service.extensions["rulesvc"].rulebook.domains["recovery"].version
    hand = (copy / "recovery.yaml").read_text(encoding="utf-8").replace('value: "20:00"', 'value: "19:00"', 1)
    (copy / "recovery.yaml").write_text(hand, encoding="utf-8")
    service.extensions["rulesvc"].reload_if_changed()
    stale = _publish(client, draft["draft_id"])
    assert stale.status_code == 409 and stale.get_json()["error"]["code"] == "DRAFT_STALE"
    assert 'value: "19:00"' in (copy / "recovery.yaml").read_text(encoding="utf-8")  # the hand edit stays
    assert _history(service)[0] == ("file", "live")  # and is in the history


def test_a_publication_recorded_but_not_written_is_finished_by_the_next_look(service, copy, monkeypatch):
    client = service.test_client()
    state = service.extensions["rulesvc"]
    draft = _make_draft(client, _draft_text(copy)).get_json()
    later = _make_draft(client, _draft_text(copy, new='value: "19:00"')).get_json()

    def killed(self, file, text):  # the worker dies between recording the publication and writing the file
        raise KeyboardInterrupt

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(Publisher, "_write", killed)
        _publish(client, draft["draft_id"])
    assert _history(service)[0] == ("publish", PENDING) and 'value: "20:00"' in (copy / "recovery.yaml").read_text()
    state.reload_if_changed()  # any process's next look (the watcher's, every second)
    assert _history(service)[0] == ("publish", "live")
    assert 'value: "21:00"' in (copy / "recovery.yaml").read_text(encoding="utf-8")
    assert _publish(client, later["draft_id"]).status_code == 409  # made from the version before: stale


def test_a_pending_publication_overtaken_by_a_hand_edit_is_abandoned(service, copy, monkeypatch):
    client = service.test_client()
    draft = _make_draft(client, _draft_text(copy)).get_json()
    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(Publisher, "_write", lambda self, file, text: (_ for _ in ()).throw(KeyboardInterrupt()))
        _publish(client, draft["draft_id"])
    hand = (copy / "recovery.yaml").read_text(encoding="utf-8").replace('value: "20:00"', 'value: "19:00"', 1)
    (copy / "recovery.yaml").write_text(hand, encoding="utf-8")
    service.extensions["rulesvc"].reload_if_changed()
    assert _history(service)[:2] == [("file", "live"), ("publish", "abandoned")]
    assert 'value: "19:00"' in (copy / "recovery.yaml").read_text(encoding="utf-8")
    assert service.extensions["rulesvc"].publisher.draft(draft["draft_id"]).status == "open"


def test_a_hand_revert_is_recorded_not_undone(service, copy):
    client = service.test_client()
    before = (copy / "recovery.yaml").read_text(encoding="utf-8")
    assert _publish(client, _make_draft(client, _draft_text(copy)).get_json()["draft_id"]).status_code == 200
    (copy / "recovery.yaml").write_text(before, encoding="utf-8")  # git checkout of the file
    service.extensions["rulesvc"].reload()
    assert (copy / "recovery.yaml").read_text(encoding="utf-8") == before
    assert [kind for kind, _ in _history(service)] == ["file", "publish", "seed"]


def test_a_failed_write_changes_nothing_and_the_draft_stays_open(service, copy, monkeypatch):
    client = service.test_client()
    draft = _make_draft(client, _draft_text(copy)).get_json()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(publisher_module.tempfile, "mkstemp", disk_full)
        failed = _publish(client, draft["draft_id"])
    assert failed.status_code == 503 and failed.get_json()["error"]["code"] == "WRITE_FAILED"
    assert _history(service)[0] == ("publish", "abandoned")
    assert _publish(client, draft["draft_id"], "again").status_code == 200  # open again, and publishable


def test_publications_are_judged_as_the_service_loads(copy, tmp_path):
    rulebook = load_rulebook([copy])
    publisher = Publisher(RulesStore(f"sqlite:///{tmp_path}/rules.db"), copy, authoritative=False,
                          require_partitions=True)
    publisher.seed(rulebook)
    text = (copy / "recovery.yaml").read_text(encoding="utf-8")
    assert "partition: customer.id" in text
    unpartitioned = text.replace("partition: customer.id", "", 1)
    with pytest.raises(RuleFileError, match="declares no partition"):
        publisher._put_live(rulebook, "recovery.yaml", unpartitioned, kind="publish", admin="alice", reason="x",
                            draft_id=None, expected=rulebook.domains["recovery"].version)
    with pytest.raises(NotARuleFile):
        publisher._put_live(rulebook, "notes.txt", text, kind="publish", admin="alice", reason="x", draft_id=None,
                            expected=None)
    assert publisher.store.change_marker() == (4, 4)  # the four seeds, nothing else


def test_a_draft_adding_a_domain_reviews_and_publishes(service, copy):
    client = service.test_client()
    text = (copy / "allowance.yaml").read_text(encoding="utf-8").replace("domain: allowance", "domain: allowance_b", 1)
    draft = client.post("/v1/rulesets/drafts?file=allowance-b.yaml", data=text.encode(), headers={**AS_ALICE, **YAML})
    assert draft.status_code == 201 and draft.get_json()["base_version"] is None
    console = _signed_in(service, ALICE)
    page = console.get(f"/console/drafts/{draft.get_json()['draft_id']}")
    assert page.status_code == 200 and "allowance_b" in page.get_data(as_text=True)
    assert _publish(client, draft.get_json()["draft_id"]).status_code == 200
    assert (copy / "allowance-b.yaml").exists() and "allowance_b" in service.extensions["rulesvc"].rulebook.domains
    bad = console.post("/console/drafts", data={"csrf_token": _csrf(console, "/console/drafts"), "name": "notes.txt",
                                                "text": text})
    assert bad.status_code == 400 and "不是规则文件名" in bad.get_data(as_text=True)


def test_stale_detection_does_not_depend_on_which_worker_judged(service, copy):
    """Two drafts from one base, published one after the other through different processes' views."""
    client = service.test_client()
    first = _make_draft(client, _draft_text(copy)).get_json()
    second = _make_draft(client, _draft_text(copy, new='value: "19:00"')).get_json()
    state = service.extensions["rulesvc"]
    stale_view = state.rulebook  # another worker, not reloaded yet
    assert _publish(client, first["draft_id"]).status_code == 200
    with pytest.raises(DraftStale):
        state.publisher.publish(stale_view, second["draft_id"], "alice", "b")


def test_form_edits_refuse_shared_values_and_keep_the_comments_after_a_list(rulebook):
    rebate = rulebook.domains["rebate"]
    shared = rebate.text.replace("      taobao: {working_days: 5,", "      taobao: &taobao {working_days: 5,", 1)
    shared = shared.replace("      tmall: {working_days: 5, wait: 5个工作日 (5 working days)}", "      tmall: *taobao", 1)
    with pytest.raises(EditError, match="anchor"):
        replace_value(shared, find_editable(rebate, "rebate_wait[taobao].working_days"), "7")
    recovery = rulebook.domains["recovery"]
    block = recovery.text.replace("    value: [quick_bank_card]", "    value:\n      - quick_bank_card\n    # kept\n", 1)
    edited = replace_value(block, find_editable(recovery, "coupon_payment_methods"), "quick_bank_card, wallet")
    assert '["quick_bank_card", "wallet"]' in edited and "    # kept\n" in edited
