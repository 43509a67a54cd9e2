"""End to end: HTTP through the app, on PostgreSQL or SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from werkzeug.test import TestResponse

from app.adapters.keys import create_key
from app.factory import create_app
from tests import factories
from tests.contract.openapi_check import assert_conforms

BASE = "/accounting/v1/businesses"
DEMO_SELLERS = Path(__file__).resolve().parents[2] / "config" / "sellers.demo.toml"


def app_for(engine: Engine, database_url: str, **settings: Any) -> Flask:
    """The app on the tests' database and engine. Many tests send a bad key on purpose from one
    address: the limit on failed authentications per address is off (it is tested on an app of
    its own, tests/contract/test_keys_and_limits.py)."""
    return create_app(
        {
            "DATABASE_URL": database_url,
            "ENGINE": engine,
            "TESTING": True,
            "AUTH_FAILURES_PER_MINUTE": 0,
            **settings,
        }
    )


@pytest.fixture(scope="session")
def app(engine: Engine, database_url: str) -> Flask:
    """One app serves the whole run."""
    return app_for(engine, database_url, SELLERS_FILE=str(DEMO_SELLERS))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def new_key(app: Flask, businesses: list[str], role: str = "merchant") -> str:
    with app.extensions["accounting"].session_factory() as session, session.begin():
        return create_key(session, businesses, role, "test")


class Api:
    """A merchant's client for one business and customer, speaking the public paths."""

    def __init__(self, client: FlaskClient, key: str, business: str = "1000",
                 customer: str = "TFI2021072801"):  # fmt: skip
        self.client, self.key, self.business, self.customer = client, key, business, customer

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Subscription-Key": self.key}

    def orders_path(self) -> str:
        return f"{BASE}/{self.business}/customers/{self.customer}/orders"

    def order_path(self, order_ref: str) -> str:
        return f"{self.orders_path()}/{order_ref}"

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.get(
            path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs
        )

    def post(self, path: str, body: Any, **kwargs: Any) -> TestResponse:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.post(path, json=body, headers=headers, **kwargs)

    def put(self, path: str, body: Any, **kwargs: Any) -> TestResponse:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.put(path, json=body, headers=headers, **kwargs)

    # --- use cases ---
    def create_order(self, order: dict[str, Any]) -> TestResponse:
        return self.post(self.orders_path(), order)

    def invoice(self, order_ref: str, invoice: dict[str, Any]) -> TestResponse:
        return self.post(f"{self.order_path(order_ref)}/invoices", invoice)

    def correct(self, order_ref: str, invoice_ref: str, body: dict[str, Any],
                dry_run: bool = False, **kwargs: Any) -> TestResponse:  # fmt: skip
        query = "?dryRun=true" if dry_run else ""
        return self.put(
            f"{self.order_path(order_ref)}/invoices/{invoice_ref}{query}", body, **kwargs
        )

    def cancel(self, order_ref: str, refs: list[int], **extra: Any) -> TestResponse:
        body = {
            "cancellationDate": date.today().isoformat(),
            "cancellationReason": "CUSTOMER_CANCELLATION",
            "items": [{"orderItemReference": r} for r in refs],
            **extra,
        }
        return self.post(f"{self.order_path(order_ref)}/cancellations", body)

    def return_items(self, order_ref: str, reference: str, items: list[tuple[int, Any]],
                     **extra: Any) -> TestResponse:  # fmt: skip
        body = {
            "returnReference": reference,
            "returnReason": "CUSTOMER_RETURN",
            "items": [{"orderItemReference": r, "quantity": q} for r, q in items],
            **extra,
        }
        return self.post(f"{self.order_path(order_ref)}/returns", body)

    def goodwill(self, order_ref: str, reference: str, items: list[tuple[int, Any]],
                 **extra: Any) -> TestResponse:  # fmt: skip
        """A goodwill of these gross amounts, each sent as one unit at that price."""
        body = {
            "goodwillReference": reference,
            "goodwillReason": "CUSTOMER_COMPLAINT",
            "items": [
                {"orderItemReference": r, "quantity": 1, "grossUnitPrice": a} for r, a in items
            ],
            **extra,
        }
        return self.post(f"{self.order_path(order_ref)}/goodwills", body)

    def pay(self, order_ref: str, amount: Any = None, provider: str = "VISA") -> TestResponse:
        body: dict[str, Any] = {"paymentProvider": provider}
        if amount is not None:
            body["authorizedAmount"] = amount
        return self.post(f"{self.order_path(order_ref)}/payments", body)

    def order(self, order_ref: str) -> dict[str, Any]:
        response = self.get(self.order_path(order_ref))
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def invoice_doc(self, order_ref: str, invoice_ref: str) -> dict[str, Any]:
        response = self.get(f"{self.order_path(order_ref)}/invoices/{invoice_ref}")
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def journal(self, order_ref: str) -> list[dict[str, Any]]:
        response = self.get(f"{self.order_path(order_ref)}/journal")
        assert response.status_code == 200, response.get_json()
        return response.get_json()["entries"]

    def refunds(self, order_ref: str) -> list[dict[str, Any]]:
        response = self.get(f"{self.order_path(order_ref)}/refunds")
        assert response.status_code == 200, response.get_json()
        return response.get_json()["refunds"]

    def tax_report(
        self, start: str = "2000-01-01", end: str = "2099-12-31"
    ) -> list[dict[str, Any]]:
        response = self.get(f"{BASE}/{self.business}/tax-report?from={start}&to={end}")
        assert response.status_code == 200, response.get_json()
        return response.get_json()["rows"]

    def invoiced_order(self, **order_fields: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """An order whose positions are all on one invoice; returns (order, invoice) bodies."""
        order = factories.OrderFactory(**order_fields)
        assert self.create_order(order).status_code == 200
        invoice = factories.InvoiceFactory(
            items=[{"orderItemReference": i["orderItemReference"]} for i in order["items"]]
        )
        response = self.invoice(order["orderReference"], invoice)
        assert response.status_code == 200, response.get_json()
        return order, invoice


@pytest.fixture
def api(client: FlaskClient, app: Flask) -> Api:
    return Api(client, new_key(app, ["1000"], "staff"))


def problem(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    """Assert a problem+json answer with this status and code; return its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["code"] == code, body
    assert body["status"] == status
    return body


def fields_of(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body["errors"]}


def journal_balances(entries: list[dict[str, Any]]) -> bool:
    from decimal import Decimal

    return all(
        sum(Decimal(str(line["debit"])) for line in e["lines"])
        == sum(Decimal(str(line["credit"])) for line in e["lines"])
        for e in entries
    )


@pytest.fixture(autouse=True)
def _uses_database(engine: Engine) -> Iterator[None]:
    yield


@pytest.fixture(autouse=True)
def _every_response_matches_openapi_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every answer of every end-to-end test, success or error, is one openapi.yaml describes."""
    send = FlaskClient.open

    def open_and_check(self: FlaskClient, *args: Any, **kwargs: Any) -> TestResponse:
        response = send(self, *args, **kwargs)
        assert_conforms(response)
        return response

    monkeypatch.setattr(FlaskClient, "open", open_and_check)
