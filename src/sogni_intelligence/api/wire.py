"""The base of every request body: the public REST fields are accepted in snake_case or
camelCase, and unknown fields are ignored (clients add their own)."""

from __future__ import annotations

from pydantic import AliasChoices, AliasGenerator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


def _both_spellings(name: str) -> AliasChoices:
    return AliasChoices(name, to_camel(name))


class WireModel(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        populate_by_name=True,
        alias_generator=AliasGenerator(validation_alias=_both_spellings),
    )
