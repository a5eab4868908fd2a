"""`GET /metrics` on the API port, for admin keys: the Prometheus text exposition. (With
`metrics_port` set, metrics are served on that port instead and this route is not mounted.)"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from sogni_intelligence.api.auth import AdminKey
from sogni_intelligence.api.state import server_of
from sogni_intelligence.observability.metrics import CONTENT_TYPE, scrape
from sogni_intelligence.runtime.gauges import gauge_refresher

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, _: AdminKey) -> Response:
    body = await scrape(gauge_refresher(server_of(request).records))
    return Response(body, media_type=CONTENT_TYPE)
