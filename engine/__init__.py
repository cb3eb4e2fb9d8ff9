"""rulesvc engine: rule files → durable_rules rulesets → decisions. No web framework in here.

Typical use::

    from engine import load_rulebook
    rulebook = load_rulebook(["rules"])
    result = rulebook.decide("payout.initiate", facts, now=now, explain=True)
"""

from engine.errors import InvalidFacts, Problem, RuleFileError, RulesvcError, UnknownDecision
from engine.language.loader import load_rule_file, rule_file_schema
from engine.rulebook import Rulebook, check, load_rulebook

__all__ = [
    "InvalidFacts", "Problem", "RuleFileError", "Rulebook", "RulesvcError", "UnknownDecision",
    "check", "load_rule_file", "load_rulebook", "rule_file_schema",
]
