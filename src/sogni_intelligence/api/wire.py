"""The base of every request body: the public REST fields are accepted in snake_case or
camelCase, and unknown fields are ignored (clients add their own)."""

from __future__ import annotations

import re
from typing import Generic, Literal, TypeVar

from pydantic import AliasChoices, AliasGenerator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

#: Control characters, which no name or URL a client sends may hold (PostgreSQL refuses NUL).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def printable(value: str) -> str:
    """`value` when it holds no control characters (a field validator's body)."""
    if CONTROL_CHARACTERS.search(value):
        raise ValueError("must not contain control characters")
    return value


#: The largest integer a query parameter or header may carry into a database query (the range of
#: a PostgreSQL INTEGER column); a larger one is a 400 instead of a driver's overflow error.
MAX_DB_INT = 2**31 - 1


def _both_spellings(name: str) -> AliasChoices:
    return AliasChoices(name, to_camel(name))


class WireModel(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        populate_by_name=True,
        alias_generator=AliasGenerator(validation_alias=_both_spellings),
    )


DataT = TypeVar("DataT")


class Envelope(BaseModel, Generic[DataT]):
    """The Sogni REST success shape: `{"status": "success", "data": ...}`."""

    status: Literal["success"] = "success"
    data: DataT
