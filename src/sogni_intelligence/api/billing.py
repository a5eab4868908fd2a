"""Who pays for a piece of work and which app asked for it: `token_type`, `billing_mode` and
`app_source` in a request body, or the `X-Token-Type` and `X-App-Source` headers. A body field
wins over its header; either is checked, and a bad value is a 400."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Header
from pydantic import StringConstraints

TokenType = Literal["spark", "sogni", "auto"]
BillingMode = Literal["auto", "subscription", "tokens"]
#: A short label of the calling app: letters, digits and a few separators, nothing that could
#: break a log line or a header.
AppSource = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._:/@+()-]*$",
    ),
]


@dataclass(frozen=True)
class BillingHeaders:
    token_type: TokenType | None
    app_source: str | None

    def billing(
        self,
        token_type: TokenType | None,
        billing_mode: BillingMode | None,
        app_source: str | None,
    ) -> dict[str, str | None]:
        """The request's billing fields as records keep them (camelCase), the body's first."""
        return {
            "tokenType": token_type or self.token_type,
            "billingMode": billing_mode,
            "appSource": app_source or self.app_source,
        }


async def _billing_headers(
    x_token_type: Annotated[TokenType | None, Header()] = None,
    x_app_source: Annotated[AppSource | None, Header()] = None,
) -> BillingHeaders:
    return BillingHeaders(x_token_type, x_app_source)


#: The billing headers of a request that starts (or resumes) work.
RequestBilling = Annotated[BillingHeaders, Depends(_billing_headers)]
