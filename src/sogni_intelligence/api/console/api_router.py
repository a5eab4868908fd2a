"""Routes of the web console: its static files, shipped inside the package.

The pages hold no secrets and need no key; everything they show comes from the public `/v1`
routes, called from the browser with the key the user signs in with. A strict
Content-Security-Policy allows scripts, styles and API calls from this origin only; media
previews may load from anywhere, because artifact URLs point at the public base URL or an
object store.
"""

from __future__ import annotations

import re
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from sogni_intelligence.errors import ServiceError

router = APIRouter(include_in_schema=False)

STATIC = resources.files("sogni_intelligence.api.console") / "static"
#: `name.ext` or `folder/name.ext`, lower-case: nothing else is ever looked up on disk.
FILE_NAME = re.compile(r"^(?:[a-z0-9_-]+/)?[a-z0-9_-]+\.(html|js|css|svg)$")
MEDIA_TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
}
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data: blob: http: https:",
        "media-src 'self' blob: http: https:",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _file(name: str) -> Response:
    matched = FILE_NAME.match(name)
    path = STATIC.joinpath(*name.split("/")) if matched else None
    if matched is None or path is None or not path.is_file():
        raise ServiceError(f"No console file {name!r}", 404, "not_found_error")
    return Response(path.read_bytes(), media_type=MEDIA_TYPES[matched.group(1)], headers=HEADERS)


@router.get("/console")
async def console_root() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=308)


@router.get("/console/")
async def console_index() -> Response:
    return _file("index.html")


@router.get("/console/{name:path}")
async def console_file(name: str) -> Response:
    return _file(name)
