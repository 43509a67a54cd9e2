"""Request and response bodies (SPEC sections 3 and 11). Unknown fields are refused.

A request body is loaded into the command its use case takes (app/service/commands.py);
answers are rendered by the presenters, and these schemas declare them for openapi.yaml."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

import pycountry
from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

from app.adapters import billing
from app.domain.model import REFUND_STATUSES, InvoiceSpec, OrderHeader
from app.domain.money import decimals_of
from app.service.commands import (
    Cancel,
    CorrectInvoice,
    CreateOrder,
    CreditLine,
    GrantGoodwill,
    OrderItem,
    ReceivePayment,
    ReturnItems,
)

MAX_ITEMS = 500
MAX_AMOUNT = Decimal(10) ** 9

POSITION_TYPES = (
    "SALES_ARTICLE",
    "SHIPPING_COSTS",
    "SHIPPING_COSTS_EXPRESS",
    "DISCOUNT",
    "SERVICE_CHARGE",
    "CASH_ON_DELIVERY",
    "GIFT_CARD_VOUCHER_SALE",
    "GIFT_CARD_VOUCHER_PAYMENT",
    "FREE_ARTICLE",
    "LOYALTY_CARD",
    "MARKETPLACE_PROVISION",
    "SUBSCRIPTION_ORDER",
    "SUBSCRIPTION_ORDER_2",
    "DISCOUNT_FOR_SUBSCRIPTION_ORDER",
    "IBAN_VERIFICATION",
    "NOT_ACCOUNTING_RELEVANT",
    "CREDIT_NOTE",
)
VAT_TYPES = ("NORMAL", "REDUCED", "TAXLESS", "REVERSE")
ORDER_TYPES = ("PHYSICAL_GOODS", "DIGITAL_GOODS", "BANK_VERIFICATION")
ORDER_CHANNELS = ("ECOM", "MOTO", "MOBILE", "POS", "APP", "P2P")
DUNNING = ("HAND_OVER_FOR_DEBT_COLLECTION", "HAND_OVER_FOR_FACTORING")
CANCELLATION_REASONS = ("OUT_OF_STOCK", "CUSTOMER_CANCELLATION", "NO_PAYMENT", "CUSTOMER_SERVICE")
RETURN_REASONS = ("CARRIER_RETURN", "CUSTOMER_RETURN")
GOODWILL_REASONS = (
    "CUSTOMER_COMPLAINT",
    "DELIVERY_DELAYED",
    "ARTICLE_PARCEL_MISSING",
    "CORRECTION_VOUCHER",
    "ARTICLE_DEFECTIVE",
    "CORRECTION_PRICE",
    "LOSS_OF_RETURN_POST",
    "LOSS_OF_RETURN_WAREHOUSE",
    "LOSS_OF_DELIVERY",
    "CONTRADICTION_OF_SIGNATURE",
    "FRAUD",
    "ISSUE_IN_STORE",
    "REFUND_EXPRESS_COSTS",
    "OTHER",
    "LOSS_OF_DELIVERY_WARENPOST",
    "WRONG_DELIVERY",
)

_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(T[0-9:.+\-Z]*)?$")
# Every date of every body lies in these years: wider than any order, invoice or birth date,
# narrow enough that a mistyped year (0001, 9999) is refused, not booked.
FIRST_DATE, LAST_DATE = date(1900, 1, 1), date(2199, 12, 31)
# ISO 4217 codes that are not money a customer pays with: no currency, testing, precious
# metals, bond market and accounting units, SDR, Sucre, and the fund codes.
NOT_MONEY = frozenset(
    {
        *("XXX", "XTS"),
        *("XAU", "XAG", "XPD", "XPT"),
        *("XBA", "XBB", "XBC", "XBD", "XUA", "XAD", "XDR", "XSU"),
        *("BOV", "CHE", "CHW", "CLF", "COU", "MXV", "USN", "UYI", "UYW"),
    }
)


class StrictSchema(Schema):
    """Every body refuses fields it does not know: this is money."""

    class Meta:
        unknown = RAISE


def jsonable(value: Any) -> Any:
    """What is kept as sent, for JSON columns: dates to ISO strings, Decimals to strings."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _except(data: dict[str, Any], *names: str) -> dict[str, Any]:
    return jsonable({k: v for k, v in data.items() if k not in names})


