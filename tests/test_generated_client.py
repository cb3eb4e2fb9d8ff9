"""A client generated from the service's own /openapi.json (openapi-python-client, as a user would run
it) decides the README's example against a real `rulesvc serve`: the document is good enough to build on."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from .conftest import RULES
from .servers import free_port, wait_for_port

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
# YAML bodies go as bytes (the generator has no YAML media type); no formatter hooks: the code is only run.
CONFIG = "content_type_overrides:\n  application/yaml: application/octet-stream\npost_hooks: []\n"
EXAMPLES = RULES.parent / "examples"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--workers", "1",
                                "--store", f"sqlite:///{tmp_path_factory.mktemp('store')}/store.db"],
                               cwd=RULES.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def generated(served, tmp_path_factory):
    """The generated package, imported; generation must not skip or warn about anything."""
    if not GENERATOR.exists():
        pytest.fail("openapi-python-client is missing: pip install -e '.[dev]'")
    folder = tmp_path_factory.mktemp("client")
    with urllib.request.urlopen(f"{served}/openapi.json", timeout=30) as response:
        (folder / "openapi.json").write_bytes(response.read())
    (folder / "config.yml").write_text(CONFIG, encoding="utf-8")
    result = subprocess.run([str(GENERATOR), "generate", "--path", "openapi.json", "--meta", "none",
                             "--config", "config.yml", "--output-path", "rulesvc_client"],
                            cwd=folder, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("rulesvc_client")
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name.split(".")[0] == "rulesvc_client"]:
            del sys.modules[name]


def _module(package, name: str):
    return importlib.import_module(f"{package.__name__}.{name}")


def test_the_generated_client_decides_the_readme_example(served, generated):
    api = _module(generated, "api.payout.decide_payout_initiate")
    models = _module(generated, "models")
    facts = models.PayoutInitiateFacts.from_dict(json.loads((EXAMPLES / "payout-initiate.json").read_text("utf-8")))
    assert facts.payout.amount == "30.00" and facts.actor.role == models.PayoutInitiateActorRole.SUB
    body = models.DecidePayoutInitiateBody(facts=facts, now=datetime.fromisoformat("2026-11-20T10:00:00+08:00"))
    with generated.Client(base_url=served, raise_on_unexpected_status=True) as client:
        result = api.sync(client=client, body=body)
    assert isinstance(result, models.DecisionResult)
    assert result.outcome == models.DecisionResultOutcome.ALLOW
    assert result.reasons == [] and result.warnings == []
    assert result.obligations.to_dict() == {"sms_verification_required": True}
    assert result.next_eligible_at is None
    assert result.evaluated_at == datetime.fromisoformat("2026-11-20T10:00:00+08:00")
    assert result.ruleset.domain == "payout" and result.ruleset.version.startswith("sha256:")


def test_the_generated_client_reads_a_defer_and_an_error(served, generated):
    api = _module(generated, "api.recovery.decide_recovery_contact")
    models = _module(generated, "models")
    facts = models.RecoveryContactFacts.from_dict(json.loads((EXAMPLES / "recovery-contact.json").read_text("utf-8")))
    body = models.DecideRecoveryContactBody(facts=facts, now=datetime.fromisoformat("2026-11-20T20:00:00+08:00"),
                                            explain=True)
    with generated.Client(base_url=served) as client:
        result = api.sync(client=client, body=body)
        assert result.outcome == models.DecisionResultOutcome.DEFER
        assert [reason.code for reason in result.reasons] == ["OUTSIDE_SMS_WINDOW"]
        assert result.next_eligible_at == datetime.fromisoformat("2026-11-21T09:00:00+08:00")
        window = next(entry for entry in result.trace if entry.rule == "recovery.contact/sms-window")
        assert window.fired is True and window.assumptions == []
        body.now = datetime.fromisoformat("2026-11-20T20:00:00")  # no offset: invalid
        error = api.sync(client=client, body=body)
    assert isinstance(error, models.Error)
    assert error.error.code == "INVALID_REQUEST"  # a bad now is the request's problem
    assert list(error.error.fields.to_dict()) == ["now"]


def test_the_generated_client_lists_rulesets_and_runs_a_batch(served, generated):
    models = _module(generated, "models")
    listing = _module(generated, "api.rulesets.list_rulesets")
    batch = _module(generated, "api.allowance.decide_allowance_withdraw_batch")
    facts = json.loads((EXAMPLES / "allowance-withdraw.json").read_text("utf-8"))
    items = [models.DecideAllowanceWithdrawBatchBodyItemsItem(
                 facts=models.AllowanceWithdrawFacts.from_dict(facts),
                 now=datetime.fromisoformat("2026-11-20T10:00:00+08:00"))]
    with generated.Client(base_url=served) as client:
        rulesets = listing.sync(client=client)
        answered = batch.sync(client=client, body=models.DecideAllowanceWithdrawBatchBody(items=items))
    assert sorted(ruleset.domain for ruleset in rulesets.rulesets) == ["allowance", "payout", "rebate", "recovery"]
    assert rulesets.last_reload.ok is True
    (only,) = answered.results
    assert isinstance(only, models.DecisionResult)
    assert only.values.to_dict() == {"withdrawable_principal": "72.00", "forfeited_bonus": "18.00"}
