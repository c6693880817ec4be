"""``GET /api/v1/message/{ID}/part/{PartID}/thumb``: a 180×120 JPEG thumbnail of an image part, as Mailpit's
``server/apiv1/thumbnails.go`` draws it.

- An image at least 180×120 is scaled to cover the box and cropped at its centre; a smaller one is only scaled
  down to fit (never enlarged) and centred. Either is laid on white, so transparent PNG/GIF areas come out white,
  and EXIF orientation is applied first. JPEG quality 70.
- A part that is not ``image/*``, or that Pillow cannot decode, gets a blank white 180×120 JPEG (Mailpit's
  ``blankImage``), never an error.
- Bounded work: an image claiming more than ``MAX_PIXELS`` is not decoded (a decompression bomb gets the blank
  image); decoding runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import io
from functools import cache

from fastapi import APIRouter
from PIL import Image, ImageOps
from starlette.requests import Request
from starlette.responses import Response

from courrier.web.api.common import not_found, resolve_or_404, source

router = APIRouter(tags=["message"])

WIDTH, HEIGHT = 180, 120
QUALITY = 70
MAX_PIXELS = 40_000_000  # ~ 8000×5000; far beyond a mail attachment's photo, well below memory trouble


def _jpeg(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=QUALITY)
    return out.getvalue()


@cache
def blank() -> bytes:
    return _jpeg(Image.new("RGB", (WIDTH, HEIGHT), "white"))


def thumbnail(data: bytes) -> bytes:
    """The thumbnail of an image's bytes, or the blank one when they are no image Pillow can read."""
    try:
        with Image.open(io.BytesIO(data)) as src:
            w, h = src.size
            if w * h > MAX_PIXELS or w <= 0 or h <= 0:
                return blank()
            src.draft("RGB", (WIDTH * 2, HEIGHT * 2))  # JPEG: decode at a reduced scale when it can
            img = ImageOps.exif_transpose(src).convert("RGBA")
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError):
        return blank()
    if img.width < WIDTH or img.height < HEIGHT:
        img.thumbnail((WIDTH, HEIGHT), Image.Resampling.LANCZOS)  # imaging.Fit: only ever scales down
    else:
        img = ImageOps.fit(img, (WIDTH, HEIGHT), Image.Resampling.LANCZOS, centering=(0.5, 0.5))  # imaging.Fill
    canvas = Image.new("RGB", (WIDTH, HEIGHT), "white")
    canvas.paste(img, ((WIDTH - img.width) // 2, (HEIGHT - img.height) // 2), img)
    return _jpeg(canvas)


def _disposition(name: str) -> str:
    """Mailpit's ``filename="…"``, kept to printable ASCII without quotes so the header cannot be broken."""
    safe = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in name[:200])
    return f'filename="{safe}"'


@router.get("/api/v1/message/{ID}/part/{PartID}/thumb", summary="Get an attachment image thumbnail")
async def get_thumb(request: Request, ID: str, PartID: str) -> Response:  # noqa: N803
    msg_id = await resolve_or_404(request, ID)
    got = await source(request).part(msg_id, PartID)
    if got is None:
        raise not_found("part")
    ctype, fname, data = got
    jpeg = await asyncio.to_thread(thumbnail, data) if ctype.lower().startswith("image/") else blank()
    return Response(jpeg, media_type="image/jpeg", headers={"Content-Disposition": _disposition(fname)})
