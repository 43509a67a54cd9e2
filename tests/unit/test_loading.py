"""The compiled load (app/api/loading.py) answers only bodies marshmallow accepts, with exactly
marshmallow's result; every other body goes to marshmallow, which says what is wrong.

The reference is marshmallow's own load with the compiled one switched off everywhere, nested
schemas included. Broken bodies are made by hypothesis: valid bodies with values replaced,
removed, added or repeated anywhere in them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields, post_load

from app.api import schemas
from app.api.loading import Unsure, compile_loader
from tests.factories import InvoiceFactory, OrderFactory, correction, item

_FULL_ADDRESS = {
    "salutation": "Frau", "title": "Dr.", "firstName": "Erika", "lastName": "Mustermann",
    "companyName": "Muster GmbH", "careOf": "Empfang", "street": "Heidestr.",
    "streetNumber": "17", "postalCode": "51147", "postalPlace": "Koeln", "countryCode": "DE",
    "state": "NRW", "nationality": "AT", "email": "erika@example.com", "phone": "+49 221 1",
    "language": "de", "customerGroup": "B2C", "taxIdentificationNumber": "DE123456789",
    "birthDate": "1980-02-29T10:00:00Z",
}  # fmt: skip
_BANK = {"iban": "DE89370400440532013000", "bic": "COBADEFFXXX", "accountOwner": "E. M."}


def _order() -> dict[str, Any]:
    return OrderFactory(
        orderReference="ORD1",
        customerNumber="C-1",
        shipToAddress=dict(_FULL_ADDRESS),
        paymentReference={"type": "card"},
        carrier="DHL",
        items=[
            item(1, subscription={"every": "month"}),
            item(2, "23.80", quantity="2.5"),
            item(3, "5.35", "7", reportingPositionData={"cost": "1"}),
        ],
    )


def _bodies() -> dict[str, tuple[type[Schema], dict[str, Any]]]:
    order = _order()
    invoice = InvoiceFactory(invoiceReference="INV1", carrier="DHL", trackingCode="T1")
    refs = [{"orderItemReference": 1}, {"orderItemReference": 3}]
    return {
        "correction": (schemas.CorrectionSchema, correction(order, invoice)),
        "correction with goodwill": (
            schemas.CorrectionSchema,
            correction(order, invoice, goodwillReference="G1"),
        ),
        "order": (schemas.OrderSchema, order),
        "invoice": (schemas.CreateInvoiceSchema, invoice),
        "cancellation": (
            schemas.CancellationSchema,
            {
                "cancellationDate": "2024-06-02",
                "cancellationReason": "OUT_OF_STOCK",
                "invoiceReference": "I1",
                "items": refs,
                "bankDetails": dict(_BANK),
            },
        ),
        "return": (
            schemas.ReturnSchema,
            {
                "returnReference": "R1",
                "returnReason": "CUSTOMER_RETURN",
                "items": [
                    {
                        "orderItemReference": 2,
                        "quantity": Decimal("1.5"),
                        "grossUnitPrice": Decimal("23.80"),
                        "vatAmount": Decimal("3.80"),
                        "vatPercent": 19,
                        "vatType": "NORMAL",
                    }
                ],
            },
        ),
        "goodwill": (
            schemas.GoodwillSchema,
            {
                "goodwillReference": "G1",
                "goodwillReason": "OTHER",
                "creditDate": "2024-06-12",
                "items": [
                    {"orderItemReference": 1, "quantity": 1, "grossUnitPrice": Decimal("2.00")}
                ],
            },
        ),
        "payment": (
            schemas.PaymentSchema,
            {
                "authorizedAmount": Decimal("47.60"),
                "paymentProvider": "PayPal",
                "paymentReference": "P1",
                "paymentDate": "2024-06-11",
            },
        ),
    }


BODIES = _bodies()


@pytest.fixture(autouse=True)
def _marshmallow_alone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Schema.load is marshmallow's alone here, so it is the reference."""
    monkeypatch.setattr(schemas.StrictSchema, "_fast", None)
    yield


def _reference(schema: Schema, data: Any) -> tuple[str, Any]:
    try:
        return "loaded", schema.load(data)
    except ValidationError as error:
        return "refused", error.messages


def _compiled(schema: Schema, data: Any) -> tuple[str, Any]:
    load = compile_loader(schema)
    assert load is not None
    try:
        return "loaded", load(data)
    except Unsure:
        return "unsure", None


def _assert_agrees(schema_class: type[Schema], data: Any) -> str:
    expected = _reference(schema_class(), data)
    got = _compiled(schema_class(), data)
    if got[0] == "loaded":
        assert expected[0] == "loaded", f"accepted what marshmallow refuses: {expected[1]}"
        assert repr(got[1]) == repr(expected[1])  # the same values, types and order
    else:
        assert expected[0] == "refused", "unsure of a body marshmallow accepts"
    return got[0]


@pytest.mark.parametrize("name", sorted(BODIES))
def test_a_valid_body_is_loaded_as_marshmallow_loads_it(name: str) -> None:
    schema_class, body = BODIES[name]

    assert _assert_agrees(schema_class, body) == "loaded"


