"""Rule-file validation: one test per class of problem, each asserting FILE:LINE:COL."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from engine import RuleFileError, check, load_rule_file, load_rulebook, rule_file_schema

from .conftest import RULES

VALID = textwrap.dedent("""\
    domain: shop
    source: seed test
    enums:
      channel: [pop, self_operated]
    constants:
      max_amount: {type: money, value: "500.00"}
    codes:
      TOO_MUCH:
        zh: 金额 {payout.amount} 超过 {max_amount}
        en: "{payout.amount} is more than {max_amount}"
      WRONG_CHANNEL:
        zh: 渠道不符
        en: wrong channel
    decisions:
      pay:
        facts:
          store:
            type: object
            required: true
            fields:
              channel: {type: channel, required: true}
          payout:
            type: object
            required: true
            fields:
              amount: {type: money, required: true}
        rules:
          - id: amount-limit
            when: payout.amount > max_amount
            effect: deny
            code: TOO_MUCH
            source: test
          - id: channel
            when: store.channel != 'pop'
            effect: deny
            code: WRONG_CHANNEL
            source: test
    """)


def problems_for(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "shop.yaml"
    path.write_text(text, encoding="utf-8")
    _, problems = check([path])
    return [str(problem).replace(str(tmp_path) + "/", "") for problem in problems]


def edited(old: str, new: str) -> str:
    assert old in VALID, old
    return VALID.replace(old, new, 1)


def test_the_base_file_is_valid(tmp_path):
    assert problems_for(tmp_path, VALID) == []


def test_yaml_syntax_error(tmp_path):
    text = edited("  channel: [pop, self_operated]", "  channel: [pop, self_operated")
    problems = problems_for(tmp_path, text)
    # where the parser notices the missing ']' and how it words it are PyYAML's: assert the line it is on or after
    assert len(problems) == 1
    assert re.match(r"shop\.yaml:(5|6):\d+: YAML syntax error: \S", problems[0]), problems


def test_unknown_key_with_did_you_mean(tmp_path):
    text = edited("        effect: deny\n        code: TOO_MUCH", "        efect: deny\n        code: TOO_MUCH")
    problems = problems_for(tmp_path, text)
    assert "shop.yaml:30:9: unknown key 'efect' in decisions.pay.rules[0] (did you mean 'effect'?)" in problems
    assert "shop.yaml:28:9: decisions.pay.rules[0]: missing required key 'effect'" in problems


def test_wrong_type(tmp_path):
    problems = problems_for(tmp_path, edited("      channel: {type: channel, required: true}",
                                             "      channel: {type: channel, required: yes please}"))
    assert problems == ["shop.yaml:21:46: decisions.pay.facts.store.fields.channel.required: expected boolean, got string"]


def test_unknown_fact_type(tmp_path):
    problems = problems_for(tmp_path, edited("amount: {type: money, required: true}", "amount: {type: mony, required: true}"))
    assert ("shop.yaml:26:26: unknown type 'mony' (did you mean 'money'?); use one of bool, int, money, "
                        "str, instant, date, time, duration, object, list, [T] or an enum declared under enums") in problems
    # the placeholders and the condition that name payout.amount follow from it
    assert len(problems) == 4


def test_undeclared_fact_points_at_the_misspelt_part(tmp_path):
    problems = problems_for(tmp_path, edited("when: payout.amount > max_amount", "when: payout.amont > max_amount"))
    assert problems == ["shop.yaml:29:22: undeclared fact payout.amont (did you mean 'amount'?)"]


def test_undeclared_root_name(tmp_path):
    problems = problems_for(tmp_path, edited("when: store.channel != 'pop'", "when: shop.channel != 'pop'"))
    assert problems == ["shop.yaml:34:15: undeclared fact shop.channel"]


def test_unknown_operator(tmp_path):
    problems = problems_for(tmp_path, edited("when: payout.amount > max_amount", "when: payout.amount ** 2 > max_amount"))
    assert problems == ["shop.yaml:29:15: operator '**' is not allowed (use + - * /)"]


def test_unknown_function(tmp_path):
    problems = problems_for(tmp_path, edited("when: payout.amount > max_amount", "when: maxx(payout.amount) > max_amount"))
    assert len(problems) == 1
    assert problems[0].startswith("shop.yaml:29:15: unknown function maxx() (did you mean 'max'?)")


def test_python_that_is_not_the_rule_language(tmp_path):
    problems = problems_for(tmp_path, edited("when: payout.amount > max_amount",
                                             "when: __import__('os').system('true')"))
    assert problems == ["shop.yaml:29:15: only the rule language's functions can be called"]


def test_enum_value_not_in_enum(tmp_path):
    problems = problems_for(tmp_path, edited("when: store.channel != 'pop'", "when: store.channel != 'popp'"))
    assert problems == ["shop.yaml:34:32: 'popp' is not a value of enum channel (did you mean 'pop'?); "
                        "values: pop, self_operated"]


def test_duplicate_rule_id(tmp_path):
    problems = problems_for(tmp_path, edited("      - id: channel", "      - id: amount-limit"))
    assert problems == ["shop.yaml:33:13: duplicate rule id 'amount-limit' (first used by rule 1 of shop.pay)"]


def test_code_without_messages(tmp_path):
    problems = problems_for(tmp_path, edited("        code: WRONG_CHANNEL", "        code: WRONG_CHANEL"))
    assert "shop.yaml:36:15: reason code WRONG_CHANEL has no messages; add it under codes with zh and en " \
           "(did you mean 'WRONG_CHANNEL'?)" in problems


def test_undefined_constant(tmp_path):
    problems = problems_for(tmp_path, edited("when: payout.amount > max_amount", "when: payout.amount > max_amont"))
    assert problems == ["shop.yaml:29:31: undeclared name 'max_amont' (did you mean 'max_amount'?)"]


def test_type_mismatch_in_a_comparison(tmp_path):
    problems = problems_for(tmp_path, edited("when: store.channel != 'pop'", "when: store.channel > 3"))
    assert problems == ["shop.yaml:34:31: cannot compare enum channel with int"]


def test_condition_must_be_true_or_false(tmp_path):
    problems = problems_for(tmp_path, edited("when: payout.amount > max_amount", "when: payout.amount"))
    assert problems == ["shop.yaml:29:15: expression must be bool, but it is money"]


def test_message_placeholder_naming_an_undeclared_fact(tmp_path):
    problems = problems_for(tmp_path, edited("zh: 金额 {payout.amount} 超过", "zh: 金额 {payout.amout} 超过"))
    assert problems == ["shop.yaml:9:20: in message placeholder: undeclared fact payout.amout (did you mean 'amount'?)"]


def test_folded_multi_line_condition_reports_the_right_line(tmp_path):
    problems = problems_for(tmp_path, edited(
        "        when: payout.amount > max_amount",
        "        when: >-\n          payout.amount > max_amount\n          or store.chanel == 'pop'"))
    assert problems == ["shop.yaml:31:20: undeclared fact store.chanel (did you mean 'channel'?)"]


def test_every_problem_is_reported_in_one_pass(tmp_path):
    text = edited("when: payout.amount > max_amount", "when: payout.amont > max_amount")
    text = text.replace("when: store.channel != 'pop'", "when: store.channel != 'popp'")
    text = text.replace("        effect: deny\n        code: WRONG", "        efect: deny\n        code: WRONG")
    assert len(problems_for(tmp_path, text)) == 4  # two expressions, the unknown key, the missing effect


def test_a_failing_file_is_never_activated(tmp_path):
    (tmp_path / "shop.yaml").write_text(edited("when: store.channel != 'pop'", "when: store.chanel != 'pop'"))
    with pytest.raises(RuleFileError) as raised:
        load_rulebook([tmp_path])
    assert [problem.line for problem in raised.value.problems] == [34]


def test_shipped_rules_are_valid():
    domains, problems = check([RULES])
    assert problems == []
    assert {domain.name for domain in domains} >= {"payout"}


@pytest.mark.parametrize("mutation", ["delete", "append", "indent"])
def test_no_edit_of_a_line_crashes_the_validator(mutation):
    """Whatever a person does to one line of payout.yaml, the answer is problems or a domain, never a traceback."""
    lines = (RULES / "payout.yaml").read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        changed = {"delete": [], "append": [line + " 5"], "indent": ["  " + line]}[mutation]
        text = "\n".join(lines[:index] + changed + lines[index + 1:])
        domain, problems = load_rule_file("payout.yaml", text)
        assert (domain is None) == bool(problems), f"line {index + 1}"
        assert all(problem.line >= 1 and problem.column >= 1 for problem in problems)


def test_the_published_schema_is_a_valid_json_schema():
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(rule_file_schema())


# --- messages in words (issue 14): what a person typed wrong, not what the parser could not read ----------

def _with(old: str, new: str) -> str:
    assert old in VALID
    return VALID.replace(old, new)


def test_a_key_indented_less_than_its_siblings_says_so(tmp_path):
    text = _with("        effect: deny\n        code: TOO_MUCH", "       effect: deny\n        code: TOO_MUCH")
    # ours up to the parser's own words, which are libyaml's (the pure-Python parser words it otherwise)
    [problem] = problems_for(tmp_path, text)
    ours = ("shop.yaml:30:8: YAML syntax error: this line is indented 7 spaces but line 29 above it 8: keys of one "
            "mapping must line up exactly; indent it like the keys it belongs with (the YAML parser says: ")
    assert problem.startswith(ours) and problem.endswith(")") and len(problem) > len(ours) + 1, problem


def test_a_key_indented_more_than_the_value_above_says_what_to_indent(tmp_path):
    text = _with("        effect: deny\n        code: TOO_MUCH", "          effect: deny\n        code: TOO_MUCH")
    assert problems_for(tmp_path, text) == [
        "shop.yaml:30:17: YAML syntax error: this line is indented more than 'when:' on line 29, so YAML reads "
        "it as the rest of that value; indent it 8 spaces to line it up with 'when:' (or, if the value on line 29 "
        "contains ': ', put that value in quotes)"]


def test_a_value_with_a_colon_is_told_to_be_quoted(tmp_path):
    text = _with("    zh: 渠道不符", "    zh: 注意: 渠道不符")
    assert problems_for(tmp_path, text) == [
        "shop.yaml:12:11: YAML syntax error: this value contains ': ', which YAML reads as another key; put the "
        "whole value in quotes (e.g. zh: \"注意: …\")"]


@pytest.mark.parametrize(("written", "column", "instead"), [
    ("store.channel = 'pop'", 29, "'=' sets a value in programming languages; did you mean '=='?"),
    ("store.channel != 'pop' && payout.amount > 0", 38, "'&&' is not an operator here; did you mean 'and'?"),
    ("store.channel != 'pop' || payout.amount > 0", 38, "'||' is not an operator here; did you mean 'or'?"),
    ("store.channel === 'pop'", 29, "'===' is not an operator here; did you mean '=='?"),
])
def test_operators_of_other_languages_get_a_did_you_mean(tmp_path, written, column, instead):
    text = _with("when: store.channel != 'pop'", f"when: {written}")
    assert problems_for(tmp_path, text) == [f"shop.yaml:34:{column}: syntax error in expression: {instead}"]


def test_a_negation_written_with_a_bang_is_explained(tmp_path):
    text = _with("when: store.channel != 'pop'", "when: !(store.channel == 'pop')")
    problems = problems_for(tmp_path, text)
    assert len(problems) == 1 and problems[0].startswith("shop.yaml:34:")
    assert "YAML reads !(store.channel as a tag; write a negation as not (…), e.g. when: not (x > 0)" in problems[0]


def test_a_full_width_space_in_a_condition_is_named(tmp_path):
    text = _with("when: store.channel != 'pop'", "when: store.channel\u3000!= 'pop'")
    assert problems_for(tmp_path, text) == [
        "shop.yaml:34:28: a full-width space (U+3000 IDEOGRAPHIC SPACE, 全角空格) here: rule files need the "
        "ASCII space (switch the input method to half-width)"]


def test_a_full_width_parenthesis_in_a_condition_is_named(tmp_path):
    text = _with("when: store.channel != 'pop'", "when: not （store.channel == 'pop')")
    assert problems_for(tmp_path, text) == [
        "shop.yaml:34:19: '（' (U+FF08 FULLWIDTH LEFT PARENTHESIS) here: rule files need the ASCII '(' "
        "(switch the input method to half-width)"]


def test_a_full_width_space_in_the_indentation_is_named(tmp_path):
    text = _with("        effect: deny\n        code: WRONG_CHANNEL", "\u3000      effect: deny\n        code: WRONG_CHANNEL")
    problems = problems_for(tmp_path, text)
    assert len(problems) == 1
    assert ("YAML syntax error: a full-width space (U+3000 IDEOGRAPHIC SPACE, 全角空格) in the indentation of "
            "line 35 (column 1); indent with normal spaces") in problems[0]


def test_a_gbk_file_is_told_to_be_saved_as_utf8(tmp_path):
    path = tmp_path / "shop.yaml"
    path.write_bytes(VALID.encode("gb18030"))
    _, problems = check([path])
    assert [str(problem).replace(str(tmp_path) + "/", "") for problem in problems] == [
        "shop.yaml:9:9: the file is not UTF-8 text (byte 0xBD here); it looks like GBK/GB18030 (a Chinese "
        "Windows encoding): save it as UTF-8 in your editor (e.g. 另存为 → 编码 UTF-8)"]


def test_unquoted_money_is_pointed_at_and_told_to_be_quoted(tmp_path):
    text = _with('max_amount: {type: money, value: "500.00"}', "max_amount: {type: money, value: 99.90}")
    assert problems_for(tmp_path, text) == [
        'shop.yaml:6:36: write 99.90 in quotes ("99.90"): money and other decimals are text in rule files '
        "(YAML would read a binary fraction)"]
    untyped = _with('max_amount: {type: money, value: "500.00"}', "max_amount: 99.90")
    assert problems_for(tmp_path, untyped) == [  # and nothing else: it is taken as the money it means
        'shop.yaml:6:15: write 99.90 in quotes ("99.90"): money and other decimals are text in rule files '
        "(YAML would read a binary fraction)"]


def test_yaml_11_booleans_are_reported_as_read(tmp_path):
    enum = _with("channel: [pop, self_operated]", "channel: [pop, self_operated, no]")
    assert problems_for(tmp_path, enum) == [
        "shop.yaml:4:33: YAML reads no as the boolean false: write 'no' in quotes for the text, or false"]
    when = _with("when: store.channel != 'pop'", "when: yes")
    assert problems_for(tmp_path, when) == [
        "shop.yaml:34:15: YAML reads yes as the boolean true: write 'yes' in quotes for the text, or true"]


@pytest.mark.parametrize("digits", [30, 5000])
def test_huge_integers_are_refused_without_pythons_advice(tmp_path, digits):
    constant = _with('max_amount: {type: money, value: "500.00"}', f"max_amount: {'9' * digits}")
    problems = problems_for(tmp_path, constant)
    assert problems[0] == (f"shop.yaml:6:15: this number ({digits} digits) is too large: whole numbers in rule "
                           "files are at most 9007199254740991 (the largest the matcher compares exactly)")
    expression = _with("when: payout.amount > max_amount", f"when: payout.amount > {'9' * digits}")
    problems = problems_for(tmp_path, expression)
    if digits < 400:
        assert problems == [f"shop.yaml:29:31: this number ({digits} digits) is too large: whole numbers in rule "
                            "files are at most 9007199254740991 (the largest the matcher compares exactly)"]
    else:  # the expression's length is refused before its numbers are read
        assert problems == [f"shop.yaml:29:15: expression is {digits + 16} characters long; the maximum is 500 "
                            "(split it into derived values)"]
    assert not any("set_int_max_str_digits" in problem or "C int" in problem for problem in problems)


# --- partition (a Redis Cluster store) -------------------------------------------------------------------

def test_a_decision_without_partition_refuses_a_cluster_store(tmp_path):
    path = tmp_path / "shop.yaml"
    path.write_text(VALID, encoding="utf-8")
    assert check([path])[1] == []  # fine for SQLite and one Redis server
    _, problems = check([path], require_partitions=True)
    assert [str(problem).replace(str(tmp_path) + "/", "") for problem in problems] == [
        "shop.yaml:15:3: decision shop.pay declares no partition, which a Redis Cluster store "
        "(--store redis+cluster://…) needs to keep the keys of a commit in one hash slot; add e.g. partition: customer.id"]
    with_partition = edited("  pay:\n", "  pay:\n    partition: store.channel\n")
    path.write_text(with_partition, encoding="utf-8")
    assert check([path], require_partitions=True)[1] == []


@pytest.mark.parametrize(("partition", "message"), [
    ("store.chanel", "16:22: undeclared fact store.chanel (did you mean 'channel'?)"),
    ("store", "16:16: a partition is one value computed from the facts (e.g. customer.id), not object"),
    ("max_amount + payout.amount", None),  # a computed value of the facts is fine
])
def test_a_partition_is_one_value_of_the_facts(tmp_path, partition, message):
    problems = problems_for(tmp_path, edited("  pay:\n", f"  pay:\n    partition: {partition}\n"))
    assert problems == ([] if message is None else [f"shop.yaml:{message}"])


def test_the_shipped_rules_declare_every_partition():
    load_rulebook([RULES], require_partitions=True)


# --- a broken constant is one problem, not one per use (issue 23's trial) ------------------------------

def recovery_with_window_end(tmp_path: Path, written: str) -> tuple[list[str], int]:
    text = (RULES / "recovery.yaml").read_text(encoding="utf-8").replace('    value: "20:00"', f"    value: {written}")
    path = tmp_path / "recovery.yaml"
    path.write_text(text, encoding="utf-8")
    _, problems = check([path])
    line = text.splitlines().index(f"    value: {written}") + 1
    return [str(problem).replace(str(tmp_path) + "/", "") for problem in problems], line


def test_an_unquoted_time_is_one_problem_that_says_to_quote_it(tmp_path):
    problems, line = recovery_with_window_end(tmp_path, "21:00")
    assert problems == [f'recovery.yaml:{line}:12: constant sms_window_end: must be quoted: unquoted, 21:00 is read '
                        'as the number 1260; write "21:00"']


def test_a_full_width_colon_in_a_time_is_named(tmp_path):
    problems, line = recovery_with_window_end(tmp_path, '"21：00"')
    assert problems == [f"recovery.yaml:{line}:12: constant sms_window_end: '21：00' has a full-width colon '：' "
                        "(U+FF1A); write it with ':' (switch the input method to half-width): \"21:00\""]


def test_a_broken_derived_value_is_reported_once(tmp_path):
    text = (RULES / "recovery.yaml").read_text(encoding="utf-8").replace(
        "delay_ends_at: order.created_at + minutes(campaign.unpaid_minutes)",
        "delay_ends_at: order.created_at + minutes(campaign.unpaid_minute)")
    path = tmp_path / "recovery.yaml"
    path.write_text(text, encoding="utf-8")
    _, problems = check([path])
    assert len(problems) == 1 and "undeclared fact campaign.unpaid_minute" in str(problems[0])
