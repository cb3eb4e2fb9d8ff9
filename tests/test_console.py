"""The policy console's server side, through Flask's test client: pages, forms, sign-in, CSRF, seams."""

from __future__ import annotations

import json
import re
from datetime import datetime
from html import unescape
from pathlib import Path

import pytest

from api import create_app
from api.console import audit, i18n

from .conftest import ROOT, RULES

TOKEN = "console-test-token-9f3a"
PAGES = ["/console/", "/console/rules/payout", "/console/rules/recovery", "/console/rules/rebate",
         "/console/rules/allowance", "/console/try/payout.initiate", "/console/try/recovery.contact",
         "/console/try/rebate.apply", "/console/scenarios", "/console/validate", "/console/impact", "/console/log",
         "/console/calendar", "/console/login"]
READER_PAGES = {"/console/log"}  # what was decided: only for a signed-in reader (SPEC §7.1)


@pytest.fixture
def app(rulebook, tmp_path, monkeypatch):
    monkeypatch.setenv("RULESVC_ADMIN_TOKEN", TOKEN)
    monkeypatch.delenv("RULESVC_SECRET_KEY", raising=False)
    return create_app(RULES, rulebook=rulebook, store_url=f"sqlite:///{tmp_path}/store.db",
                      log_url=f"sqlite:///{tmp_path}/log.db")


@pytest.fixture
def client(app):
    return app.test_client()


def text(response) -> str:
    return response.get_data(as_text=True)


def csrf(client, path: str = "/console/validate") -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', text(client.get(path)))
    assert match, "the page has no CSRF field"
    return match.group(1)


def sign_in(client) -> None:
    response = client.post("/console/login", data={"token": TOKEN, "csrf_token": csrf(client, "/console/login"),
                                                   "next": "/console/scenarios"})
    assert response.status_code == 302 and response.headers["Location"] == "/console/scenarios"


def example() -> dict:
    return json.loads((ROOT / "examples" / "payout-initiate.json").read_text(encoding="utf-8"))


def flat_form(facts: dict, prefix: str = "") -> dict[str, str]:
    """The Try form's fields for ``facts`` as a browser posts them (objects included, lists one per line)."""
    form: dict[str, str] = {}
    for name, value in facts.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict):
            form[f"present.{path}"] = "1"
            form.update(flat_form(value, f"{path}."))
        elif isinstance(value, list):
            form[f"fact.{path}"] = "\n".join(value)
        elif isinstance(value, bool):
            form[f"fact.{path}"] = "true" if value else "false"
        else:
            form[f"fact.{path}"] = str(value)
    return form


def try_payout(client, changes: dict[str, str] | None = None, now: str = "2026-11-20T10:00:00+08:00"):
    form = {**flat_form(example()), "now": now, "from": "example", "csrf_token": csrf(client, "/console/try/payout.initiate")}
    form.update(changes or {})
    return client.post("/console/try/payout.initiate", data=form)


def row(html: str, rule: str) -> str:
    """The trace row (<tr …>) of ``rule``."""
    match = re.search(rf'<tr class="([^"]*)" data-rule="{re.escape(rule)}"', html)
    assert match, f"no trace row for {rule}"
    return match.group(1)


# --- pages -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_in_chinese_with_assets_from_the_app_only(client, path):
    if path in READER_PAGES:
        sign_in(client)
    response = client.get(path)
    assert response.status_code == 200
    html = text(response)
    assert '<html lang="zh-CN">' in html
    assert "规则控制台" in html
    # Every asset and link stays on this host: no absolute URL in src/href/action.
    assert not re.search(r'(src|href|action)="(https?:)?//', html)
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert response.headers["X-Frame-Options"] == "DENY"


def test_static_assets_are_served_by_the_app(client):
    css = client.get("/console/static/console.css")
    assert css.status_code == 200 and css.mimetype == "text/css" and b"@media (max-width: 720px)" in css.data
    assert client.get("/console/static/favicon.svg").status_code == 200


