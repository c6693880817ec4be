"""The thumbnail drawing of ``courrier/web/api/thumb.py`` (Mailpit's ``server/apiv1/thumbnails.go``) on its own."""

import io
import struct
import zlib

from PIL import Image

from courrier.web.api.thumb import HEIGHT, WIDTH, blank, thumbnail


def png(size, colour=(0, 128, 0, 255)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, colour).save(out, "PNG")
    return out.getvalue()


def test_small_image_is_centred_not_enlarged():
    img = Image.open(io.BytesIO(thumbnail(png((30, 20)))))
    assert img.size == (WIDTH, HEIGHT)
    assert img.convert("RGB").getpixel((90, 60))[1] > 100  # the green image in the middle
    assert img.convert("RGB").getpixel((10, 10)) >= (240, 240, 240)  # white padding around it


def test_decompression_bomb_gets_the_blank_image():
    raw = bytearray(png((1, 1)))
    ihdr = struct.pack(">II", 60000, 60000) + bytes(raw[24:29])  # width, height, then depth/colour/…
    raw[16:29] = ihdr
    raw[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    assert thumbnail(bytes(raw)) == blank()
