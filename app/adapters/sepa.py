"""SEPA credit-transfer files (ISO 20022 pain.001) of refunds, written by sepaxml.

sepaxml builds the document and validates it against the schema it ships before it hands it
over, so a file the bank would refuse is never recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from sepaxml import SepaTransfer
from sepaxml.validation import ValidationError

from app.domain.bank_account import Transfer
from app.domain.errors import FieldError, RuleViolation, field_errors

# What `--format` accepts, and the message version each writes.
FORMATS = {
    "pain.001": "pain.001.001.03",
    "pain.001.001.03": "pain.001.001.03",
    "pain.001.001.09": "pain.001.001.09",
}


@dataclass(frozen=True)
class Debtor:
    """The account the refunds are paid from."""

    name: str
    iban: str
    bic: str | None = None


def checked_account(iban: str, bic: str | None, prefix: str = "") -> tuple[str, str | None]:
    """An IBAN and optional BIC, checked and compacted; every problem at once, each named
    `prefix` + iban or bic."""
    errors = []
    try:
        iban = IBAN(iban).compact
    except SchwiftyException as error:
        errors.append(FieldError(f"{prefix}iban", "invalid-iban", str(error)))
    try:
        bic = BIC(bic).compact if bic else None
    except SchwiftyException as error:
        errors.append(FieldError(f"{prefix}bic", "invalid-bic", str(error)))
    if errors:
        raise field_errors(*errors)
    return iban, bic


def checked_debtor(name: str, iban: str, bic: str | None) -> Debtor:
    """The paying account, its holder named and its IBAN and BIC checked."""
    if not name.strip():
        raise field_errors(FieldError("debtor_name", "required", "the paying account's holder"))
    return Debtor(name.strip(), *checked_account(iban, bic, "debtor_"))


def credit_transfer_writer(
    debtor: Debtor, fmt: str, execution_date: date
) -> Callable[[list[Transfer], str], tuple[str, bytes]]:
    """A writer of one pain.001 file (`fmt` a key of FORMATS) paying from `debtor`."""
    schema = FORMATS[fmt]

    def write(transfers: list[Transfer], export_id: str) -> tuple[str, bytes]:
        config: dict[str, object] = {
            "name": debtor.name,
            "IBAN": debtor.iban,
            "batch": True,
            "currency": "EUR",
        }
        if debtor.bic:
            config["BIC"] = debtor.bic
        document = SepaTransfer(config, schema=schema, clean=True)
        for transfer in transfers:
            payment: dict[str, object] = {
                "name": transfer.name,
                "IBAN": transfer.iban,
                "amount": transfer.amount,
                "execution_date": execution_date,
                "description": transfer.description,
                "endtoend_id": transfer.end_to_end_id,
            }
            if transfer.bic:
                payment["BIC"] = transfer.bic
            document.add_payment(payment)
        try:
            return str(document.msg_id), bytes(document.export(validate=True))
        except ValidationError as error:
            # Nothing is recorded: the export's transaction is rolled back.
            first = str(error).strip().splitlines()[0]
            raise RuleViolation(f"the credit-transfer file would not validate: {first}") from error

    return write