class Number(fields.Decimal):
    """A JSON number read as an exact Decimal; strings and booleans are refused."""

    def __init__(
        self, *, minimum: Decimal | None = None, maximum: Decimal | None = None, **kwargs: Any
    ):
        super().__init__(allow_nan=False, as_string=False, **kwargs)
        self.minimum, self.maximum = minimum, maximum

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise ValidationError("Must be a JSON number.")
        number = Decimal(value)
        if not number.is_finite():
            raise ValidationError("Must be a finite number.")
        if self.minimum is not None and number < self.minimum:
            raise ValidationError(f"Must be at least {self.minimum}.")
        if self.maximum is not None and number > self.maximum:
            raise ValidationError(f"Must be at most {self.maximum}.")
        return number


class Positive(Number):
    """A JSON number strictly greater than zero."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        number = super()._deserialize(value, attr, data, **kwargs)
        if number <= 0:
            raise ValidationError("Must be greater than 0.")
        return number


class Quantity(Positive):
    """A quantity: a JSON number above zero with at most 3 decimals."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        number = super()._deserialize(value, attr, data, **kwargs)
        if decimals_of(number) > 3:
            raise ValidationError("At most 3 decimals.")
        return number


class LenientDate(fields.Date):
    """yyyy-MM-dd between FIRST_DATE and LAST_DATE; a datetime string is accepted too and its
    date kept."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        match = _DATE.match(value) if isinstance(value, str) else None
        if not match:
            raise ValidationError("Not a date (yyyy-MM-dd).")
        try:
            value = date.fromisoformat(match.group(1))
        except ValueError as error:
            raise ValidationError("Not a valid calendar date.") from error
        if not FIRST_DATE <= value <= LAST_DATE:
            raise ValidationError(f"Out of range: dates from {FIRST_DATE} to {LAST_DATE}.")
        return value


def _country(value: str) -> None:
    if not re.fullmatch(r"[A-Z]{2}", value) or pycountry.countries.get(alpha_2=value) is None:
        raise ValidationError("Not an ISO 3166 country code (upper case).")


def _currency(value: str) -> None:
    if not re.fullmatch(r"[A-Z]{3}", value) or pycountry.currencies.get(alpha_3=value) is None:
        raise ValidationError("Not an ISO 4217 currency code (upper case).")
    if value in NOT_MONEY:
        raise ValidationError("Not money: a fund, metal or unit-of-account code of ISO 4217.")


def _iban(value: str) -> None:
    try:
        IBAN(value)
    except SchwiftyException as error:
        raise ValidationError(f"Not a valid IBAN: {error}") from error


def _bic(value: str) -> None:
    try:
        BIC(value)
    except SchwiftyException as error:
        raise ValidationError(f"Not a valid BIC: {error}") from error


def _text(max_length: int, **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(1, max_length), **kwargs)


def _reference(**kwargs: Any) -> fields.String:
    return _text(30, **kwargs)


def _item_reference(**kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(1, 999999), **kwargs)


def _items(schema: type[Schema] | Schema) -> fields.List:
    return fields.List(fields.Nested(schema), required=True, validate=validate.Length(1, MAX_ITEMS))


class AddressSchema(StrictSchema):
    salutation = _text(20)
    title = _text(30)
    firstName = _text(50)
    lastName = _text(50)
    companyName = _text(100)
    careOf = _text(100)
    street = _text(100)
    streetNumber = _text(20)
    postalCode = _text(20)
    postalPlace = _text(100)
    countryCode = fields.String(validate=_country)
    state = _text(50)
    nationality = fields.String(validate=_country)
    email = fields.Email(validate=validate.Length(max=254))
    phone = _text(30)
    language = fields.String(
        validate=validate.Regexp(r"^[a-z]{2}$", error="Two lower-case letters.")
    )
    customerGroup = _text(50)
    taxIdentificationNumber = _text(30)
    birthDate = LenientDate()


class BankDetailsSchema(StrictSchema):
    iban = fields.String(required=True, validate=_iban)
    bic = fields.String(validate=_bic)
    accountOwner = _text(100)


class OrderItemSchema(StrictSchema):
    orderItemReference = _item_reference(required=True)
    productId = _text(100)
    description = _text(255)
    quantity = Quantity(required=True, maximum=Decimal(1_000_000))
    grossUnitPrice = Number(required=True, minimum=-MAX_AMOUNT, maximum=MAX_AMOUNT)
    vatPercent = Number(required=True, minimum=Decimal(0), maximum=Decimal(100))
    vatAmount = Number(required=True, minimum=-MAX_AMOUNT, maximum=MAX_AMOUNT)
    vatType = fields.String(required=True, validate=validate.OneOf(VAT_TYPES))
    positionType = fields.String(required=True, validate=validate.OneOf(POSITION_TYPES))
    subscription = fields.Dict(keys=fields.String())
    reportingPositionData = fields.Dict(keys=fields.String())


class OrderSchema(StrictSchema):
    """An order as created, and as it should now read in a correction."""

    orderReference = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z0-9]{1,16}$", error="1-16 letters or digits."),
    )
    customerNumber = _text(30)
    currency = fields.String(required=True, validate=_currency)
    orderType = fields.String(required=True, validate=validate.OneOf(ORDER_TYPES))
    orderDate = LenientDate(required=True)
    orderChannel = fields.String(required=True, validate=validate.OneOf(ORDER_CHANNELS))
    supplyingCountry = fields.String(required=True, validate=_country)
    vatDeclarationCountry = fields.String(required=True, validate=_country)
    processAfterDunning = fields.String(validate=validate.OneOf(DUNNING))
    billToAddress = fields.Nested(AddressSchema, required=True)
    shipToAddress = fields.Nested(AddressSchema)
    paymentReference = fields.Dict(keys=fields.String())
    contract = fields.Dict(keys=fields.String())
    additionalData = fields.Dict(keys=fields.String())
    carrier = _text(32)
    items = _items(OrderItemSchema)

    @post_load
    def _command(self, data: dict[str, Any], **kwargs: Any) -> CreateOrder:
        return CreateOrder(
            order_reference=data["orderReference"],
            currency=data["currency"],
            items=tuple(_order_item(item) for item in data["items"]),
            header=OrderHeader(
                declaration_country=data["vatDeclarationCountry"],
                order_date=data["orderDate"],
                as_sent=_except(data, "orderReference", "currency", "customerNumber", "items"),
            ),
            customer_number=data.get("customerNumber"),
            vat_id=data["billToAddress"].get("taxIdentificationNumber"),
        )


def _order_item(item: dict[str, Any]) -> OrderItem:
    return OrderItem(
        item_ref=item["orderItemReference"],
        quantity=item["quantity"],
        unit_gross=item["grossUnitPrice"],
        vat_percent=item["vatPercent"],
        unit_vat=item["vatAmount"],
        vat_type=item["vatType"],
        position_type=item["positionType"],
        product_id=item.get("productId"),
        description=item.get("description"),
        extra=jsonable(
            {k: item[k] for k in ("subscription", "reportingPositionData") if k in item}
        ),
    )


class ItemReferenceSchema(StrictSchema):
    orderItemReference = _item_reference(required=True)


class InvoiceSchema(StrictSchema):
    invoiceReference = _reference(required=True)
    invoiceDate = LenientDate(required=True)
    dueDate = LenientDate(required=True)
    dispatchDate = LenientDate()
    shipmentReference = _reference()
    carrier = _text(32)
    trackingCode = _text(100)
    items = _items(ItemReferenceSchema)

    @post_load
    def _command(self, data: dict[str, Any], **kwargs: Any) -> InvoiceSpec:
        return InvoiceSpec(
            invoice_reference=data["invoiceReference"],
            invoice_date=data["invoiceDate"],
            due_date=data["dueDate"],
            item_refs=tuple(item["orderItemReference"] for item in data["items"]),
            fields=_except(data, "invoiceReference", "invoiceDate", "dueDate", "items"),
        )


class UniqueItems(StrictSchema):
    """A request naming positions: each at most once, reported at every repetition."""

    @validates_schema
    def _unique(self, data: dict[str, Any], **kwargs: Any) -> None:
        seen: set[int] = set()
        repeated: dict[int, dict[str, list[str]]] = {}
        for i, item in enumerate(data.get("items", [])):
            ref = item["orderItemReference"]
            if ref in seen:
                repeated[i] = {"orderItemReference": [f"Position {ref} named more than once."]}
            seen.add(ref)
        if repeated:
            raise ValidationError({"items": repeated})


class CreateInvoiceSchema(InvoiceSchema, UniqueItems):
    """An invoice as created: each position named once."""


class CorrectionSchema(StrictSchema):
    """The PUT body: the invoice and the whole order as they should now read (SPEC 6)."""

    goodwillReference = _reference()
    invoice = fields.Nested(CreateInvoiceSchema, required=True)
    order = fields.Nested(OrderSchema, required=True)

    @post_load
    def _command(self, data: dict[str, Any], **kwargs: Any) -> CorrectInvoice:
        return CorrectInvoice(data["invoice"], data["order"], data.get("goodwillReference"))


class CorrectionQuerySchema(StrictSchema):
    dryRun = fields.Boolean(
        load_default=False,
        metadata={
            "description": "true: compute the correction under the order's lock, answer it, "
            "and write nothing."
        },
    )


class CancellationSchema(UniqueItems):
    """Riverty's cancellation: whole open positions."""

    cancellationDate = LenientDate(required=True)
    cancellationReason = fields.String(required=True, validate=validate.OneOf(CANCELLATION_REASONS))
    invoiceReference = _reference(
        metadata={
            "description": "Recorded with the cancellation; cancelled positions are "
            "never on an invoice, so it is not checked."
        }
    )
    items = _items(ItemReferenceSchema)
    bankDetails = fields.Nested(BankDetailsSchema)

    @post_load
    def _command(self, data: dict[str, Any], **kwargs: Any) -> Cancel:
        return Cancel(
            item_refs=tuple(item["orderItemReference"] for item in data["items"]),
            reason=data["cancellationReason"],
            when=data["cancellationDate"],
            bank_details=billing.account(data.get("bankDetails")),
            invoice_reference=data.get("invoiceReference"),
        )