def test_unknown_pages_are_html_404s(client):
    sign_in(client)  # the log's pages answer 403 before saying whether a decision exists
    for path in ("/console/nothing-here", "/console/rules/nosuch", "/console/try/payout.nosuch", "/console/log/01NOTTHERE"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.mimetype == "text/html" and "404" in text(response)
    assert "nosuch" in text(client.get("/console/rules/nosuch"))


def test_index_lists_the_four_policies_and_their_decisions(client):
    html = text(client.get("/console/"))
    for title in ("京东小额打款", "京东待支付订单挽回", "网店管家订购返款", "京东店铺膨胀金提现"):
        assert title in html
    for decision in ("payout.initiate", "recovery.contact", "rebate.apply", "allowance.withdraw"):
        assert f'href="/console/try/{decision}"' in html


def test_rules_page_renders_the_policy(client):
    html = text(client.get("/console/rules/payout"))
    # facts: type, required, enum values with their labels, description
    assert "payout.reason" in html and "price_difference</code> 补差价" in html
    assert "store.has_arrears" in html and "欠款" in html
    # the amount-limit rule: effect, code, both messages, condition, source
    rule = html[html.index('id="payout-initiate--amount-limit"'):]
    rule = rule[:rule.index("</tr>")]
    assert "effect-deny" in rule and "AMOUNT_OVER_LIMIT" in rule
    assert "单笔打款金额不能超过 {max_payout_amount} 元。" in rule
    assert "A single payout may not exceed {max_payout_amount}." in rule
    assert "payout.amount &gt; max_payout_amount" in rule and "<strong>500.00</strong>" in rule
    assert "seed 000 八、1 (打款金额限制)" in rule
    # linked to the shipped scenario cases that make it fire, each opening Try prefilled
    links = re.findall(r'href="(/console/try/payout.initiate\?from=case:payout-initiate.yaml:\d+)"', rule)
    assert links, "amount-limit should link to the cases that exercise it"
    # constants with notes; assumptions marked
    constant = html[html.index('id="c-max_payout_amount"'):]
    constant = constant[:constant.index("</tr>")]
    assert 'class="assumption"' in constant and "assumption-badge" in constant and "ASSUMPTION to confirm with JD" in constant
    assumption_free = html[html.index('id="c-blocked_order_states"'):]
    assert "assumption-badge" not in assumption_free[:assumption_free.index("</tr>")]


def test_rules_page_shows_tables_and_nested_conditions(client):
    rebate = text(client.get("/console/rules/rebate"))
    assert "rebate_wait" in rebate and "5个工作日" in rebate and "20个工作日" in rebate
    payout = text(client.get("/console/rules/payout"))
    store_type = payout[payout.index('id="payout-enable--store-type"'):]
    store_type = store_type[:store_type.index("</tr>")]
    assert "以下任一成立" in store_type and "以下均不成立" in store_type and "以下全部成立" in store_type


def test_a_rule_link_opens_try_prefilled_with_its_case(client):
    html = text(client.get("/console/rules/payout"))
    rule = html[html.index('id="payout-initiate--amount-limit"'):]
    link = unescape(re.search(r'href="(/console/try/payout.initiate\?from=[^"]+)"', rule).group(1))
    page = text(client.get(link))
    amount = re.search(r'id="f-payout-amount" name="fact.payout.amount" type="text" value="([^"]*)"', page).group(1)
    assert float(amount) > 500  # the case that makes amount-limit fire pays more than the limit
    assert 'name="now" type="text" value="2026-11-20T10:00:00+08:00"' in page


# --- language -----------------------------------------------------------------------------------------

def test_language_switch_is_remembered_and_only_redirects_inside_the_console(client):
    response = client.get("/console/lang/en?next=/console/rules/payout")
    assert response.status_code == 302 and response.headers["Location"] == "/console/rules/payout"
    cookie = response.headers["Set-Cookie"]
    assert "rulesvc_lang=en" in cookie and "Path=/console" in cookie and "Max-Age=" in cookie
    html = text(client.get("/console/"))
    assert '<html lang="en">' in html and "Policies" in html and "规则总览" not in html
    client.get("/console/lang/zh")
    assert '<html lang="zh-CN">' in text(client.get("/console/"))
    for target in ("https://evil.example/console/", "//evil.example/console/", "/v1/rulesets", "/console/../v1",
                   "/console\\..\\v1", "javascript:alert(1)"):
        assert client.get("/console/lang/en", query_string={"next": target}).headers["Location"] == "/console/", target
    assert client.get("/console/lang/fr").status_code == 404


def test_every_text_used_by_a_template_exists_in_both_languages():
    templates = Path(i18n.__file__).parent / "templates"
    used = set()
    for template in templates.rglob("*.html"):
        used |= set(re.findall(r"\bt\('([a-z_.]+)'", template.read_text(encoding="utf-8")))
    assert len(used) > 100, "t('…') calls not found"
    # t('effect.' ~ effect) and the like: some key must complete the prefix
    missing = sorted(key for key in used if key not in i18n.KEYS
                     and not (key.endswith(".") and any(known.startswith(key) for known in i18n.KEYS)))
    assert not missing, missing


def _catalog(locale: str):
    from babel.messages.pofile import read_po

    with (i18n.TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").open("rb") as stream:
        return read_po(stream)


def test_both_catalogs_translate_every_key_and_their_mo_files_are_compiled_from_them():
    from gettext import GNUTranslations

    catalogs = {locale: _catalog(locale) for locale in i18n.LOCALES.values()}
    for locale, catalog in catalogs.items():
        keys = {message.id for message in catalog if message.id}
        assert keys == i18n.KEYS, locale
        assert all(message.string.strip() for message in catalog if message.id), f"{locale}: an empty msgstr"
        mo = i18n.TRANSLATIONS / locale / "LC_MESSAGES" / "messages.mo"
        with mo.open("rb") as stream:
            compiled = GNUTranslations(stream)
        stale = [message.id for message in catalog if message.id and compiled.gettext(message.id) != message.string]
        assert not stale, f"{mo} is older than its .po ({stale[:3]}…): run make messages"


# --- try ------------------------------------------------------------------------------------------------

def test_try_prefills_the_example_and_decides_allow(client):
    page = text(client.get("/console/try/payout.initiate"))
    assert 'value="30.00"' in page and 'value="kefu-01"' in page
    assert '<option value="completed" selected>' in page
    response = try_payout(client)
    assert response.status_code == 200
    html = text(response)
    assert 'data-outcome="allow"' in html
    assert '<dd data-name="sms_verification_required">true</dd>' in html
    # the trace lists every rule of the decision, none of them deciding
    assert html.count('data-rule="payout.initiate/') == 15 and " decided" not in html


def test_try_over_the_limit_is_denied_with_the_rule_row_highlighted(client):
    html = text(try_payout(client, {"fact.payout.amount": "500.01"}))
    assert 'data-outcome="deny"' in html
    reasons = html[html.index('class="reasons is-reasons"'):]
    reasons = reasons[:reasons.index("</ul>")]
    assert 'data-code="AMOUNT_OVER_LIMIT"' in reasons
    assert "单笔打款金额不能超过 500.00 元。" in reasons and "A single payout may not exceed 500.00." in reasons
    assert "decided" in row(html, "payout.initiate/amount-limit").split()
    assert "decided" not in row(html, "payout.initiate/arrears").split()
    # each condition with its value and operands
    amount_row = html[html.index('data-rule="payout.initiate/amount-limit"'):]
    amount_row = amount_row[:amount_row.index("</tr>")]
    assert '<span class="truth">true</span> <code>payout.amount &gt; max_payout_amount</code>' in amount_row
    assert "<code>payout.amount</code> = <code>500.01</code>" in amount_row
    assert "<code>max_payout_amount</code> = <code>500.00</code>" in amount_row
    assert "decided" not in row(text(try_payout(client, {"fact.payout.amount": "500.00"})),
                                "payout.initiate/amount-limit").split()


def test_try_shows_field_errors_next_to_their_fields(client):
    response = try_payout(client, {"fact.payout.amount": "12.345", "fact.order.id": "",
                                   "fact.actor.quota.daily_count_max": "five", "now": "2026-11-20 10:00"})
    assert response.status_code == 400
    html = text(response)
    assert 'data-outcome=' not in html  # invalid input is never a decision

    def field(input_id: str) -> str:
        start = html.rindex('<div class="field', 0, html.index(f'id="{input_id}"'))
        return html[start:html.index("</div>", html.index(f'id="{input_id}"'))]

    amount = field("f-payout-amount")
    assert 'aria-invalid="true"' in amount and "最多两位小数（到分）" in amount
    assert "必填项" in field("f-order-id")
    assert "必须是整数" in field("f-actor-quota-daily_count_max")
    assert "必须是带时区的时刻" in field("f-now") or "必须带时区偏移" in field("f-now")
    summary = html[html.index('data-testid="error-summary"'):]
    assert 'href="#f-payout-amount"' in summary[:summary.index("</div>")]
    # what was typed stays in the form
    assert 'value="12.345"' in amount


def test_try_field_errors_in_english(client):
    client.set_cookie("rulesvc_lang", "en", path="/console")
    html = text(try_payout(client, {"fact.payout.amount": "12.345"}))
    assert "must have at most two decimal places (fen)" in html


def test_try_unticked_optional_object_is_left_out_but_kept_in_the_form(client):
    form = {"present.actor.quota": ""}  # the box is unticked: the browser sends nothing for it
    response = try_payout(client, form)
    html = text(response)
    assert 'data-outcome="deny"' in html and 'data-code="QUOTA_NOT_CONFIGURED"' in html
    quota = html[html.index('id="f-actor-quota"'):]
    assert 'name="present.actor.quota" value="1">' in quota[:600]  # unticked
    assert 'id="f-actor-quota-per_payout_max" name="fact.actor.quota.per_payout_max" type="text" value="50.00"' in html


def test_try_adds_and_removes_list_items_without_deciding(client):
    token = csrf(client, "/console/try/recovery.contact")
    page = text(client.get("/console/try/recovery.contact"))
    count = int(re.search(r'name="count.order.items" value="(\d+)"', page).group(1))
    form = {"csrf_token": token, "count.order.items": str(count), "change": "add:order.items",
            "fact.order.items.0.sku": "sku-1"}
    html = text(client.post("/console/try/recovery.contact", data=form))
    assert f'name="count.order.items" value="{count + 1}"' in html and "data-outcome" not in html
    assert 'name="fact.order.items.0.sku" type="text" value="sku-1"' in html
    form.update({"count.order.items": str(count + 1), "change": "remove:order.items.0"})
    html = text(client.post("/console/try/recovery.contact", data=form))
    assert f'name="count.order.items" value="{count}"' in html


def test_try_from_a_scenario_case_reproduces_its_outcome(client, rulebook):
    page = text(client.get("/console/try/recovery.contact"))
    options = re.findall(r'<option value="(case:recovery-contact.yaml:\d+)"[^>]*>([^<]+)</option>', page)
    assert len(options) > 10
    key = next(key for key, label in options if "20:00" in unescape(label))
    prefilled = text(client.get(f"/console/try/recovery.contact?from={key}"))
    assert 'value="2026-11-20T20:00:00+08:00"' in prefilled


def test_try_an_unknown_decision_is_404(client):
    assert client.post("/console/try/payout.nope", data={"csrf_token": csrf(client)}).status_code == 404


# --- CSRF and sign-in ----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/console/try/payout.initiate", "/console/scenarios", "/console/validate",
                                  "/console/impact", "/console/login", "/console/logout"])
