"""``GET /api/courrier/message/{ID}/auth``: SPF, DKIM and DMARC verdicts for a message (``web/verdicts.py``).

Answer: ``{"ID", "Verdict": "authentic"|"forged"|"unverifiable", "Why", "Client", "Helo", "MailFrom",
"SPF": {"Result", "Domain", "Reason", "Record"}, "DKIM": [{"Result", "Domain", "Selector", "Reason"}],
"DMARC": {"Result", "Domain", "Policy", "Reason"}, "Header"}`` (``Header``: the Authentication-Results value an
MX would add, RFC 8601). A report is kept; ``?recheck=1`` asks the DNS again, say after publishing a record.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from courrier.web.api.common import ctx, not_found, resolve_or_404, source
from courrier.web.asgi import json_ok

router = APIRouter(prefix="/api/courrier", tags=["courrier"])


@router.get("/message/{ID}/auth", summary="SPF, DKIM and DMARC verdicts for a message (checked on demand)")
async def message_auth(request: Request, ID: str) -> Response:  # noqa: N803
    src = source(request)
    msg_id = await resolve_or_404(request, ID)
    checks = ctx(request).verdicts
    assert checks is not None  # build_context sets it
    out = await checks.report(src, msg_id, recheck=request.query_params.get("recheck") == "1")
    if out is None:
        raise not_found()
    return json_ok(out)