class CreditItemSchema(StrictSchema):
    """A returned position as Riverty sends it: the price fields, when sent, must agree with
    the position as invoiced; the credit always follows the position's booked figures."""

    orderItemReference = _item_reference(required=True)
    quantity = Quantity(required=True, maximum=Decimal(1_000_000))
    grossUnitPrice = Number(minimum=-MAX_AMOUNT, maximum=MAX_AMOUNT)
    vatAmount = Number(minimum=-MAX_AMOUNT, maximum=MAX_AMOUNT)
    vatPercent = Number(minimum=Decimal(0), maximum=Decimal(100))
    vatType = fields.String(validate=validate.OneOf(VAT_TYPES))


class ReturnSchema(UniqueItems):
    """Riverty's return: whole or partial quantities of invoiced positions."""

    returnReference = _reference(required=True)
    returnDate = LenientDate()
    returnReason = fields.String(required=True, validate=validate.OneOf(RETURN_REASONS))
    invoiceReference = _reference(
        metadata={"description": "When sent, every position must be on this invoice."}
    )
    items = _items(CreditItemSchema)
    bankDetails = fields.Nested(BankDetailsSchema)

    @post_load
    def _command(self, data: dict[str, Any], **kwargs: Any) -> ReturnItems:
        return ReturnItems(
            return_reference=data["returnReference"],
            reason=data["returnReason"],
            items=tuple(_credit_line(item) for item in data["items"]),
            when=data.get("returnDate"),
            bank_details=billing.account(data.get("bankDetails")),
            invoice_reference=data.get("invoiceReference"),
        )