def test_a_form_posted_without_its_csrf_token_is_400(client, path):
    sign_in(client)
    for data in ({}, {"csrf_token": "forged"}):
        response = client.post(path, data=data)
        assert response.status_code == 400, path
        assert "表单已过期或缺少安全令牌" in text(response)


def test_a_csrf_token_of_another_session_is_refused(app, client):
    other = app.test_client()
    assert client.post("/console/validate", data={"csrf_token": csrf(other), "text": "x"}).status_code == 400


def test_running_and_checking_need_the_admin_session(client):
    token = csrf(client, "/console/scenarios")
    for path, data in (("/console/scenarios", {"all": "1"}), ("/console/validate", {"text": "domain: x"}),
                       ("/console/impact", {"text": "domain: x", "name": "payout.yaml"})):
        response = client.post(path, data={**data, "csrf_token": token})
        assert response.status_code == 403, path
        assert 'href="/console/login' in text(response)
    assert "此操作需要管理员令牌" in text(client.get("/console/scenarios"))


def test_sign_in_sets_a_strict_session_that_never_holds_the_token(client, monkeypatch):
    response = client.post("/console/login", data={"token": "wrong", "csrf_token": csrf(client, "/console/login")})
    assert response.status_code == 401 and "令牌不正确" in text(response)
    token = csrf(client, "/console/login")
    response = client.post("/console/login", data={"token": TOKEN, "csrf_token": token, "next": "/console/validate"})
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "rulesvc_console=" in cookie and "SameSite=Strict" in cookie and "HttpOnly" in cookie and "Path=/console" in cookie
    assert "Expires" not in cookie  # a browser-session cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    assert TOKEN not in value and TOKEN not in json.dumps(_session_payload(client, value))
    html = text(client.get("/console/validate"))
    assert "管理员已登录" in html and TOKEN not in html
    # a token change signs every browser out
    monkeypatch.setenv("RULESVC_ADMIN_TOKEN", TOKEN + "-rotated")
    assert "管理员已登录" not in text(client.get("/console/validate"))


