"""`accounting refunds`: pay refunds out by SEPA credit-transfer files, and close them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from app.adapters.db import command_engine, make_session_factory
from app.adapters.sepa import FORMATS, checked_account, checked_debtor, credit_transfer_writer
from app.domain.bank_account import BankAccount
from app.domain.money import to_major
from app.service.refunds import SEPA_CURRENCY, RefundPayouts, today


@contextmanager
def _payouts() -> Iterator[RefundPayouts]:
    with command_engine() as engine:
        yield RefundPayouts(make_session_factory(engine))


class Refused(click.ClickException):
    """An expected mistake of any command: one line on standard error, exit status 2."""

    exit_code = 2


@click.group()
def refunds() -> None:
    """Refund payouts: credit-transfer files, confirmations, failures, retries."""


@refunds.command("export")
@click.option("--business", required=True, help="Business code.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(FORMATS)),
    default="pain.001",
    show_default=True,
    help="pain.001 writes pain.001.001.03.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The file to write (default: refunds-<export id>.xml here).")  # fmt: skip
@click.option("--debtor-name", envvar="ACCOUNTING_SEPA_DEBTOR_NAME", required=True,
              help="Holder of the paying account (or ACCOUNTING_SEPA_DEBTOR_NAME).")  # fmt: skip
@click.option("--debtor-iban", envvar="ACCOUNTING_SEPA_DEBTOR_IBAN", required=True,
              help="IBAN of the paying account (or ACCOUNTING_SEPA_DEBTOR_IBAN).")  # fmt: skip
@click.option("--debtor-bic", envvar="ACCOUNTING_SEPA_DEBTOR_BIC", default=None,
              help="BIC of the paying account (or ACCOUNTING_SEPA_DEBTOR_BIC).")  # fmt: skip
@click.option("--execution-date", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="When the bank is to pay (default: today).")  # fmt: skip
def export(
    business: str,
    fmt: str,
    out: Path | None,
    debtor_name: str,
    debtor_iban: str,
    debtor_bic: str | None,
    execution_date: datetime | None,
) -> None:
    """Write the pending bank refunds of a business into one SEPA credit-transfer file and
    put them in payout; the file is written once its refunds are recorded in payout."""
    debtor = checked_debtor(debtor_name, debtor_iban, debtor_bic)
    when = execution_date.date() if execution_date else today()
    if out is not None and not out.parent.is_dir():
        raise click.BadParameter(f"no directory {out.parent}", param_hint="--out")
    with _payouts() as payouts:
        done = payouts.export(business, fmt, credit_transfer_writer(debtor, fmt, when))
    for refund_id, why in done.skipped:
        click.echo(f"left pending: refund {refund_id}: {why}", err=True)
    if done.document is None:
        click.echo(f"no bank refund of business {business} is due", err=True)
        return
    path = out or Path(f"refunds-{done.export_id}.xml")
    _write(path, done.document, str(done.export_id), business)
    total = to_major(done.total, SEPA_CURRENCY)
    click.echo(
        f"export {done.export_id}: {len(done.transfers)} refunds, {total} {SEPA_CURRENCY}, "
        f"in payout",
        err=True,
    )
    click.echo(str(path))


def _write(path: Path, document: bytes, export_id: str, business: str) -> None:
    """Write a file its refunds are already in payout for: should it fail, the file is kept
    with the export and `refunds file` writes it again."""
    try:
        path.write_bytes(document)
    except OSError as error:
        raise Refused(
            f"export {export_id} is recorded, but {path} could not be written ({error}): "
            f"`accounting refunds file --business {business} {export_id} --out FILE` writes it"
        ) from error


@refunds.command("file")
@click.option("--business", required=True, help="Business code.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The file to write (default: refunds-<export id>.xml here).")  # fmt: skip
@click.argument("export_id")
def file(business: str, out: Path | None, export_id: str) -> None:
    """Write a credit-transfer file again, exactly as its export wrote it."""
    with _payouts() as payouts:
        document = payouts.document(business, export_id)
    path = out or Path(f"refunds-{export_id}.xml")
    _write(path, document, export_id, business)
    click.echo(str(path))


def _each(
    refund_ids: tuple[str, ...], step: Callable[[RefundPayouts, str], Any], done: str
) -> None:
    """One step per refund, each in its own transaction, in the order given."""
    with _payouts() as payouts:
        for refund_id in refund_ids:
            step(payouts, refund_id)
            click.echo(f"refund {refund_id} {done}", err=True)


@refunds.command("confirm")
@click.option("--business", required=True, help="Business code.")
@click.argument("refund_ids", nargs=-1, required=True)
def confirm(business: str, refund_ids: tuple[str, ...]) -> None:
    """Record that the payouts of these refunds arrived: completed, final."""
    _each(refund_ids, lambda p, r: p.confirm(business, r), "completed")


@refunds.command("fail")
@click.option("--business", required=True, help="Business code.")
@click.option("--reason", required=True, help="Why the payout failed (the bank's return).")
@click.argument("refund_ids", nargs=-1, required=True)
def fail(business: str, reason: str, refund_ids: tuple[str, ...]) -> None:
    """Record that the payouts of these refunds failed: owed again, to be retried."""
    _each(refund_ids, lambda p, r: p.fail(business, r, reason[:200]), "failed")


@refunds.command("retry")
@click.option("--business", required=True, help="Business code.")
@click.option("--iban", default=None, help="New bank details: the IBAN.")
@click.option("--bic", default=None, help="New bank details: the BIC.")
@click.option("--account-owner", default=None, help="New bank details: the account's holder.")
@click.argument("refund_id")
def retry(
    business: str,
    iban: str | None,
    bic: str | None,
    account_owner: str | None,
    refund_id: str,
) -> None:
    """Owe a failed refund again, to new bank details if given; the next export pays it."""
    account = None
    if iban is not None:
        compact_iban, compact_bic = checked_account(iban, bic)
        account = BankAccount(compact_iban, compact_bic, account_owner or None)
    _each((refund_id,), lambda p, r: p.retry(business, r, account), "pending again")