def _credit_line(item: dict[str, Any]) -> CreditLine:
    return CreditLine(
        item_ref=item["orderItemReference"],
        quantity=item["quantity"],
        unit_gross=item.get("grossUnitPrice"),
        unit_vat=item.get("vatAmount"),
        vat_percent=item.get("vatPercent"),
        vat_type=item.get("vatType"),
    )


class GoodwillItemSchema(CreditItemSchema):
    """A goodwill line: quantity x grossUnitPrice is the gross credited on the position, at
    the position's VAT type and rate."""

    grossUnitPrice = Positive(required=True, maximum=MAX_AMOUNT)


class GoodwillSchema(UniqueItems):
    """Riverty's goodwill: a gross amount credited on invoiced positions."""

    goodwillReference = _reference(required=True)
    goodwillDate = LenientDate()
    goodwillReason = fields.String(required=True, validate=validate.OneOf(GOODWILL_REASONS))
    creditDate = LenientDate(
        metadata={"description": "Recorded with the goodwill; the booking's date is goodwillDate."}
    )
    invoiceReference = _reference(
        metadata={"description": "When sent, every position must be on this invoice."}
    )
    items = _items(GoodwillItemSchema)
    bankDetails = fields.Nested(BankDetailsSchema)

    @post_load
    def _command(self, data: dict[str, Any], **kwargs: Any) -> GrantGoodwill:
        return GrantGoodwill(
            goodwill_reference=data["goodwillReference"],
            reason=data["goodwillReason"],
            items=tuple(_credit_line(item) for item in data["items"]),
            when=data.get("goodwillDate"),
            credit_date=data.get("creditDate"),
            bank_details=billing.account(data.get("bankDetails")),
            invoice_reference=data.get("invoiceReference"),
        )


