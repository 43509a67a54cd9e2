"""Bank accounts a refund is transferred to: IBAN check digits and BIC format (schwifty)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException


def account_problem(bank_details: dict[str, Any] | None) -> str | None:
    """Why a credit transfer to these bank details cannot be made, or None."""
    details = bank_details or {}
    if not details.get("iban"):
        return "no IBAN"
    try:
        IBAN(str(details["iban"]))
    except SchwiftyException as error:
        return f"invalid IBAN: {error}"
    if details.get("bic"):
        try:
            BIC(str(details["bic"]))
        except SchwiftyException as error:
            return f"invalid BIC: {error}"
    return None


def compact_account(bank_details: dict[str, Any]) -> tuple[str, str | None]:
    """IBAN and BIC (if any) as a credit transfer names them: upper case, no spaces."""
    bic = bank_details.get("bic")
    return IBAN(str(bank_details["iban"])).compact, BIC(str(bic)).compact if bic else None


@dataclass(frozen=True)
class Transfer:
    """One refund as a credit transfer: to whom, how much (minor units), what for."""

    refund_id: str
    order_reference: str
    amount: int
    name: str
    iban: str
    bic: str | None
    description: str

    @property
    def end_to_end_id(self) -> str:
        """The refund's id as the transfer carries it to the bank and back (35 at most)."""
        return self.refund_id.replace("-", "")
