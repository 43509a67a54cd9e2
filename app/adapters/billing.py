"""What documents and payment files read of an order's stored header, and a refund's bank
account as stored.

Both are kept as the request body sent them, in its words (`billToAddress`, `accountOwner`);
the rules never read them. The parties a document names, whom a refund is paid to and the
refund's account are read from them here, into the domain's own terms.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from app.domain import model
from app.domain.bank_account import BankAccount
from app.domain.documents import Billed, Buyer, clean_text
from app.domain.vatid import is_valid_eu_vat_id


def stored_date(value: Any) -> date | None:
    """A date as the body sent it and the header stored it (ISO, perhaps with a time); None
    when there is none, or none readable."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _billed_name(address: Mapping[str, Any], customer: str) -> str:
    """The company billed, else the person, else the customer number."""
    person = " ".join(
        part for key in ("firstName", "lastName") if (part := clean_text(address.get(key)))
    )
    return clean_text(address.get("companyName")) or person or customer


def billed(order: model.Order, version: model.InvoiceVersion) -> Billed:
    """The customer as billed by this version (the billing address it was issued with), and
    the goods' dispatch date it names (BT-72), if any."""
    address = (version.header or order.header).get("billToAddress") or {}
    street = " ".join(
        part for key in ("street", "streetNumber") if (part := clean_text(address.get(key)))
    )
    care_of = clean_text(address.get("careOf"))
    vat_id = clean_text(address.get("taxIdentificationNumber"))
    buyer = Buyer(
        name=_billed_name(address, order.customer_number),
        street=street or None,
        additional=f"c/o {care_of}" if care_of else None,
        postal_code=clean_text(address.get("postalCode")),
        city=clean_text(address.get("postalPlace")),
        country_code=clean_text(address.get("countryCode")) or version.declaration_country,
        customer_number=order.customer_number,
        vat_id=vat_id if is_valid_eu_vat_id(vat_id) else None,
        email=clean_text(address.get("email")),
    )
    return Billed(buyer, stored_date((version.fields or {}).get("dispatchDate")))


def account(stored: Mapping[str, Any] | None) -> BankAccount | None:
    """A refund's bank account from its bank details as the body sent them (and as stored)."""
    if not stored:
        return None
    return BankAccount(str(stored["iban"]), stored.get("bic"), stored.get("accountOwner"))


def stored_account(account: BankAccount | None) -> dict[str, Any] | None:
    """A refund's bank account as stored: its bank details in the body's words."""
    if account is None:
        return None
    names = {"iban": account.iban, "bic": account.bic, "accountOwner": account.owner}
    return {name: value for name, value in names.items() if value is not None}


def creditor_name(header: Mapping[str, Any], account: BankAccount, customer: str) -> str:
    """Whom a refund is paid to: the account owner, else the customer as billed."""
    return clean_text(account.owner) or _billed_name(header.get("billToAddress") or {}, customer)
