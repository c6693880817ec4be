"""``GET /api/v1/swagger.json``: Mailpit's own OpenAPI 2.0 description of API v1, served as Mailpit serves it.

The file is Mailpit's (``server/ui/api/v1/swagger.json``, MIT licence, kept in ``mailpit-swagger.json`` beside this
module, the same text as ``shared/reference``): clients that generate code from it, or check a server against it,
see the API they know. courrier's own additions are described at ``/api/openapi.json``.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from starlette.responses import Response

router = APIRouter(tags=["application"])


@cache
def _document() -> bytes:
    return (resources.files("courrier.web.api") / "mailpit-swagger.json").read_bytes()


@router.get("/api/v1/swagger.json", summary="Mailpit's API v1 description (swagger 2.0)")
async def swagger() -> Response:
    return Response(_document(), media_type="application/json")
