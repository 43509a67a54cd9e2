"""marshmallow's fields, as the request and response schemas use them, minus one cost.

marshmallow runs a field's validators on each value it loads through an `And` of them that it
builds anew for every value, and a correction's body loads 88 fields. These fields run the
validators themselves, and only when one of them refuses the value do they run marshmallow's
`And` again, so the errors are exactly marshmallow's (all of a field's messages together).
Everything else is marshmallow's.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError
from marshmallow import fields as _fields


class _Validated(_fields.Field):
    def _validate(self, value: Any) -> None:
        try:
            for validator in self.validators:
                validator(value)
        except ValidationError:
            super()._validate(value)  # refused: marshmallow's own run, for its combined errors
            raise


class Boolean(_Validated, _fields.Boolean):
    pass


class Date(_Validated, _fields.Date):
    pass


class DateTime(_Validated, _fields.DateTime):
    pass


class Decimal(_Validated, _fields.Decimal):
    pass


class Dict(_Validated, _fields.Dict):
    pass


class Email(_Validated, _fields.Email):
    pass


class Integer(_Validated, _fields.Integer):
    pass


class List(_Validated, _fields.List):
    pass


class Nested(_Validated, _fields.Nested):
    pass


class String(_Validated, _fields.String):
    pass