class PaymentSchema(StrictSchema):
    """Riverty's payment; without authorizedAmount, everything that is open."""

    authorizedAmount = Positive(maximum=MAX_AMOUNT)
    paymentProvider = _text(30, required=True)
    paymentReference = _text(64)
    paymentDate = LenientDate()

    @post_load
    def _command(self, data: dict[str, Any], **kwargs: Any) -> ReceivePayment:
        return ReceivePayment(
            provider=data["paymentProvider"],
            amount=data.get("authorizedAmount"),
            reference=data.get("paymentReference"),
            when=data.get("paymentDate"),
        )


class PeriodSchema(StrictSchema):
    """A body or query with `from` and `to`: `to` is not before `from`."""

    @validates_schema
    def _ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "from_" in data and "to" in data and data["from_"] > data["to"]:
            raise ValidationError("Must not be before from.", "to")


class TaxReportQuerySchema(PeriodSchema):
    from_ = LenientDate(required=True, data_key="from")
    to = LenientDate(required=True)


# --- responses ---------------------------------------------------------------------------


def _amount(**kwargs: Any) -> fields.Decimal:
    return fields.Decimal(as_string=False, required=True, **kwargs)


class WriteResponseSchema(Schema):
    internalRequestId = fields.String(required=True)


class TotalsSchema(Schema):
    gross = _amount()
    invoiced = _amount()
    cancelled = _amount()
    credited = _amount()
    paid = _amount()
    refunded = _amount()
    balance = _amount()
    refundsPaidOut = _amount(
        metadata={"description": "Refunds whose payout was confirmed (part of refunded)."}
    )


class _LineFields(Schema):
    orderItemReference = fields.Integer(required=True)
    productId = fields.String(allow_none=True, required=True)
    description = fields.String(allow_none=True, required=True)
    quantity = _amount()
    grossUnitPrice = _amount()
    vatPercent = _amount()
    vatType = fields.String(required=True, validate=validate.OneOf(VAT_TYPES))
    positionType = fields.String(required=True, validate=validate.OneOf(POSITION_TYPES))


class PositionSchema(_LineFields):
    state = fields.String(required=True, validate=validate.OneOf(("open", "invoiced", "cancelled")))
    invoiceReference = fields.String(allow_none=True, required=True)
    returnedQuantity = _amount()
    goodwillAmount = _amount()


class OrderBodySchema(Schema):
    orderReference = fields.String(required=True)
    customerNumber = fields.String(required=True)
    currency = fields.String(required=True)
    version = fields.Integer(required=True)
    positions = fields.List(fields.Nested(PositionSchema), required=True)
    totals = fields.Nested(TotalsSchema, required=True)


class OrderResponseSchema(OrderBodySchema, WriteResponseSchema):
    """An order, as answered by a write."""


class TaxRowSchema(Schema):
    declarationCountry = fields.String(required=True)
    vatType = fields.String(required=True, validate=validate.OneOf(VAT_TYPES))
    vatPercent = _amount()
    net = _amount()
    vat = _amount()
    gross = _amount()


class LineSchema(_LineFields):
    gross = _amount()


class VersionSummarySchema(Schema):
    version = fields.Integer(required=True)
    grossTotal = _amount()
    netTotal = _amount()
    vatTotal = _amount()
    taxes = fields.List(fields.Nested(TaxRowSchema), required=True)


