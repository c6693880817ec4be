"""Client set-up over HTTP, open to everyone in both modes (no credentials: a client asks before it has any):

- ``GET /.well-known/autoconfig/mail/config-v1.1.xml`` and ``GET /mail/config-v1.1.xml`` (the latter is what
  Thunderbird asks ``autoconfig.<domain>``): Thunderbird's autoconfig document;
- ``POST /autodiscover/autodiscover.xml``: Outlook's autodiscover (the request is XML from anyone: bounded and parsed
  with defusedxml, see courrier/clientconfig.py);
- ``GET /.well-known/mta-sts.txt``: the inbound MTA-STS policy (RFC 8461 §3.2), served for Host
  ``mta-sts.<local domain>`` as well (web/guard.py admits those names).

The documents themselves are built in courrier/clientconfig.py.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from courrier import clientconfig
from courrier.web.asgi import ctx_of

router = APIRouter()

XML = "application/xml; charset=utf-8"


@router.get("/.well-known/autoconfig/mail/config-v1.1.xml", include_in_schema=False)
@router.get("/mail/config-v1.1.xml", include_in_schema=False)
async def autoconfig(request: Request) -> Response:
    address = request.query_params.get("emailaddress")
    return Response(clientconfig.thunderbird(ctx_of(request).cfg, address), media_type=XML)


@router.post("/autodiscover/autodiscover.xml", include_in_schema=False)
@router.post("/Autodiscover/Autodiscover.xml", include_in_schema=False)
async def autodiscover(request: Request) -> Response:
    body = bytearray()
    async for chunk in request.stream():  # bounded while reading, whatever Content-Length claims
        body += chunk
        if len(body) > clientconfig.AUTODISCOVER_MAX:
            raise HTTPException(413, "request too large")
    try:
        address = clientconfig.autodiscover_request(bytes(body))
    except clientconfig.AutodiscoverError as e:
        raise HTTPException(400, str(e)) from None
    return Response(clientconfig.autodiscover_response(ctx_of(request).cfg, address), media_type=XML)


@router.get("/.well-known/mta-sts.txt", include_in_schema=False)
async def mta_sts(request: Request) -> Response:
    return PlainTextResponse(clientconfig.mta_sts_policy(ctx_of(request).cfg))