def _session_payload(client, cookie_value: str) -> dict:
    """What a signed Flask session cookie carries: signed, not encrypted, so its holder can read it all."""
    app = client.application
    return app.session_interface.get_signing_serializer(app).loads(cookie_value)


def test_sign_out_ends_the_admin_session(client):
    sign_in(client)
    client.post("/console/logout", data={"csrf_token": csrf(client)})
    assert client.post("/console/validate", data={"csrf_token": csrf(client), "text": "x"}).status_code == 403


def test_without_any_token_sign_in_is_off(client, monkeypatch):
    for variable in ("RULESVC_ADMIN_TOKEN", "RULESVC_AUDIT_TOKEN", "RULESVC_QA_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    assert "登录未开启" in text(client.get("/console/login"))
    response = client.post("/console/login", data={"token": "", "csrf_token": csrf(client)})
    assert response.status_code == 403


def test_sessions_are_shared_by_apps_with_the_same_secret(rulebook, tmp_path, monkeypatch):
    """Two app instances (two hosts) accept each other's sessions when RULESVC_SECRET_KEY is shared."""
    monkeypatch.setenv("RULESVC_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("RULESVC_SECRET_KEY", "shared-secret-for-two-hosts")
    first = create_app(RULES, rulebook=rulebook, store_url=f"sqlite:///{tmp_path}/a.db", log_url="none").test_client()
    second = create_app(RULES, rulebook=rulebook, store_url=f"sqlite:///{tmp_path}/b.db", log_url="none").test_client()
    sign_in(first)
    session = first.get_cookie("rulesvc_console", path="/console")
    second.set_cookie("rulesvc_console", session.value, path="/console")
    assert "管理员已登录" in text(second.get("/console/validate"))
    monkeypatch.setenv("RULESVC_SECRET_KEY", "another-secret")
    third = create_app(RULES, rulebook=rulebook, store_url=f"sqlite:///{tmp_path}/c.db", log_url="none").test_client()
    third.set_cookie("rulesvc_console", session.value, path="/console")
    assert "管理员已登录" not in text(third.get("/console/validate"))


def test_the_json_api_sets_no_cookie(client):
    assert "Set-Cookie" not in client.get("/v1/rulesets").headers
    assert "Set-Cookie" not in client.post("/v1/decisions/payout.initiate", json={"facts": example()}).headers


# --- scenarios ---------------------------------------------------------------------------------------

def test_run_a_shipped_suite_all_pass_with_coverage(client):
    sign_in(client)
    response = client.post("/console/scenarios", data={"file": "payout-initiate.yaml", "csrf_token": csrf(client)})
    assert response.status_code == 200
    html = text(response)
    summary = re.search(r'data-passed="(\d+)" data-failed="(\d+)"', html)
    assert int(summary.group(1)) > 50 and summary.group(2) == "0"
    coverage = html[html.index('data-decision="payout.initiate"'):]
    coverage = coverage[:coverage.index("</table>")]
    amount = re.search(r'data-rule="payout.initiate/amount-limit".*?class="num">(\d+)</td>', coverage, re.S)
    assert int(amount.group(1)) >= 1
    assert "100% 的规则被覆盖" in html


def test_run_an_uploaded_scenario_file_shows_expected_vs_actual(client):
    sign_in(client)
    scenario = (ROOT / "tests" / "scenarios" / "payout-initiate.yaml").read_text(encoding="utf-8")
    wrong = re.sub(r"(cases:\n)", r"\1  - name: 故意写错的期望\n    expect: {outcome: deny, reasons: [AMOUNT_OVER_LIMIT]}\n",
                   scenario, count=1)
    from io import BytesIO
    response = client.post("/console/scenarios", data={"csrf_token": csrf(client),
                                                        "upload": (BytesIO(wrong.encode()), "mine.yaml")},
                           content_type="multipart/form-data")
    html = text(response)
    assert re.search(r'data-failed="1"', html)
    failed = html[html.index('data-case="故意写错的期望"'):]
    failed = failed[:failed.index("</tr>")]
    assert "outcome: expected deny, got allow" in failed
    assert "reasons: expected [&#39;AMOUNT_OVER_LIMIT&#39;], got []" in failed


def test_a_broken_uploaded_scenario_file_lists_its_problems(client):
    sign_in(client)
    from io import BytesIO
    broken = b"decision: payout.initiat\ncases:\n  - name: x\n    expect: {outcome: allow}\n"
    html = text(client.post("/console/scenarios", data={"csrf_token": csrf(client), "upload": (BytesIO(broken), "b.yaml")},
                            content_type="multipart/form-data"))
    assert "b.yaml:1:11: unknown decision &#39;payout.initiat&#39;" in html


def test_running_nothing_says_so(client):
    sign_in(client)
    response = client.post("/console/scenarios", data={"csrf_token": csrf(client)})
    assert response.status_code == 400 and "请至少选择一个场景文件" in text(response)


# --- validate and impact --------------------------------------------------------------------------------

def misspelt_payout() -> tuple[str, int]:
    original = (RULES / "payout.yaml").read_text(encoding="utf-8")
    broken = original.replace("when: not store.payout_enabled", "when: not store.payout_enabeld")
    line = broken.splitlines().index("        when: not store.payout_enabeld") + 1
    return broken, line


def test_validate_shows_a_misspelt_fact_at_its_line(client):
    sign_in(client)
    broken, line = misspelt_payout()
    html = text(client.post("/console/validate", data={"csrf_token": csrf(client), "name": "payout.yaml", "text": broken}))
    assert f'<a href="#L{line}"><code>payout.yaml:{line}:25</code></a> 未声明的事实 store.payout_enabeld' in html
    at_line = html[html.index(f'id="L{line}"'):]
    at_line = at_line[:at_line.index("</li>")]
    assert 'class="has-problem"' in at_line and "store.<mark>p</mark>ayout_enabeld" in at_line
    assert "（是不是 &#39;payout_enabled&#39;？）" in at_line


def test_validate_a_valid_file_and_an_upload(client):
    sign_in(client)
    from io import BytesIO
    original = (RULES / "payout.yaml").read_bytes()
    html = text(client.post("/console/validate", data={"csrf_token": csrf(client), "upload": (BytesIO(original), "payout.yaml")},
                            content_type="multipart/form-data"))
    assert 'data-testid="valid"' in html and "领域 payout，3 个决策，23 条规则" in html
    assert "将替换当前的" in html
    # CRLF line ends (a textarea's) are problems at the same lines
    broken, line = misspelt_payout()
    html = text(client.post("/console/validate", data={"csrf_token": csrf(client), "text": broken.replace("\n", "\r\n")}))
    assert f"payout.yaml:{line}:25" in html  # pasted text is reported under its domain's file name


def test_validate_shows_the_proofs_of_the_candidate_in_chinese_and_english(client):
    sign_in(client)
    original = (RULES / "recovery.yaml").read_text(encoding="utf-8")
    html = text(client.post("/console/validate", data={"csrf_token": csrf(client), "name": "recovery.yaml",
                                                       "text": original}))
    assert 'data-testid="proofs"' in html and "规则证明" in html and "3 个决策全部得到证明" in html
    assert 'data-testid="invariant-sms-only-inside-the-window"' in html and "上海时间9点前或20点起绝不发送催付短信。" in html
    # the rule's window moves to 21:00 while the invariant keeps the seed's 20:00: violated, with a witness
    rule_end = '  sms_rule_end:\n    type: time\n    value: "21:00"\n'
    edited = original.replace("  sms_window_end:\n", rule_end + "  sms_window_end:\n").replace(
        "when: local_time < sms_window_start or local_time >= sms_window_end",
        "when: local_time < sms_window_start or local_time >= sms_rule_end")
    client.get("/console/lang/en?next=/console/validate")
    html = text(client.post("/console/validate", data={"csrf_token": csrf(client), "name": "recovery.yaml", "text": edited}))
    row = html[html.index('data-testid="invariant-sms-only-inside-the-window"'):]
    row = row[:row.index("</tr>")]
    assert "violated" in row and "Witness request" in row and "No reminder SMS is sent before 09:00" in row
    assert "1 problems" in html


def test_validate_from_a_file_in_force_prefills_it(client):
    html = text(client.get("/console/validate?from=recovery"))
    assert 'value="recovery.yaml"' in html and "  campaign_close:\n" in html


def test_impact_checks_the_candidate_and_says_replay_is_not_available_without_a_log(rulebook, tmp_path, monkeypatch):
    monkeypatch.setenv("RULESVC_ADMIN_TOKEN", TOKEN)
    client = create_app(RULES, rulebook=rulebook, store_url=f"sqlite:///{tmp_path}/s.db", log_url="none").test_client()
    sign_in(client)
    lowered = (RULES / "payout.yaml").read_text(encoding="utf-8").replace('value: "500.00"', 'value: "300.00"')
    html = text(client.post("/console/impact", data={"csrf_token": csrf(client), "name": "payout.yaml", "text": lowered}))
    assert 'data-testid="impact-unavailable"' in html and "候选文件校验通过" in html
    broken, line = misspelt_payout()
    response = client.post("/console/impact", data={"csrf_token": csrf(client), "name": "payout.yaml", "text": broken})
    assert response.status_code == 400 and f'id="L{line}"' in text(response)


def test_impact_replaces_the_file_of_the_candidates_domain_whatever_the_select_says(app, client):
    """The trial of issue 23: recovery.yaml uploaded while the select still said allowance.yaml."""
    sign_in(client)
    client.post("/v1/decisions/recovery.campaign_close", json={
        "facts": {"campaign": {"id": "c1", "start_at": "2026-11-21T00:00:00+08:00"}}, "now": "2026-11-20T10:00:00+08:00"})
    app.extensions["rulesvc"].decision_log.flush()
    candidate = (RULES / "recovery.yaml").read_text(encoding="utf-8").replace("value: false\n", "value: true\n", 1)
    html = text(client.post("/console/impact", data={"csrf_token": csrf(client, "/console/impact"), "name": "allowance.yaml",
                                                     "text": candidate}))
    assert 'data-testid="replaced-instead"' in html and "将替换 recovery.yaml，而不是所选的 allowance.yaml" in html
    assert "重放 1 个决策" in html and "replay-problems" not in html
    assert 'data-testid="proofs"' in html


IMPACT = {"replayed": 1000, "unchanged": 960, "not_replayable": {"count": 2, "why": {"version not kept": 2}},
          "transitions": {"allow->deny": 38, "deny->allow": 2}, "reasons_added": {"AMOUNT_OVER_LIMIT": 38},
          "reasons_removed": {}, "rules": {"payout.initiate/amount-limit": {"fired_before": 3, "fired_after": 41}},
          "values_changed": {}, "examples": {"allow->deny": ["01JEXAMPLE0000000000000001"]}}


def test_impact_replays_the_decision_log_with_a_lowered_limit(app, client):
    sign_in(client)
    from .test_decision_log import payout

    ids = {amount: client.post("/v1/decisions/payout.initiate", json={
        "facts": payout(amount), "now": "2026-11-20T10:00:00+08:00"}).get_json()["decision_id"]
        for amount in ("40.00", "350.00", "600.00")}
    app.extensions["rulesvc"].decision_log.flush()
    lowered = (RULES / "payout.yaml").read_text(encoding="utf-8").replace('value: "500.00"', 'value: "300.00"')
    html = text(client.post("/console/impact", data={"csrf_token": csrf(client), "name": "payout.yaml", "text": lowered}))
    assert "impact-unavailable" not in html and "重放 3 个决策" in html
    assert html.count('class="bar bar-deny"') == 1
    assert f'href="/console/log/{ids["350.00"]}"' in html and ids["40.00"] not in html


def test_impact_renders_a_replay_report_once_the_seam_provides_one(client, monkeypatch):
    calls = []
    monkeypatch.setattr(audit, "decision_log_available", lambda state: True)
    monkeypatch.setattr(audit, "impact_report", lambda state, name, text: calls.append(name) or IMPACT)
    sign_in(client)
    lowered = (RULES / "payout.yaml").read_text(encoding="utf-8").replace('value: "500.00"', 'value: "300.00"')
    html = text(client.post("/console/impact", data={"csrf_token": csrf(client), "name": "payout.yaml", "text": lowered}))
    assert calls == ["payout.yaml"]
    assert "impact-unavailable" not in html and "重放 1,000 个决策" in html
    assert html.count('class="bar bar-deny"') == 1 and html.count('class="bar bar-allow"') == 1
    assert "38 (3.8%)" in html and "3.80%" in html
    assert 'href="/console/log/01JEXAMPLE0000000000000001"' in html
    assert "AMOUNT_OVER_LIMIT" in html and ">41</td>" in html


# --- log ------------------------------------------------------------------------------------------------

def commit(client, order: str, amount: str = "30.00") -> dict:
    """Commit a payout at 2026-11-20 10:00, by the server's clock too (records are searched by it)."""
    client.application.extensions["rulesvc"].clock = lambda: datetime.fromisoformat("2026-11-20T10:00:00+08:00")
    facts = example()
    facts["order"]["id"] = order
    facts["payout"]["amount"] = amount
    response = client.post("/v1/decisions/payout.initiate", json={"facts": facts, "commit": True,
                                                                  "idempotency_key": f"key-{order}",
                                                                  "now": "2026-11-20T10:00:00+08:00"})
    assert response.status_code == 200
    return response.get_json()


def test_log_lists_committed_records_with_filters_and_csv(client):
    sign_in(client)
    allowed = commit(client, "order-a")
    denied = commit(client, "order-b", "600.00")
    html = text(client.get("/console/log"))
    assert f'data-id="{allowed["decision_id"]}"' in html and f'data-id="{denied["decision_id"]}"' in html
    assert "补差价 (price_difference)" in html
    assert 'data-testid="log-unavailable"' not in html
    only_denied = text(client.get("/console/log?outcome=deny&decision=payout.initiate&from=&to="))
    assert f'data-id="{denied["decision_id"]}"' in only_denied and allowed["decision_id"] not in only_denied
    by_id = text(client.get(f"/console/log?id={allowed['decision_id']}"))
    assert allowed["decision_id"] in by_id and denied["decision_id"] not in by_id
    later = text(client.get("/console/log?from=2026-11-21T00:00:00%2B08:00"))
    assert "没有符合条件的记录" in later
    csv = client.get("/console/log/records.csv?outcome=allow")
    assert csv.mimetype == "text/csv"
    body = csv.get_data(as_text=True)
    assert body.startswith("\ufeff打款单号,订单号,客户账号,打款原因,状态")
    assert "order-a" in body and "补差价" in body and "order-b" not in body


def test_log_filters_are_checked(client):
    sign_in(client)
    response = client.get("/console/log?from=yesterday&outcome=maybe")
    assert response.status_code == 400
    html = text(response)
    assert "筛选条件有误" in html and "outcome" in html


def test_log_decision_is_explained_from_the_decision_log(app, client):
    sign_in(client)
    denied = commit(client, "order-c", "600.00")
    app.extensions["rulesvc"].store.drain()  # a committed decision reaches the log through the store's outbox
    html = text(client.get(f"/console/log/{denied['decision_id']}"))
    assert 'data-testid="reproduced"' in html
    assert "decided" in row(html, "payout.initiate/amount-limit").split()


def test_log_decision_shows_the_stored_result_without_a_log(rulebook, tmp_path, monkeypatch):
    monkeypatch.setenv("RULESVC_ADMIN_TOKEN", TOKEN)
    client = create_app(RULES, rulebook=rulebook, store_url=f"sqlite:///{tmp_path}/s.db", log_url="none").test_client()
    sign_in(client)
    denied = commit(client, "order-c", "600.00")
    html = text(client.get(f"/console/log/{denied['decision_id']}"))
    assert 'data-testid="explain-unavailable"' in html and 'data-outcome="deny"' in html
    assert 'data-code="AMOUNT_OVER_LIMIT"' in html


def test_log_decision_renders_an_explanation_once_the_seam_provides_one(client, monkeypatch, rulebook):
    replayed = rulebook.decide("payout.initiate", {**example(), "payout": {"amount": "600.00", "reason": "other"}},
                               explain=True)
    monkeypatch.setattr(audit, "explain_decision", lambda state, decision_id: {
        "decision_id": decision_id, "reproduced": True, "logged": {"outcome": "deny"}, "replayed": replayed, "why_not": None})
    sign_in(client)
    html = text(client.get("/console/log/01JANYTHING"))
    assert 'data-testid="reproduced"' in html
    assert "decided" in row(html, "payout.initiate/amount-limit").split()


# --- calendar ----------------------------------------------------------------------------------------------

def test_calendar_marks_holidays_make_up_days_and_estimated_years(client):
    html = text(client.get("/console/calendar?year=2026"))
    assert 'data-testid="official"' in html
    assert re.search(r'<td class="holiday" data-date="2026-10-01"', html)
    assert re.search(r'<td class="makeup" data-date="2026-10-10"', html)
    assert re.search(r'<td class="weekend" data-date="2026-11-21"', html)
    assert re.search(r'<td class="workday" data-date="2026-11-20"', html)
    estimated = text(client.get("/console/calendar?year=2031"))
    assert 'data-testid="estimated"' in estimated and "CALENDAR_ESTIMATED" in estimated
    assert client.get("/console/calendar?year=99999").status_code == 400


def test_the_log_page_lists_entries_by_when_they_were_decided_and_shows_their_now():
    """Two workers' entries reach the log in batches, a little out of order (the issue 23 trial)."""
    from types import SimpleNamespace

    logged = [{"decision_id": "b", "evaluated_at": "2026-11-20T10:00:02+08:00", "now": "2026-11-20T09:00:00+08:00"},
              {"decision_id": "c", "evaluated_at": "2026-11-20T10:00:03+08:00", "now": "2026-11-20T08:00:00+08:00"},
              {"decision_id": "a", "evaluated_at": "2026-11-20T02:00:01Z", "now": "2026-11-20T07:00:00+08:00"}]
    state = SimpleNamespace(decision_log=SimpleNamespace(database=SimpleNamespace(query=lambda query: list(logged))))
    entries = audit.find_log_entries(state, audit.Filters())
    assert [entry["decision_id"] for entry in entries] == ["c", "b", "a"]


def test_the_log_page_shows_the_decisions_now_beside_the_server_time(app, client, monkeypatch):
    monkeypatch.setenv("RULESVC_AUDIT_TOKEN", "audit-secret")
    client.post("/v1/decisions/recovery.campaign_close", json={
        "facts": {"campaign": {"id": "c1", "start_at": "2026-11-21T00:00:00+08:00"}}, "now": "2026-11-20T10:00:00+08:00"})
    app.extensions["rulesvc"].decision_log.flush()
    sign_in(client)
    html = text(client.get("/console/log"))
    assert "决策的 now" in html and "<code>2026-11-20T10:00:00+08:00</code>" in html
