"""Bank accounts a refund is transferred to: IBAN check digits and BIC format (schwifty)."""

from __future__ import annotations

from dataclasses import dataclass

from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException


@dataclass(frozen=True)
class BankAccount:
    """Where a refund is transferred to, as the client named it (checked when paid out)."""

    iban: str
    bic: str | None = None
    owner: str | None = None


def account_problem(account: BankAccount | None) -> str | None:
    """Why a credit transfer to this account cannot be made, or None."""
    if account is None or not account.iban:
        return "no IBAN"
    try:
        IBAN(account.iban)
    except SchwiftyException as error:
        return f"invalid IBAN: {error}"
    if account.bic:
        try:
            BIC(account.bic)
        except SchwiftyException as error:
            return f"invalid BIC: {error}"
    return None


def compact_account(account: BankAccount) -> tuple[str, str | None]:
    """IBAN and BIC (if any) as a credit transfer names them: upper case, no spaces."""
    bic = account.bic
    return IBAN(account.iban).compact, BIC(bic).compact if bic else None


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
