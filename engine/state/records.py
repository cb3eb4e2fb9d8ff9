"""Decision records: what a committed decision leaves behind, how to search and export it."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.runtime.values import epoch_ms, parse_instant, to_output

OUTCOME_LABELS = {"allow": "已通过", "deny": "已拒绝", "defer": "暂缓", "review": "待审核"}
RECORD_COLUMNS = ("order_id", "customer_account", "store_id", "amount", "reason")


@dataclass
class DecisionRecord:
    decision_id: str
    decision: str
    outcome: str
    reason_codes: list[str]
    ruleset_version: str
    evaluated_at: datetime  # the server's clock when the commit was made (SPEC §6), what searches filter on
    committed: bool  # counters were reserved (an allowed commit)
    idempotency_key: str | None
    result: dict[str, Any]
    order_id: str | None = None
    customer_account: str | None = None
    store_id: str | None = None
    amount: Decimal | None = None
    reason: str | None = None
    fingerprint: str | None = None  # of the committed facts: a replay after the key store forgot still matches
    now: datetime | None = None  # the instant the decision was evaluated as of: the request's `now`

    @property
    def decided_as_of(self) -> datetime:
        """The request's ``now``; for a record written before it was kept, the instant its decision
        document says it was evaluated at (the same instant: the request's ``now`` or the server clock)."""
        return self.now if self.now is not None else parse_instant(self.result["evaluated_at"])

    def as_json(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id, "decision": self.decision, "outcome": self.outcome,
            "reason_codes": self.reason_codes, "ruleset_version": self.ruleset_version,
            "evaluated_at": to_output(self.evaluated_at), "now": to_output(self.decided_as_of),
            "committed": self.committed, "idempotency_key": self.idempotency_key,
            "order_id": self.order_id, "customer_account": self.customer_account, "store_id": self.store_id,
            "amount": None if self.amount is None else str(self.amount), "reason": self.reason,
        }


@dataclass
class RecordQuery:
    decision: str | None = None
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    outcome: str | None = None
    decision_id: str | None = None
    order_id: str | None = None  # 输入单号查询: the page looks records up by order number
    store_id: str | None = None
    limit: int = 1000
    after: tuple[int, str] | None = None  # a page: only the records listed after this (record_order)
    extra: dict[str, Any] = field(default_factory=dict)


    def matches(self, record: DecisionRecord) -> bool:
        """Whether ``record`` is one this query asks for (the SQL query's conditions, in Python)."""
        return ((self.decision is None or record.decision == self.decision)
                and (self.outcome is None or record.outcome == self.outcome)
                and (self.decision_id is None or record.decision_id == self.decision_id)
                and (self.order_id is None or record.order_id == self.order_id)
                and (self.store_id is None or record.store_id == self.store_id)
                and (self.start is None or record.evaluated_at >= self.start)
                and (self.end is None or record.evaluated_at < self.end)
                and (self.after is None or record_order(record) > tuple(self.after)))


def record_order(record: DecisionRecord) -> tuple[int, str]:
    """How records are listed: oldest first, then by id (the SQL query's order)."""
    return epoch_ms(record.evaluated_at), record.decision_id


def merge_records(stored: list[DecisionRecord], pending: Iterable[DecisionRecord], query: RecordQuery) -> list[DecisionRecord]:
    """The records of ``query``: those in the record store and those still on their way (an outbox)."""
    found = {record.decision_id: record for record in stored}
    for record in pending:
        if query.matches(record):
            found.setdefault(record.decision_id, record)
    return sorted(found.values(), key=record_order)[:query.limit]


def record_to_json(record: DecisionRecord) -> dict[str, Any]:
    """Every field of a record as JSON (an outbox keeps records in this form)."""
    return {"decision_id": record.decision_id, "decision": record.decision, "outcome": record.outcome,
            "reason_codes": record.reason_codes, "ruleset_version": record.ruleset_version,
            "evaluated_at": record.evaluated_at.isoformat(), "committed": record.committed,
            "idempotency_key": record.idempotency_key, "result": record.result,
            **{column: getattr(record, column) for column in RECORD_COLUMNS if column != "amount"},
            "amount": None if record.amount is None else str(record.amount), "fingerprint": record.fingerprint,
            "now": None if record.now is None else record.now.isoformat()}


def record_from_json(data: dict[str, Any]) -> DecisionRecord:
    values = dict(data)
    values["evaluated_at"] = datetime.fromisoformat(values["evaluated_at"])
    # an outbox written before records kept the request's `now` has none
    values["now"] = None if values.get("now") is None else datetime.fromisoformat(values["now"])
    values["amount"] = None if values["amount"] is None else Decimal(values["amount"])
    return DecisionRecord(**values)


class DuplicateIdempotencyKey(Exception):
    """A record with this idempotency key exists already."""


def build_record(result: dict[str, Any], business_keys: dict[str, Any], committed: bool,
                 idempotency_key: str | None, evaluated_at: datetime, fingerprint: str | None = None,
                 now: datetime | None = None) -> DecisionRecord:
    """The record of a commit made at ``evaluated_at`` (the server's clock) as of ``now`` (the request's)."""
    return DecisionRecord(
        decision_id=result["decision_id"], decision=result["decision"], outcome=result["outcome"],
        reason_codes=[reason["code"] for reason in result["reasons"]],
        ruleset_version=result["ruleset"]["version"], evaluated_at=evaluated_at, committed=committed,
        idempotency_key=idempotency_key, result=result, fingerprint=fingerprint, now=now,
        **{column: business_keys.get(column) for column in RECORD_COLUMNS})


# The payout records page of seed 000: 打款单号, 订单号, 客户账号, 打款原因, 状态 — then the rest.
# 申请时间 is when the commit was made (the server's evaluated_at), 请求时间(now) the request's `now`.
CSV_HEADER = ("打款单号", "订单号", "客户账号", "打款原因", "状态", "打款金额", "店铺", "申请时间", "决策", "原因代码",
              "请求时间(now)")


# A spreadsheet runs a cell starting with one of these as a formula (=HYPERLINK(…), @SUM(…), or a tab,
# CR, LF or space before one, which some programs skip): such a cell is written with a leading ' so it
# stays text (SPEC §6).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", " ")


def csv_cell(text: str) -> str:
    """``text`` as a spreadsheet shows it and never runs it."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def export_csv(records: Iterable[DecisionRecord], reason_label: Callable[[str, str | None], str]) -> str:
    """CSV (UTF-8 with BOM, so spreadsheet programs read the Chinese header) of the records."""
    return "".join(csv_lines(records, reason_label))


def csv_lines(records: Iterable[DecisionRecord], reason_label: Callable[[str, str | None], str]) -> Iterator[str]:
    """:func:`export_csv` a line at a time, for a streamed answer: the BOM and header, then one per record."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(cells: Iterable[str]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(cells)
        return buffer.getvalue()

    yield "\ufeff" + line(CSV_HEADER)
    for record in records:
        yield line([csv_cell(cell) for cell in (
            record.decision_id, record.order_id or "", record.customer_account or "",
            reason_label(record.decision, record.reason), OUTCOME_LABELS.get(record.outcome, record.outcome),
            "" if record.amount is None else str(record.amount), record.store_id or "",
            to_output(record.evaluated_at), record.decision, " ".join(record.reason_codes),
            to_output(record.decided_as_of),
        )])
