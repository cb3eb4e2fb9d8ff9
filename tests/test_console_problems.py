"""A rule file's problems as the console shows them: in Chinese (English on the switch), the file's own
name, and no knock-on problems after the one a person made."""

from __future__ import annotations

from html import unescape

import pytest

from engine import load_rule_file

from .conftest import RULES
from .test_console import app, client, csrf, sign_in, text  # noqa: F401  (app, client: fixtures)

RECOVERY = (RULES / "recovery.yaml").read_text(encoding="utf-8")


def _validate(client, candidate: str, english: bool = False) -> str:  # noqa: F811
    sign_in(client)
    if english:
        client.get("/console/lang/en")
    response = client.post("/console/validate", data={"csrf_token": csrf(client), "text": candidate, "name": "rules.yaml"})
    return unescape(text(response))


@pytest.mark.parametrize(("edit", "zh", "en"), [
    (('value: "20:00"', "value: 21:00"), "常量 sms_window_end：必须加引号：不加引号时 21:00 会被读成数字",
     "constant sms_window_end: must be quoted: unquoted, 21:00 is read as the number 1260"),
    (('value: "20:00"', 'value: "21：00"'), "里用了全角冒号", "has a full-width colon"),
    (("domain: recovery", "domian: recovery"), "文件中有未知的键 'domian'（是不是 'domain'？）",
     "unknown key 'domian' in the file (did you mean 'domain'?)"),
    (("type: time", "type: tmie"), "未知的类型 'tmie'（是不是 'time'？）", "unknown type 'tmie'"),
])
def test_problems_are_in_chinese_and_english_on_the_switch(client, edit, zh, en):  # noqa: F811
    candidate = RECOVERY.replace(*edit, 1)
    assert zh in _validate(client, candidate)
    assert en in _validate(client, candidate, english=True)
    if "domain: recovery" in candidate:  # named after its domain's file, not rules.yaml
        assert "recovery.yaml:" in _validate(client, candidate)


@pytest.mark.parametrize("edit", [("type: time", "type: tmie"), ("domain: recovery", "domian: recovery")])
def test_one_mistake_is_one_problem_not_its_knock_ons(edit):
    old, new = edit
    _, problems = load_rule_file("recovery.yaml", RECOVERY.replace(old, new, 1))
    assert len([p for p in problems if "no rule uses it" in p.message or "cannot compare" in p.message]) == 0, problems
    assert 1 <= len(problems) <= 2  # the unknown type; or the unknown key and the missing domain it leaves


def test_chinese_messages_show_enum_labels_english_ones_the_codes(rulebook):
    import json
    from datetime import datetime

    from .conftest import ROOT

    facts = json.loads((ROOT / "examples" / "recovery-contact.json").read_text(encoding="utf-8"))
    facts["order"]["state"] = "wait_ship"
    result = rulebook.decide("recovery.contact", facts, now=datetime.fromisoformat("2026-11-20T10:00:00+08:00"))
    [reason] = [r for r in result["reasons"] if r["code"] == "ORDER_NOT_AWAITING_PAYMENT"]
    assert "待发货" in reason["message"]["zh"] and "wait_ship" not in reason["message"]["zh"]
    assert "wait_ship" in reason["message"]["en"]


def test_descriptions_written_in_both_languages_are_shown_in_the_readers(client):  # noqa: F811
    page = text(client.get("/console/try/recovery.contact"))
    assert "现在可以给这笔待支付订单发催付短信并绑定支付券吗？" in page and "Send the reminder SMS" not in page
    client.get("/console/lang/en")
    page = text(client.get("/console/try/recovery.contact"))
    assert "Send the reminder SMS and bind the payment coupon" in page and "现在可以给这笔" not in page
