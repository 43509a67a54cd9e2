"""EU VAT identification numbers, checked by their published check digits."""

from stdnum.eu import vat


def is_valid_eu_vat_id(value: str | None) -> bool:
    """True when the number has an EU country prefix and passes its checksum."""
    return bool(value) and bool(vat.is_valid(value or ""))
