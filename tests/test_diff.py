"""`rulesvc diff` (SPEC §11): rule changes in policy terms; exit 0 when equal, 1 when different."""

from __future__ import annotations

import json
import subprocess

from engine import load_rulebook
from engine.audit.diff import diff_rulebooks

from .conftest import RULES, edit
from .test_decision_log import run_cli


def payout_changes(diff: dict) -> dict:
    return next(domain for domain in diff["domains"] if domain["domain"] == "payout")


def test_equal_directories_exit_0(copy):
    edit(copy, "payout.yaml", "# 京东小额打款", "# 京东小额打款 (a comment changed, and the layout)\n#")
    result = run_cli("diff", str(RULES), str(copy))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No policy change" in result.stdout
    assert json.loads(run_cli("diff", str(RULES), str(copy), "--format", "json").stdout) == {
        "equal": True, "domains": [], "calendar": None}


def test_a_constant_change_names_the_rules_that_read_it(copy):
    edit(copy, "payout.yaml", 'value: "500.00"', 'value: "300.00"')
    result = run_cli("diff", str(RULES), str(copy))
    assert result.returncode == 1
    assert "- constant `max_payout_amount`: 500.00 → 300.00 (read by payout.initiate/amount-limit)" in result.stdout
    diff = json.loads(run_cli("diff", str(RULES), str(copy), "--format", "json").stdout)
    assert payout_changes(diff)["constants"]["changed"] == [{
        "name": "max_payout_amount", "changes": {"value": {"old": "500.00", "new": "300.00"}},
        "read_by": ["payout.initiate/amount-limit"]}]
    assert payout_changes(diff)["decisions"] == []


def test_rule_changes_added_and_removed(copy):
    edit(copy, "payout.yaml", "when: payout.amount > max_payout_amount\n        effect: deny",
         "when: payout.amount >= max_payout_amount\n        effect: deny")
    edit(copy, "payout.yaml", "        effect: deny\n        code: MERCHANT_ARREARS",
         "        effect: review\n        code: MERCHANT_ARREARS")
    edit(copy, "payout.yaml", """      - id: gray-release
        description: Delete this rule when the feature is fully launched.
        when: not store.in_gray_release
        effect: deny
        code: FEATURE_NOT_RELEASED
        source: seed 000 八、3 (目前功能灰度上线中)
""", "")
    edit(copy, "payout.yaml", "  FEATURE_NOT_RELEASED:\n    zh: 小额打款功能灰度上线中，本店铺暂不在测试范围内。\n"
                              "    en: Small payouts are in gray release and this store is not in it yet.\n", "")
    diff = diff_rulebooks(load_rulebook([RULES]), load_rulebook([copy]))
    decisions = {decision["decision"]: decision for decision in payout_changes(diff)["decisions"]}
    assert decisions["payout.enable"]["rules"]["removed"] == [{
        "rule": "gray-release", "effect": "deny", "code": "FEATURE_NOT_RELEASED", "when": "not store.in_gray_release",
        "until": None, "obligations": None, "source": "seed 000 八、3 (目前功能灰度上线中)"}]
    changed = {entry["rule"]: entry["changes"] for entry in decisions["payout.initiate"]["rules"]["changed"]}
    assert changed == {"amount-limit": {"when": {"old": "payout.amount > max_payout_amount",
                                                 "new": "payout.amount >= max_payout_amount"}},
                       "arrears": {"effect": {"old": "deny", "new": "review"}}}
    markdown = run_cli("diff", str(RULES), str(copy)).stdout
    assert "- rule `arrears` effect: `deny` → `review`" in markdown
    assert "- rule `gray-release` removed (was deny FEATURE_NOT_RELEASED when `not store.in_gray_release`)" in markdown


def test_message_and_fact_changes(copy):
    edit(copy, "payout.yaml", "    zh: 商户账户存在欠款，无法完成打款。", "    zh: 商户账户存在欠款，请先还款。")
    edit(copy, "payout.yaml", "          has_arrears: {type: bool, required: true, description: 欠款}",
         "          has_arrears: {type: bool, required: true, description: 欠款}\n"
         "          risk_level: {type: int, minimum: 0}")
    edit(copy, "payout.yaml", "          refunded_amount: {type: money}\n", "")
    edit(copy, "payout.yaml", "coalesce(order.refunded_amount, 0)", "0")
    diff = diff_rulebooks(load_rulebook([RULES]), load_rulebook([copy]))
    payout = payout_changes(diff)
    assert payout["messages"]["changed"] == [{"code": "MERCHANT_ARREARS", "changes": {
        "zh": {"old": "商户账户存在欠款，无法完成打款。", "new": "商户账户存在欠款，请先还款。"}}}]
    initiate = next(d for d in payout["decisions"] if d["decision"] == "payout.initiate")
    assert [entry["fact"] for entry in initiate["facts"]["added"]] == ["store.risk_level"]
    assert [entry["fact"] for entry in initiate["facts"]["removed"]] == ["order.refunded_amount"]
    assert initiate["derived"]["changed"][0]["value"] == "compensated_total"
    markdown = run_cli("diff", str(RULES), str(copy)).stdout
    assert "- message MERCHANT_ARREARS (zh): “商户账户存在欠款，无法完成打款。” → “商户账户存在欠款，请先还款。”" in markdown
    assert "- fact `store.risk_level` added" in markdown


def test_git_revision_against_the_working_tree(tmp_path, copy):
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "rules"], check=True)
    subprocess.run([*git, "commit", "-qm", "rules"], check=True)
    assert run_cli("diff", "--git", "HEAD", str(copy)).returncode == 0
    edit(copy, "rebate.yaml", "jd: {working_days: 20, wait: 20个工作日 (20 working days)}",
         "jd: {working_days: 15, wait: 15个工作日 (15 working days)}")
    result = run_cli("diff", "--git", "HEAD", str(copy))
    assert result.returncode == 1
    assert f"# Rules: {copy}@HEAD → {copy}" in result.stdout
    assert "- table `rebate_wait` changed" in result.stdout
    unknown = run_cli("diff", "--git", "no-such-revision", str(copy))
    assert unknown.returncode == 2 and "cannot read" in unknown.stderr


def test_broken_rules_are_reported_with_positions(copy):
    edit(copy, "payout.yaml", "when: store.has_arrears", "when: store.has_areas")
    result = run_cli("diff", str(RULES), str(copy))
    assert result.returncode == 2
    assert f"{copy}/payout.yaml:" in result.stderr and "store.has_areas" in result.stderr
