"""The policy console in a real browser: Playwright drives Debian's Chromium against `rulesvc serve`.

One server (gunicorn, 2 workers) and one browser for the whole module; each test opens its own
context. Screenshots of every page at 1280 px and 390 px go to ``var/test-output/console/`` (or
``$RULESVC_TEST_OUTPUT/console/``), which git ignores, for a reviewer to look at.
Never Playwright's own browser download: it cannot work here; .ci/run apt-installs chromium.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .conftest import ROOT, RULES
from .servers import _missing, free_port, wait_for_port

CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "browser-test-token-51c8"
WIDE, PHONE = 1280, 390
OUTPUT = Path(os.environ.get("RULESVC_TEST_OUTPUT", ROOT / "var" / "test-output")) / "console"
PAGES = {
    "index": "/console/", "rules-payout": "/console/rules/payout", "rules-recovery": "/console/rules/recovery",
    "rules-rebate": "/console/rules/rebate", "rules-allowance": "/console/rules/allowance",
    "try-payout": "/console/try/payout.initiate", "try-recovery": "/console/try/recovery.contact",
    "scenarios": "/console/scenarios", "validate": "/console/validate", "impact": "/console/impact",
    "log": "/console/log", "calendar": "/console/calendar?year=2026", "calendar-estimated": "/console/calendar?year=2031",
    "login": "/console/login",
}
READER_PAGES = {"log"}  # what was decided: shown after a sign-in (SPEC §7.1)
NOW = "2026-11-20T10:00:00+08:00"


class Server:
    def __init__(self, base: str, log: Path):
        self.base, self.log = base, log


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("console")
    port = free_port()
    log = directory / "server.log"
    env = {**os.environ, "RULESVC_ADMIN_TOKEN": TOKEN}
    env.pop("RULESVC_SECRET_KEY", None)  # the key made in the master must serve both workers
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--rules", str(RULES), "--port", str(port), "--workers", "2",
             "--store", f"sqlite:///{directory}/store.db"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, timeout=60)
        yield Server(f"http://127.0.0.1:{port}", log)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package")
    if not CHROMIUM.exists():
        _missing(str(CHROMIUM))
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=["--no-sandbox"] if os.geteuid() == 0 else [])
        yield launched
        launched.close()


class Watched:
    """A page whose script errors and requests to other hosts are collected."""

    def __init__(self, page, base: str):
        self.page, self.errors, self.foreign = page, [], []
        host = urlsplit(base).netloc
        page.set_default_timeout(15_000)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        page.on("console", lambda message: self.errors.append(f"console.{message.type}: {message.text}")
                if message.type == "error" else None)
        page.on("request", lambda request: self.foreign.append(request.url)
                if urlsplit(request.url).netloc != host and not request.url.startswith(("data:", "about:")) else None)


@pytest.fixture
def open_page(browser, server):
    contexts = []

    def opener(width: int = WIDE) -> Watched:
        context = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN")
        contexts.append(context)
        return Watched(context.new_page(), server.base)

    yield opener
    for context in contexts:
        context.close()


def shot(page, name: str) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True)


def horizontal_overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def sign_in(watched: Watched, server: Server, then: str) -> None:
    page = watched.page
    page.goto(f"{server.base}/console/login?next={then}")
    page.fill("#token", TOKEN)
    page.click("form button[type=submit]")
    page.wait_for_url(f"{server.base}{then}")


def decide(page) -> None:
    with page.expect_navigation():
        page.click("[data-testid=decide]")


# --- every page --------------------------------------------------------------------------------------

@pytest.mark.parametrize("width", [WIDE, PHONE])
def test_every_page_loads_without_script_errors_or_other_hosts(open_page, server, width):
    watched = open_page(width)
    page = watched.page
    for name, path in PAGES.items():
        if name in READER_PAGES:  # (their 403 without it is tested in test_console_security.py)
            sign_in(watched, server, path)
        response = page.goto(server.base + path)
        assert response.status == 200, path
        assert page.locator("html").get_attribute("lang") == "zh-CN"
        assert page.locator("h1").first.is_visible()
        # phone width: the page itself never scrolls sideways (wide tables stack into cards)
        assert horizontal_overflow(page) <= 0, f"{path} scrolls sideways at {width}px"
        shot(page, f"{name}-{width}")
    assert watched.errors == []
    assert watched.foreign == []


# --- try -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("width", [WIDE, PHONE])
def test_try_payout_allowed_then_refused_over_the_limit(open_page, server, width):
    watched = open_page(width)
    page = watched.page
    page.goto(f"{server.base}/console/try/payout.initiate")
    assert page.input_value("#f-payout-amount") == "30.00"  # prefilled from examples/payout-initiate.json
    page.fill("#f-now", NOW)
    decide(page)
    assert page.locator(".outcome-line [data-outcome]").get_attribute("data-outcome") == "allow"
    assert page.locator("table.trace tr.decided").count() == 0
    shot(page, f"try-payout-allow-{width}")

    page.fill("#f-payout-amount", "600.00")
    decide(page)
    assert page.locator(".outcome-line [data-outcome]").get_attribute("data-outcome") == "deny"
    reason = page.locator(".is-reasons [data-code=AMOUNT_OVER_LIMIT]")
    assert reason.is_visible()
    message = reason.inner_text()
    assert "单笔打款金额不能超过 500.00 元。" in message and "A single payout may not exceed 500.00." in message
    decided = page.locator('table.trace tr[data-rule="payout.initiate/amount-limit"]')
    assert "decided" in decided.get_attribute("class").split()
    quiet = page.locator('table.trace tr[data-rule="payout.initiate/arrears"]')
    # the deciding row looks different from a rule that did not fire
    background = "el => getComputedStyle(el).backgroundColor"
    assert decided.evaluate(background) != quiet.evaluate(background)
    decided.scroll_into_view_if_needed()
    shot(page, f"try-payout-deny-{width}")
    assert watched.errors == [] and watched.foreign == []


def test_try_field_error_is_shown_at_its_field(open_page, server):
    watched = open_page(WIDE)
    page = watched.page
    page.goto(f"{server.base}/console/try/payout.initiate")
    page.fill("#f-now", NOW)
    page.fill("#f-payout-amount", "12.345")
    decide(page)
    field = page.locator("#f-payout-amount")
    assert field.get_attribute("aria-invalid") == "true"
    error = page.locator("#f-payout-amount-err")
    assert error.is_visible() and "最多两位小数" in error.inner_text()
    # right under its input, not only in a summary far away
    below, above = error.bounding_box(), field.bounding_box()
    assert 0 <= below["y"] - (above["y"] + above["height"]) < 80
    assert abs(below["x"] - above["x"]) < 40
    assert page.locator("[data-testid=error-summary] a[href='#f-payout-amount']").is_visible()
    assert page.locator("[data-outcome]").count() == 0
    error.scroll_into_view_if_needed()
    shot(page, "try-field-error-1280")


# --- scenarios and validation (admin) ------------------------------------------------------------------------

def test_run_a_shipped_scenario_suite_all_pass_with_coverage(open_page, server):
    watched = open_page(WIDE)
    page = watched.page
    sign_in(watched, server, "/console/scenarios")
    page.check("input[name=file][value='payout-initiate.yaml']")
    with page.expect_navigation():
        page.click("[data-testid=run-selected]")
    summary = page.locator("[data-testid=scenario-summary]")
    assert summary.get_attribute("data-failed") == "0"
    assert int(summary.get_attribute("data-passed")) > 50
    coverage = page.locator('table.coverage[data-decision="payout.initiate"]')
    assert coverage.locator("tbody tr").count() == 15
    fired = coverage.locator('tr[data-rule="payout.initiate/amount-limit"] td.num').first.inner_text()
    assert int(fired) >= 1
    assert coverage.locator("tr.uncovered").count() == 0
    shot(page, "scenarios-run-1280")
    assert watched.errors == [] and watched.foreign == []


def test_validate_a_misspelt_fact_shows_the_problem_at_its_line(open_page, server):
    watched = open_page(WIDE)
    page = watched.page
    sign_in(watched, server, "/console/validate?from=payout")
    text = page.input_value("#text")
    broken = text.replace("when: not store.payout_enabled", "when: not store.payout_enabeld")
    line = broken.split("\n").index("        when: not store.payout_enabeld") + 1
    page.fill("#text", broken)
    with page.expect_navigation():
        page.click("[data-testid=validate]")
    problems = page.locator("[data-testid=problems] li")
    assert problems.count() == 1
    assert f"payout.yaml:{line}:25" in problems.inner_text() and "未声明的事实 store.payout_enabeld" in problems.inner_text()
    at_line = page.locator(f"#L{line}")
    assert "has-problem" in at_line.get_attribute("class")
    assert "（是不是 'payout_enabled'？）" in at_line.inner_text()
    assert at_line.locator("mark").inner_text() == "p"
    problems.locator("a").click()  # the problem links to its line
    assert page.url.endswith(f"#L{line}")
    shot(page, "validate-problem-1280")


def test_a_state_changing_form_without_its_csrf_token_is_refused(open_page, server):
    watched = open_page(WIDE)
    page = watched.page
    sign_in(watched, server, "/console/validate?from=payout")
    page.evaluate("document.querySelector('form[enctype] input[name=csrf_token]').remove()")
    with page.expect_navigation() as navigation:
        page.click("[data-testid=validate]")
    assert navigation.value.status == 400
    assert "表单已过期或缺少安全令牌" in page.inner_text("main")
    shot(page, "csrf-refused-1280")


# --- language, sessions -----------------------------------------------------------------------------------------

def test_switch_to_english_is_remembered_and_switches_back(open_page, server):
    watched = open_page(WIDE)
    page = watched.page
    page.goto(f"{server.base}/console/rules/payout")
    with page.expect_navigation():
        page.click("[data-testid=lang-switch]")
    assert page.url == f"{server.base}/console/rules/payout"
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("nav.nav").inner_text().split("\n")[0] == "Policies"
    other = page.context.new_page()  # a new tab remembers the choice
    other.goto(f"{server.base}/console/calendar?year=2026")
    assert other.locator("h1").inner_text() == "Working days in 2026"
    shot(other, "calendar-en-1280")
    other.close()
    with page.expect_navigation():
        page.click("[data-testid=lang-switch]")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("nav.nav").inner_text().split("\n")[0] == "规则总览"


def test_one_sign_in_is_valid_on_both_workers_and_the_token_is_never_logged(open_page, server):
    watched = open_page(WIDE)
    page = watched.page
    sign_in(watched, server, "/console/scenarios")
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())
    token = page.locator("form input[name=csrf_token]").first.input_value()

    def run_all(_: int) -> int:
        # each run takes long enough that concurrent ones land on different workers; a worker already
        # running one answers 429 (one heavy run per worker) — after accepting the session, like a 200
        request = urllib.request.Request(f"{server.base}/console/scenarios", method="POST",
                                         data=f"all=1&csrf_token={token}".encode(),
                                         headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                assert 'data-failed="0"' in response.read().decode()
                return response.status
        except urllib.error.HTTPError as error:
            assert error.code == 429 and error.headers["Retry-After"], error.code
            return error.code

    def workers_used() -> set[int]:
        log = server.log.read_text(encoding="utf-8")
        entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        return {entry["pid"] for entry in entries if entry.get("path") == "/console/scenarios" and entry.get("method") == "POST"}

    # which worker accepts which connection is the kernel's choice: a few rounds until both have answered
    for _ in range(3):
        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(run_all, range(4)))
        assert 200 in statuses and set(statuses) <= {200, 429}, statuses
        if len(workers_used()) == 2:
            break
    workers = workers_used()
    assert len(workers) == 2, f"the session was used on {len(workers)} worker(s): {workers}"
    log = server.log.read_text(encoding="utf-8")
    assert TOKEN not in log