class VersionSchema(VersionSummarySchema):
    status = fields.String(required=True, validate=validate.OneOf(("issued", "nullified")))
    invoiceDate = fields.Date(required=True)
    dueDate = fields.Date(allow_none=True, required=True)
    lines = fields.List(fields.Nested(LineSchema), required=True)
    nullifiedBy = fields.String(allow_none=True, required=True)
    billToAddress = fields.Dict(allow_none=True, required=True)
    shipToAddress = fields.Dict(allow_none=True, required=True)
    details = fields.Dict(required=True)


class CreditNoteSchema(Schema):
    reference = fields.String(required=True)
    nullifiesVersion = fields.Integer(required=True)
    documentDate = fields.Date(required=True)
    grossTotal = _amount()
    netTotal = _amount()
    vatTotal = _amount()
    taxes = fields.List(fields.Nested(TaxRowSchema), required=True)


class InvoiceBodySchema(Schema):
    invoiceReference = fields.String(required=True)
    orderReference = fields.String(required=True)
    customerNumber = fields.String(required=True)
    currency = fields.String(required=True)
    currentVersion = fields.Integer(required=True)
    versions = fields.List(fields.Nested(VersionSchema), required=True)
    creditNotes = fields.List(fields.Nested(CreditNoteSchema), required=True)


class InvoiceResponseSchema(InvoiceBodySchema, WriteResponseSchema):
    """An invoice, as answered by a write."""


class RefundSchema(Schema):
    id = fields.String(required=True)
    amount = _amount()
    currency = fields.String(required=True)
    status = fields.String(
        required=True,
        validate=validate.OneOf(REFUND_STATUSES),
        metadata={
            "description": "pending, then in_payout (in a credit-transfer file or with the "
            "payment provider), then completed or failed (owed again until retried)."
        },
    )
    cause = fields.String(required=True)
    createdAt = fields.DateTime(required=True)
    method = fields.String(
        required=True,
        validate=validate.OneOf(("bank-transfer", "original-method")),
        metadata={
            "description": "bank-transfer to the bankDetails sent, else the original "
            "payment method."
        },
    )
    attempt = fields.Integer(required=True, metadata={"description": "Payouts started."})
    payoutReference = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The credit-transfer export or the provider's reference."},
    )
    failureReason = fields.String(required=True, allow_none=True)


class RefundsResponseSchema(Schema):
    refunds = fields.List(fields.Nested(RefundSchema), required=True)


class EventResponseSchema(WriteResponseSchema):
    """What a cancellation, return, goodwill or payment created."""

    reference = fields.String(required=True)
    order = fields.Nested(OrderBodySchema, required=True)
    refund = fields.Nested(RefundSchema, allow_none=True, required=True)


class CorrectionResponseSchema(WriteResponseSchema):
    dryRun = fields.Boolean(required=True)
    changed = fields.Boolean(required=True)
    invoiceReference = fields.String(required=True)
    version = fields.Integer(required=True)
    creditNoteReference = fields.String(allow_none=True, required=True)
    before = fields.Nested(VersionSummarySchema, required=True)
    after = fields.Nested(VersionSummarySchema, required=True)
    refund = fields.Nested(RefundSchema, allow_none=True, required=True)


class JournalLineSchema(Schema):
    account = fields.String(required=True)
    debit = _amount()
    credit = _amount()


class JournalEntrySchema(Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True)
    documentReference = fields.String(required=True)
    documentDate = fields.Date(required=True)
    createdAt = fields.DateTime(required=True)
    lines = fields.List(fields.Nested(JournalLineSchema), required=True)


class JournalResponseSchema(Schema):
    entries = fields.List(fields.Nested(JournalEntrySchema), required=True)


class TaxReportRowSchema(TaxRowSchema):
    """A report row: amounts of different currencies are never summed."""

    currency = fields.String(required=True)


class TaxReportResponseSchema(Schema):
    from_ = fields.Date(required=True, data_key="from")
    to = fields.Date(required=True)
    rows = fields.List(fields.Nested(TaxReportRowSchema), required=True)


class FieldErrorSchema(Schema):
    field = fields.String(required=True)
    code = fields.String(required=True)
    message = fields.String(required=True)


class ProblemSchema(Schema):
    """RFC 9457 problem details with a stable code and every field error."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    code = fields.String(required=True)
    requestId = fields.String(required=True)
    errors = fields.List(fields.Nested(FieldErrorSchema), required=True)
