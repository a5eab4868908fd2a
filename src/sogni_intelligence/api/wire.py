"""The base of every request body: the public REST fields are accepted in snake_case or
camelCase, and unknown fields are ignored (clients add their own)."""

from __future__ import annotations

from pydantic import AliasChoices, AliasGenerator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

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
