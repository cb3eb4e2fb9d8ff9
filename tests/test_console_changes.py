"""The console's change workflow (SPEC §12.1), as a policy owner walks it: change one value through the
form, read the review (diff, impact, the changed shipped cases), publish with a reason, see Try answer
the new way, roll back from the versions page."""

from __future__ import annotations

import json
import re

import pytest

from api import create_app

from .conftest import ROOT
from .test_console import flat_form

ALICE, BOB = "alice-console-token", "bob-console-token"
TRY_AT_2030 = "2026-11-20T20:30:00+08:00"


@pytest.fixture
def app(copy, tmp_path, monkeypatch):
    monkeypatch.setenv("RULESVC_ADMIN_TOKENS", f"alice:{ALICE},bob:{BOB}")
    monkeypatch.delenv("RULESVC_ADMIN_TOKEN", raising=False)
    app = create_app(copy, store_url=f"sqlite:///{tmp_path}/store.db", log_url=f"sqlite:///{tmp_path}/log.db",
                     scenarios_dir=ROOT / "tests" / "scenarios")
    yield app
    app.extensions["rulesvc"].decision_log.close()


def _text(response) -> str:
    return response.get_data(as_text=True)


def _csrf(client, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', _text(client.get(path))).group(1)


def _signed_in(app, token: str = ALICE):
    client = app.test_client()
    response = client.post("/console/login", data={"token": token, "csrf_token": _csrf(client, "/console/login")})
    assert response.status_code in (302, 303)
    return client


def _try_contact(client) -> str:
    facts = json.loads((ROOT / "examples" / "recovery-contact.json").read_text(encoding="utf-8"))
    items = facts["order"].pop("items")  # a list of objects: one field per item and key, and their count
    fields = {f"fact.order.items.{index}.{key}": value for index, item in enumerate(items) for key, value in item.items()}
    form = {**flat_form(facts), **fields, "count.order.items": str(len(items)), "now": TRY_AT_2030, "from": "example",
            "csrf_token": _csrf(client, "/console/try/recovery.contact")}
    page = _text(client.post("/console/try/recovery.contact", data=form))
    return re.search(r'class="badge outcome-(\w+)"', page).group(1)


def test_change_a_value_review_publish_and_roll_back(app, copy):
    client = _signed_in(app)
    assert _try_contact(client) == "defer"
    app.extensions["rulesvc"].decision_log.flush()

    form_page = _text(client.get("/console/drafts/edit/recovery"))
    assert 'data-testid="value-sms_window_end"' in form_page and "时间" in form_page
    token = _csrf(client, "/console/drafts/edit/recovery")
    wrong = client.post("/console/drafts/edit/recovery", data={"csrf_token": token, "target": "sms_window_end",
                                                               "value": "21：00"})
    assert wrong.status_code == 400 and 'aria-invalid="true"' in _text(wrong)
    assert "全角冒号" in _text(wrong)  # in Chinese, in the field
    assert app.extensions["rulesvc"].publisher.store.drafts() == []  # refused in the field: nothing drafted

    made = client.post("/console/drafts/edit/recovery", data={"csrf_token": token, "target": "sms_window_end",
                                                              "value": "21:00"})
    assert made.status_code == 302
    review_path = made.headers["Location"]
    review = _text(client.get(review_path))
    assert "sms_window_end" in review and "20:00:00" in review and "21:00:00" in review
    assert review.count('data-testid="changed-case"') == 4
    assert "defer" in review and 'data-testid="replayed"' in review  # the impact of the logged decision
    assert 'data-testid="proofs"' in review

    token = _csrf(client, review_path)
    draft_id = review_path.rsplit("/", 1)[1]
    no_reason = client.post(f"/console/drafts/{draft_id}/publish", data={"csrf_token": token, "reason": " "})
    assert no_reason.status_code == 400 and "请填写原因" in _text(no_reason)
    published = client.post(f"/console/drafts/{draft_id}/publish", data={"csrf_token": token, "reason": "JD 允许到 21:00"})
    assert published.status_code == 302 and published.headers["Location"].endswith("/console/versions")
    assert 'value: "21:00"' in (copy / "recovery.yaml").read_text(encoding="utf-8")
    assert _try_contact(client) == "allow"

    versions = _text(client.get("/console/versions"))
    assert "JD 允许到 21:00" in versions and "alice" in versions and "生效中" in versions
    seed = app.extensions["rulesvc"].publisher.store.publications("recovery")[-1]
    token = _csrf(client, "/console/versions")
    rolled = client.post("/console/versions/rollback", data={"csrf_token": token, "domain": "recovery",
                                                            "version": seed.version, "reason": "回到 20:00"})
    assert rolled.status_code == 302
    assert _try_contact(client) == "defer"
    assert "回到 20:00" in _text(client.get("/console/versions"))


def test_pages_need_an_admin_and_approval_needs_another(app, copy, monkeypatch):
    reader = app.test_client()
    for path in ("/console/drafts", "/console/versions", "/console/drafts/edit/recovery"):
        assert reader.get(path).status_code == 403
    monkeypatch.setenv("RULESVC_PUBLISH_APPROVALS", "2")
    approving = create_app(copy, store_url="sqlite://", log_url="none", scenarios_dir=ROOT / "tests" / "scenarios")
    alice = _signed_in(approving)
    token = _csrf(alice, "/console/drafts/edit/rebate")
    made = alice.post("/console/drafts/edit/rebate", data={"csrf_token": token, "target": "rebate_wait[jd].working_days",
                                                          "value": "25"})
    review_path = made.headers["Location"]
    review = _text(alice.get(review_path))
    assert "rebate_wait[jd].working_days" in review and 'data-testid="approve"' not in review  # not her own
    draft_id = review_path.rsplit("/", 1)[1]
    refused = alice.post(f"/console/drafts/{draft_id}/publish", data={"csrf_token": _csrf(alice, review_path),
                                                                     "reason": "京东改为 25 个工作日"})
    assert refused.status_code == 409 and "另一位管理员" in _text(refused)
    bob = _signed_in(approving, BOB)
    assert bob.post(f"/console/drafts/{draft_id}/approve",
                    data={"csrf_token": _csrf(bob, review_path)}).status_code == 302
    assert alice.post(f"/console/drafts/{draft_id}/publish", data={"csrf_token": _csrf(alice, review_path),
                                                                  "reason": "京东改为 25 个工作日"}).status_code == 302
    assert "working_days: 25" in (copy / "rebate.yaml").read_text(encoding="utf-8")
