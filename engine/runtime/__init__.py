"""Deciding, on the served path: the decision program generated once per load (reader, deriver,
encoder, messages), the durable_rules rulesets it matches on, the calendar and the values it computes with."""
