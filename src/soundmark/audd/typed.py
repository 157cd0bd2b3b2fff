"""The one typed layer that parses every method's parameters (pydantic models).

AudD clients send every parameter as a string (query string, form field or JSON value). Each
method declares a model of the parameters it reads, with the field types below; ``parse(Model,
api)`` validates the request's parameters against it and turns the first problem into AudD's
error 50 with a message naming the parameter — never an ``OverflowError`` or a 500. Integers are
plain decimal digits (``1_0``, ``1e3``, ``inf`` refused) within the bounds a field declares.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from soundmark.audd.errors import ApiError

# The largest integer any id or count may take: SQLite's INTEGER is a signed 64-bit value.
MAX_INT64 = 2**63 - 1
# Up to 40 digits are read (cheap), so a too-large value is told its bound, not its spelling.
_DIGITS = re.compile(r"[+]?[0-9]{1,40}")
_NUMBER = re.compile(r"[+-]?([0-9]{1,12}(\.[0-9]{0,6})?|\.[0-9]{1,6})")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _int(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be an integer")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not _DIGITS.fullmatch(text):
        raise ValueError("must be a whole number written in digits")
    return int(text)


def _float(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, int | float):
        if not math.isfinite(float(value)):
            raise ValueError("must be a finite number")
        return float(value)
    text = str(value).strip()
    if not _NUMBER.fullmatch(text):
        raise ValueError("must be a decimal number (at most 12 digits before the point)")
    return float(text)


def _bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE or text == "":
        return False
    raise ValueError("must be true or false")


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


# Field types for parameter models. Bounds go in ``Field(ge=..., le=...)`` of each model.
Int = Annotated[int, BeforeValidator(_int)]
Float = Annotated[float, BeforeValidator(_float)]
Flag = Annotated[bool, BeforeValidator(_bool)]
Id = Annotated[int, BeforeValidator(_int), Field(ge=0, le=MAX_INT64)]
OptionalId = Annotated[Id | None, BeforeValidator(_blank_to_none)]
Text = Annotated[str, Field(max_length=10_000)]


class Params(BaseModel):
    """Base of every method's parameter model: unknown parameters are ignored (AudD's way),
    values arrive as strings and are stripped."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, frozen=True)


M = TypeVar("M", bound=Params)


def parse(model: type[M], params: dict[str, str]) -> M:
    """``params`` validated as ``model``; the first problem becomes AudD's error 50.

    Empty strings count as absent, so a field's default applies (``?limit=`` is no limit).
    """
    present = {k: v for k, v in params.items() if not (isinstance(v, str) and v.strip() == "")}
    try:
        return model.model_validate(present)
    except ValidationError as exc:
        raise ApiError(50, describe(exc)) from None


def describe(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "a parameter"
    msg = str(err.get("msg", "is invalid"))
    msg = msg.removeprefix("Value error, ")
    return f"`{where}` {_lower_first(msg)}."


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text else text
