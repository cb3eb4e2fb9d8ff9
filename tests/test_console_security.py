"""Issue 20, a hostile caller's report: each attack as it was made, and what the service answers now —
revoked sessions, throttled token guessing, checked ``next=``, Secure cookies, audit reads in the
console, nosniff and the docs page's CSP."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.error
import urllib.request
from http.cookiejar import CookieJar

import pytest

import api.auth
from api import access, create_app

from .conftest import RULES
from .servers import free_port, wait_for_port
from .test_console import TOKEN, commit, csrf, sign_in, text

AUDIT_TOKEN = "audit-test-token-51c2"
QA_TOKEN = "qa-test-token-7e0d"
ATTACKER = {"REMOTE_ADDR": "203.0.113.9"}
COLLEAGUE = {"REMOTE_ADDR": "198.51.100.4"}


@pytest.fixture
def tokens(monkeypatch):
    monkeypatch.setenv("RULESVC_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("RULESVC_AUDIT_TOKEN", AUDIT_TOKEN)
    monkeypatch.setenv("RULESVC_QA_TOKEN", QA_TOKEN)
    monkeypatch.setenv("RULESVC_SECRET_KEY", "one-secret-for-every-worker")
    monkeypatch.delenv(access.URL_VARIABLE, raising=False)


def make_app(rulebook, tmp_path):
    """One worker of the service whose state is in ``tmp_path`` (another call: another worker)."""
    return create_app(RULES, rulebook=rulebook, store_url=f"sqlite:///{tmp_path}/store.db",
                      log_url=f"sqlite:///{tmp_path}/log.db")


@pytest.fixture
def app(tokens, rulebook, tmp_path):
    return make_app(rulebook, tmp_path)


@pytest.fixture
def client(app):
    return app.test_client()


def session_cookie(client) -> str:
    return client.get_cookie("rulesvc_console", path="/console").value


def sign_in_with(client, token: str, **kwargs):
    return client.post("/console/login", data={"token": token, "csrf_token": csrf(client, "/console/login")}, **kwargs)


def validate(client):
    return client.post("/console/validate", data={"csrf_token": csrf(client), "text": "domain: x"})


# --- 1. logout revokes the session, in every worker -------------------------------------------------

def test_a_cookie_saved_before_logout_is_refused_after_it(client):
    sign_in(client)
    saved = session_cookie(client)
    assert validate(client).status_code == 200
    client.post("/console/logout", data={"csrf_token": csrf(client)})
    client.set_cookie("rulesvc_console", saved, path="/console")  # the attacker's copy, restored
    assert "管理员已登录" not in text(client.get("/console/validate"))
    assert client.post("/console/validate", data={"csrf_token": "anything", "text": "x"}).status_code in (400, 403)
    # with a CSRF token of that very session (read from its own page before the logout) it is still refused
    assert validate(client).status_code == 403


def test_a_logout_in_one_worker_revokes_the_session_in_the_others(tokens, rulebook, tmp_path):
    first, second = make_app(rulebook, tmp_path).test_client(), make_app(rulebook, tmp_path).test_client()
    sign_in(first)
    second.set_cookie("rulesvc_console", session_cookie(first), path="/console")
    assert validate(second).status_code == 200  # one session, valid on both workers
    first.post("/console/logout", data={"csrf_token": csrf(first)})
    assert validate(second).status_code == 403


def test_signing_in_again_revokes_the_session_held_before(client):
    sign_in(client)
    before = session_cookie(client)
    sign_in(client)
    client.set_cookie("rulesvc_console", before, path="/console")
    assert validate(client).status_code == 403


def test_the_json_api_never_reads_the_access_database(app, client, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the access database was read")

    monkeypatch.setattr(access.AccessDatabase, "_opened", refuse)
    assert client.post("/v1/decisions/payout.initiate", json={"facts": {}}).status_code == 400
    assert client.get("/v1/rulesets").status_code == 200
    assert client.post("/v1/rulesets/reload").status_code == 401  # no token: no guess, nothing counted


# --- 2. token guessing is throttled per client address ----------------------------------------------

def test_ten_wrong_sign_ins_from_one_address_then_429_even_with_the_right_token(app, client):
    for attempt in range(access.MAX_FAILURES):
        assert sign_in_with(client, f"guess-{attempt}", environ_base=ATTACKER).status_code == 401
    throttled = sign_in_with(client, TOKEN, environ_base=ATTACKER)
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= access.WINDOW_SECONDS
    assert "令牌错误次数过多" in text(throttled)
    colleague = app.test_client()  # another address signs in as ever
    assert sign_in_with(colleague, TOKEN, environ_base=COLLEAGUE).status_code == 302
    ledger = app.extensions[access.EXTENSION]
    now = ledger.clock()
    ledger.clock = lambda: now + access.WINDOW_SECONDS + 1  # a minute later the address may try again
    assert sign_in_with(client, TOKEN, environ_base=ATTACKER).status_code == 302


def test_300_wrong_admin_tokens_are_throttled_in_every_worker(tokens, rulebook, tmp_path):
    workers = [make_app(rulebook, tmp_path).test_client() for _ in range(2)]
    statuses = [workers[attempt % 2].post("/v1/rulesets/reload", headers={"Authorization": f"Bearer guess-{attempt}"},
                                          environ_base=ATTACKER).status_code for attempt in range(300)]
    assert statuses[:access.MAX_FAILURES] == [401] * access.MAX_FAILURES
    assert set(statuses[access.MAX_FAILURES:]) == {429}
    answer = workers[0].post("/v1/rulesets/reload", headers={"Authorization": f"Bearer {TOKEN}"}, environ_base=ATTACKER)
    assert answer.status_code == 429 and answer.get_json()["error"]["code"] == "TOO_MANY_REQUESTS"
    assert int(answer.headers["Retry-After"]) >= 1
    right = workers[1].post("/v1/rulesets/reload", headers={"Authorization": f"Bearer {TOKEN}"}, environ_base=COLLEAGUE)
    assert right.status_code == 200


def test_the_openapi_document_lists_the_throttle_where_a_token_is_checked(client):
    reload = client.get("/openapi.json").get_json()["paths"]["/v1/rulesets/reload"]["post"]["responses"]
    assert "Retry-After" in reload["429"]["headers"]


# --- 3. next= is checked -------------------------------------------------------------------------------

BAD_NEXT = ["/console/\r\nX:1", "/console/\nSet-Cookie:x=1", "/console/\x00", "https://evil.example/console/",
            "//evil.example/console/", "/console//evil.example", "\\\\evil.example", "/console\\..\\v1",
            "/v1/rulesets", "/console/../v1/rulesets", "/console/%2e%2e/v1/rulesets", "javascript:alert(1)",
            "/consolex", "/console/\u2028", ""]


@pytest.mark.parametrize("target", BAD_NEXT)
def test_a_bad_next_goes_to_the_console_index_never_500(client, target):
    switched = client.get("/console/lang/en", query_string={"next": target})
    assert switched.status_code == 302 and switched.headers["Location"] == "/console/"
    form = client.get("/console/login", query_string={"next": target})
    assert form.status_code == 200 and 'name="next" value="/console/"' in text(form)
    signed_in = client.post("/console/login", data={"token": TOKEN, "next": target,
                                                     "csrf_token": csrf(client, "/console/login")})
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/console/"


def test_the_reported_next_is_a_redirect_home(client):
    response = client.get("/console/lang/en?next=/console/%0d%0aX:1")
    assert response.status_code == 302 and response.headers["Location"] == "/console/"
    assert "X" not in response.headers


def test_a_good_next_is_kept(client):
    response = client.get("/console/lang/en", query_string={"next": "/console/log?outcome=deny"})
    assert response.headers["Location"] == "/console/log?outcome=deny"


# --- 4. Secure cookies over https ------------------------------------------------------------------------

def test_cookies_are_secure_when_served_over_https(app):
    secure = app.test_client()
    response = secure.post("/console/login", base_url="https://console.example",
                           data={"token": TOKEN, "csrf_token": csrf_over(secure, "https://console.example")})
    assert response.status_code == 302 and "; Secure" in response.headers["Set-Cookie"]
    assert "; Secure" in secure.get("/console/lang/en", base_url="https://console.example").headers["Set-Cookie"]
    plain = app.test_client()
    assert "; Secure" not in plain.get("/console/lang/en").headers["Set-Cookie"]
    assert "; Secure" not in sign_in_response(plain).headers["Set-Cookie"]


def test_a_forwarded_proto_header_is_not_trusted_by_the_app(app):
    client = app.test_client()
    response = client.get("/console/lang/en", headers={"X-Forwarded-Proto": "https"})
    assert "; Secure" not in response.headers["Set-Cookie"]  # gunicorn decides that, for the proxies it trusts


def csrf_over(client, base_url: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', text(client.get("/console/login", base_url=base_url)))
    assert match
    return match.group(1)


def sign_in_response(client):
    return client.post("/console/login", data={"token": TOKEN, "csrf_token": csrf(client, "/console/login")})


# --- 5. the console compares tokens as the API does ------------------------------------------------------

def test_the_console_sign_in_uses_the_apis_token_check(client, monkeypatch):
    seen = []
    original = api.auth.token_matches

    def spy(supplied, *expected):
        seen.append(supplied)
        return original(supplied, *expected)

    monkeypatch.setattr(api.auth, "token_matches", spy)
    sign_in_with(client, "not-the-token")
    assert seen == ["not-the-token"]


# --- 6. audit reads in the console ---------------------------------------------------------------------

READ_PAGES = ["/console/log", "/console/log/records.csv", "/console/log/01JANYTHING"]


@pytest.mark.parametrize("path", READ_PAGES)
def test_pages_showing_decisions_ask_for_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 403
    html = text(response)
    assert "查看决策记录需要审计令牌" in html and 'href="/console/login?next=' in html
    client.set_cookie("rulesvc_lang", "en", path="/console")
    assert "Reading decisions needs the audit token" in text(client.get(path))


def test_the_audit_token_reads_in_clear_but_runs_nothing(app, client):
    committed = commit(client, "order-audit")
    app.extensions["rulesvc"].decision_log.flush()
    assert sign_in_with(client, AUDIT_TOKEN).status_code == 302
    html = text(client.get("/console/log"))
    assert "审计员已登录" in html and committed["decision_id"] in html
    assert "jd_buyer_1" in html and 'data-testid="masked"' not in html
    assert "jd_buyer_1" in client.get("/console/log/records.csv").get_data(as_text=True)
    assert client.get(f"/console/log/{committed['decision_id']}").status_code == 200
    assert validate(client).status_code == 403  # reading only: no admin actions
    assert "此操作需要管理员令牌" in text(client.get("/console/scenarios"))


def test_the_qa_token_reads_with_sensitive_facts_masked(app, client):
    committed = commit(client, "order-qa")
    assert sign_in_with(client, QA_TOKEN).status_code == 302
    html = text(client.get("/console/log"))
    assert "QA 已登录" in html and committed["decision_id"] in html and 'data-testid="masked"' in html
    assert "jd_buyer_1" not in html and "hmac:" in html
    csv = client.get("/console/log/records.csv").get_data(as_text=True)
    assert "order-qa" in csv and "jd_buyer_1" not in csv and "hmac:" in csv
    detail = text(client.get(f"/console/log/{committed['decision_id']}"))
    assert "jd_buyer_1" not in detail
    assert validate(client).status_code == 403


def test_the_admin_token_reads_in_clear(client):
    commit(client, "order-admin")
    sign_in(client)
    assert "jd_buyer_1" in text(client.get("/console/log"))


# --- 7. nosniff everywhere, a CSP on /docs ----------------------------------------------------------------

def test_every_answer_says_nosniff(client):
    for response in (client.get("/healthz"), client.get("/v1/rulesets"), client.get("/v1/nothing"),
                     client.post("/v1/decisions/payout.initiate", data="x", content_type="text/plain"),
                     client.get("/openapi.json"), client.get("/docs"), client.get("/console/")):
        assert response.headers["X-Content-Type-Options"] == "nosniff", response.request.path


def test_the_docs_page_has_a_policy_and_no_inline_script(client):
    page = client.get("/docs")
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in policy and "connect-src 'self'" in policy
    html = text(page)
    assert not re.search(r"<script>(?!</script>)", html)  # every script is a file of this host
    start = client.get("/docs/rulesvc-start.js")
    assert start.status_code == 200 and "SwaggerUIBundle" in text(start) and start.mimetype == "text/javascript"


# --- the attack on the service as shipped: gunicorn, 2 workers ----------------------------------------------

@pytest.mark.slow
def test_under_gunicorn_a_revoked_cookie_is_refused_by_every_worker(tmp_path):
    port = free_port()
    env = {"RULESVC_ADMIN_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"}
    server = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--workers", "2",
                               "--store", f"sqlite:///{tmp_path}/store.db", "--log", "none"], cwd=RULES.parent,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/console"
    try:
        wait_for_port(port, timeout=30)
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar := CookieJar()))
        token = re.search(r'name="csrf_token" value="([^"]+)"', browser.open(f"{base}/login").read().decode()).group(1)
        browser.open(f"{base}/login", data=f"token={TOKEN}&csrf_token={token}".encode())
        saved = next(cookie.value for cookie in jar if cookie.name == "rulesvc_console")
        page = browser.open(f"{base}/validate").read().decode()
        form_token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        browser.open(f"{base}/logout", data=f"csrf_token={form_token}".encode())
        statuses = set()
        for _ in range(20):  # enough requests to reach both workers
            replay = urllib.request.Request(f"{base}/validate", data=f"csrf_token={form_token}&text=x".encode(),
                                            headers={"Cookie": f"rulesvc_console={saved}"})
            try:
                statuses.add(urllib.request.urlopen(replay, timeout=30).status)
            except urllib.error.HTTPError as error:
                statuses.add(error.code)
        assert statuses == {403}
    finally:
        server.terminate()
        server.wait(timeout=30)