def test_every_request_schema_is_compiled() -> None:
    request_schemas = [
        value
        for value in vars(schemas).values()
        if isinstance(value, type) and issubclass(value, schemas.StrictSchema)
    ]

    assert len(request_schemas) > 10
    assert [s.__name__ for s in request_schemas if compile_loader(s()) is None] == []


# --- broken bodies --------------------------------------------------------------------------

_NEAR_VALID = st.sampled_from(
    [
        "", "x", "x" * 31, "x" * 256, "DE", "de", "XX", "EUR", "eur", "NORMAL", "ECOM",
        "SALES_ARTICLE", "2024-06-01", "2024-02-30", "2024-06-01T25:00", "a@b.de", "@",
        "DE89370400440532013000", "DE00370400440532013000", "COBADEFFXXX", 0, 1, -1, 2, 3,
        999999, 1000000, 10**9, 10**9 + 1, 10**30, True, False, None, Decimal("0.001"),
        Decimal("0.0001"), Decimal("-0.01"), Decimal("1E+3"), Decimal("100.5"), [], {},
        [{"orderItemReference": 1}], {"orderItemReference": 1}, {"k": 1},
    ]
)  # fmt: skip
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
_VALUES = _NEAR_VALID | _JSON


def _value(draw: st.DrawFn) -> Any:
    return copy.deepcopy(draw(_VALUES))  # a list or object of its own, never a shared one


def _containers(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    children = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in children:
        if isinstance(child, dict | list):
            yield from _containers(child, (*path, key))


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


@st.composite
def _broken(draw: st.DrawFn) -> tuple[type[Schema], Any]:
    schema_class, body = BODIES[draw(st.sampled_from(sorted(BODIES)))]
    body = copy.deepcopy(body)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_containers(body))
        target = _at(body, draw(st.sampled_from(paths)))
        keys = list(target) if isinstance(target, dict) else list(range(len(target)))
        operation = draw(st.sampled_from(["replace", "remove", "add", "repeat"]))
        if operation == "add" or not keys:
            if isinstance(target, dict):
                target[draw(st.sampled_from(["unknown", "items", *keys]) | st.text(max_size=5))] = (
                    _value(draw)
                )
            else:
                target.append(_value(draw))
            continue
        key = draw(st.sampled_from(keys))
        if operation == "replace":
            target[key] = _value(draw)
        elif operation == "remove":
            del target[key]
        elif isinstance(target, list):
            target.append(copy.deepcopy(target[key]))
        else:
            target[key] = copy.deepcopy(target[key])
    if draw(st.integers(0, 20)) == 0:
        return schema_class, _value(draw)  # not an object at all
    return schema_class, body


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_broken())
def test_a_broken_body_is_never_loaded_unless_marshmallow_loads_it(
    case: tuple[type[Schema], Any],
) -> None:
    event(_assert_agrees(*case))  # --hypothesis-show-statistics: how many of each


# --- what the compiled load does not read ---------------------------------------------------


class _WithPostLoad(schemas.StrictSchema):
    name = fields.String()

    @post_load
    def _upper(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {"name": data["name"].upper()}


class _Dotted(schemas.StrictSchema):
    name = fields.String(attribute="person.name")


class _Holder(schemas.StrictSchema):
    inner = fields.Nested(_WithPostLoad)


@pytest.mark.parametrize("schema_class", [_WithPostLoad, _Dotted])
def test_a_schema_with_options_it_does_not_read_is_left_to_marshmallow(
    schema_class: type[Schema], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.undo()  # the production load, compiled where it can be

    assert compile_loader(schema_class()) is None
    assert _WithPostLoad().load({"name": "ab"}) == {"name": "AB"}
    assert _Dotted().load({"name": "ab"}) == {"person": {"name": "ab"}}


def test_such_a_schema_nested_in_a_compiled_one_is_loaded_by_marshmallow() -> None:
    schema = _Holder()

    assert compile_loader(schema) is not None
    assert _compiled(schema, {"inner": {"name": "ab"}}) == ("loaded", {"inner": {"name": "AB"}})
    assert _compiled(schema, {"inner": {"name": 5}}) == ("unsure", None)
    assert _reference(schema, {"inner": {"name": 5}}) == (
        "refused",
        {"inner": {"name": ["Not a valid string."]}},
    )


def test_the_production_load_answers_marshmallows_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    schema_class, body = BODIES["correction"]
    broken = copy.deepcopy(body)
    broken["order"]["items"][1]["vatType"] = "HALF"
    broken["invoice"]["items"].append({"orderItemReference": 1})
    expected = _reference(schema_class(), broken)
    monkeypatch.undo()

    with pytest.raises(ValidationError) as error:
        schema_class().load(broken)

    assert ("refused", error.value.messages) == expected
    assert error.value.messages == {
        "order": {
            "items": {1: {"vatType": ["Must be one of: NORMAL, REDUCED, TAXLESS, REVERSE."]}}
        },
        "invoice": {"items": {2: {"orderItemReference": ["Position 1 named more than once."]}}},
    }
