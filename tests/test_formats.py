"""Strict formats (SPEC §4): dates are YYYY-MM-DD, instants RFC 3339, 1970–2999 in Shanghai; and every
date or instant the engine prints parses back under those same rules (a property test)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.runtime.values import parse_date, parse_instant

# RFC 3339 as SPEC §4 words it, written independently of engine/runtime/values.py
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# anything in printed text that starts like a date, up to where a date or an instant could end
PRINTED = re.compile(r"\d{4}-\d{2}-\d{2}(?:T[0-9:.]+(?:Z|[+-][0-9:]+)?)?")


@pytest.mark.parametrize("text", ["2026-11-16", "1970-01-01", "2999-12-31", "2024-02-29"])
def test_dates_written_exactly_are_accepted(text):
    assert parse_date(text).isoformat() == text


@pytest.mark.parametrize(("text", "why"), [
    ("20261116", "written YYYY-MM-DD"), ("2026-W47-1", "written YYYY-MM-DD"), ("2026-324", "written YYYY-MM-DD"),
    ("2026/11/16", "written YYYY-MM-DD"), (" 2026-11-16", "written YYYY-MM-DD"), ("2026-11-16T00:00", "written"),
    ("2026-02-30", "not a date that exists"), ("1969-12-31", "between 1970-01-01 and 2999-12-31"),
    ("3000-01-01", "between 1970-01-01 and 2999-12-31"), ("２０２６-11-16", "written YYYY-MM-DD"),
])
def test_other_date_forms_are_refused(text, why):
    with pytest.raises(ValueError, match=why):
        parse_date(text)


@pytest.mark.parametrize(("text", "utc"), [
    ("2026-11-20T10:00:00+08:00", "2026-11-20T02:00:00+00:00"),
    ("2026-11-20T10:00+08:00", "2026-11-20T02:00:00+00:00"),
    ("2026-11-20T02:00:00Z", "2026-11-20T02:00:00+00:00"),
    ("2026-11-20T02:00:00.5Z", "2026-11-20T02:00:00.500000+00:00"),
    ("2026-11-19T21:00:00.123456-05:00", "2026-11-20T02:00:00.123456+00:00"),
    ("1969-12-31T16:00:00Z", "1969-12-31T16:00:00+00:00"),   # 1970-01-01 00:00 in Shanghai
    ("2999-12-31T15:59:59Z", "2999-12-31T15:59:59+00:00"),   # 2999-12-31 23:59:59 in Shanghai
])
def test_rfc3339_instants_are_accepted(text, utc):
    assert parse_instant(text).astimezone(UTC).isoformat() == utc


@pytest.mark.parametrize(("text", "why"), [
    ("2026-W47-5T10:00:00+08:00", "RFC 3339"), ("20261120T100000+0800", "RFC 3339"),
    ("2026-11-20T10:00:00+0800", "RFC 3339"), ("2026-11-20 10:00:00+08:00", "RFC 3339"),
    ("2026-11-20t10:00:00z", "RFC 3339"), ("2026-11-20T10:00:00", "offset"), ("2026-11-20T10:00:00+08:05:43", "RFC 3339"),
    ("2026-11-20T10:00:00.1234567+08:00", "RFC 3339"), ("2026-11-20T10:00:00+08:00 ", "spaces"),
    ("2026-11-20T24:00:00+08:00", "real moment"), ("1969-12-31T15:59:59Z", "between 1970-01-01"),
    ("2999-12-31T16:00:00Z", "between 1970-01-01"), ("0001-01-01T00:00:00+09:00", "between 1970-01-01"),
    ("9999-12-31T23:59:59-12:00", "between 1970-01-01"), ("1900-01-01T00:00:00+08:00", "between 1970-01-01"),
])
def test_other_instant_forms_are_refused(text, why):
    with pytest.raises(ValueError, match=why):
        parse_instant(text)


# --- what the engine prints ---------------------------------------------------------------------------

FIRST, LAST = datetime(1970, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=8))), datetime(2999, 12, 31, 23, 59, 59,
                                                                                        tzinfo=timezone(timedelta(hours=8)))
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
moments = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2999, 12, 30)).map(
    lambda naive: naive.replace(tzinfo=UTC))


@st.composite
def written_instants(draw) -> str:
    """An instant in the range, written in any of the RFC 3339 forms SPEC §4 accepts."""
    moment = draw(moments).astimezone(draw(offsets))
    text = moment.strftime("%Y-%m-%dT%H:%M")
    if draw(st.booleans()) or moment.second or moment.microsecond:
        text += moment.strftime(":%S")
        if moment.microsecond:
            text += "." + f"{moment.microsecond:06d}"[: draw(st.integers(1, 6))]
    offset = moment.strftime("%z")
    if offset == "+0000" and draw(st.booleans()):
        return text + "Z"
    return f"{text}{offset[:3]}:{offset[3:]}"


def _printed(value: Any) -> list[str]:
    """Every date or instant inside a result: whole strings and those inside messages."""
    if isinstance(value, dict):
        return [found for item in value.values() for found in _printed(item)]
    if isinstance(value, list):
        return [found for item in value for found in _printed(item)]
    if isinstance(value, str):
        return PRINTED.findall(value)
    return []


def _assert_strict(text: str) -> None:
    if "T" in text:
        assert RFC3339.fullmatch(text), text
        moment = datetime.fromisoformat(text)
        assert moment.utcoffset() in (timedelta(hours=8), timedelta(hours=9)), text  # Shanghai since 1970
        if moment.year <= 2999:
            assert parse_instant(text) == moment
    else:
        assert DATE.fullmatch(text), text
        if int(text[:4]) <= 2999:
            assert parse_date(text).isoformat() == text


SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(now=written_instants(), requested=written_instants(), valid_until=written_instants(),
       consumed=st.sampled_from(["0.00", "10.00", "100.00"]))
def test_allowance_prints_strict_instants(rulebook, now, requested, valid_until, consumed):
    facts = {"store": {"channel": "pop"}, "request": {"requested_at": requested},
             "allowance": {"principal": "80.00", "bonus": "20.00", "consumed": consumed, "valid_until": valid_until}}
    for decision in ("allowance.withdraw", "allowance.expire"):
        result = rulebook.decide(decision, facts if decision == "allowance.withdraw" else {"allowance": facts["allowance"]},
                                 now=parse_instant(now), explain=True)
        printed = _printed(result)
        assert result["evaluated_at"] in printed
        assert parse_instant(result["evaluated_at"]) == parse_instant(now)
        for text in printed:
            _assert_strict(text)


@SETTINGS
@given(now=written_instants(), ordered=st.dates(min_value=date(1970, 1, 1), max_value=date(2999, 12, 31)),
       platform=st.sampled_from(["taobao", "jd", "paipai", "yhd"]), expires=written_instants())
def test_rebate_prints_strict_dates_and_instants(rulebook, now, ordered, platform, expires):
    day = ordered.isoformat()
    facts = {"platform": platform, "subscription": {"confirmed": True, "ordered_at": day, "order_no": "1"},
             "report": {"shop_name": "s", "order_no": "1", "ordered_at": day, "amount": "1.00", "contact_phone": "1"},
             "payee": {"account_type": "bank", "bank_name": "b", "account_no": "1", "account_name": "n"},
             "authorization": {"expires_at": expires}}
    result = rulebook.decide("rebate.apply", facts, now=parse_instant(now), explain=True)
    printed = _printed(result)
    assert result["values"]["eligible_from"] in printed
    for text in printed:
        _assert_strict(text)


@SETTINGS
@given(now=written_instants(), created=written_instants(), minutes=st.integers(0, 525600))
def test_recovery_prints_strict_instants(rulebook, now, created, minutes):
    from .test_timing import CONTACT

    facts = {**CONTACT, "campaign": {**CONTACT["campaign"], "unpaid_minutes": minutes,
                                     "start_at": "1970-01-01T00:00:00+08:00", "end_at": "2999-12-31T00:00:00+08:00"},
             "order": {**CONTACT["order"], "created_at": created}}
    result = rulebook.decide("recovery.contact", facts, now=parse_instant(now), explain=True)
    for text in _printed(result):
        _assert_strict(text)
    if result["next_eligible_at"] is not None:
        assert parse_instant(result["next_eligible_at"]) > parse_instant(now)
