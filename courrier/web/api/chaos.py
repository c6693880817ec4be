"""``GET|PUT /api/v1/chaos``: Mailpit's chaos triggers (``server/apiv1/chaos.go``), capture mode only.

Both answer 400 "Chaos is not enabled" unless ``[capture] chaos`` is on (Mailpit: ``--enable-chaos``). PUT replaces
every trigger — an omitted one resets to its default code with 0 % — and answers the new set (``capture/chaos.py``).
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from courrier.capture.chaos import Chaos, ChaosError
from courrier.web.api.common import ctx, json_body
from courrier.web.asgi import json_ok

router = APIRouter(tags=["testing"])


def _chaos(request: Request) -> Chaos:
    src = ctx(request).source
    chaos: Chaos | None = src.store.chaos if src is not None else None
    if chaos is None or not chaos.enabled:
        raise HTTPException(400, "Chaos is not enabled")
    return chaos


@router.get("/api/v1/chaos", summary="Get Chaos triggers")
async def get_chaos(request: Request) -> Response:
    return json_ok(_chaos(request).as_json())


@router.put("/api/v1/chaos", summary="Set Chaos triggers")
async def set_chaos(request: Request) -> Response:
    chaos = _chaos(request)
    try:
        chaos.set_from(await json_body(request))
    except ChaosError as e:
        raise HTTPException(400, str(e)) from None
    return json_ok(chaos.as_json())
