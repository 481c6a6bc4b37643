"""Text metadata inside saved images, where ComfyUI puts it: PNG text chunks, or EXIF entries "key:value" for
JPG/WEBP (0x0110 Model for the first key, then 0x010F Make, 0x010E ... as ComfyUI's WEBP saver does)."""

from __future__ import annotations

import io
import logging

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from .images import FORMATS

TASK_KEY = "sdxlkit_task"
_FIRST_EXIF_TAG = 0x0110
_JPEG_EXIF_LIMIT = 0xFFFF - 2  # an APP1 segment's length field counts its own two bytes
logger = logging.getLogger(__name__)


def encode_with_metadata(image: Image.Image, fmt: str, quality: int, texts: dict[str, str]) -> bytes:
    pil_format = FORMATS[fmt][0]
    buffer = io.BytesIO()
    if pil_format == "PNG":
        info = PngInfo()
        for key, value in texts.items():
            info.add_text(key, value)
        image.save(buffer, format="PNG", pnginfo=info, compress_level=4)
        return buffer.getvalue()
    rgb = image.convert("RGB")
    if pil_format == "WEBP":
        rgb.save(buffer, format="WEBP", quality=quality, exif=_exif(texts))
        return buffer.getvalue()
    kept = _fitting_jpeg_texts(texts)
    rgb.save(buffer, format="JPEG", quality=quality, exif=_exif(kept))
    return buffer.getvalue()


def _exif(texts: dict[str, str]) -> Image.Exif:
    exif = Image.Exif()
    for offset, (key, value) in enumerate(texts.items()):
        exif[_FIRST_EXIF_TAG - offset] = f"{key}:{value}"
    return exif


def _fitting_jpeg_texts(texts: dict[str, str]) -> dict[str, str]:
    """The entries that fit a JPEG's one 64 KB EXIF segment, leaving out the largest first (a task with inline images
    can be far larger): the image is still written, and the warning says what was left out and how to keep it."""
    kept = dict(texts)
    while kept and len(_exif(kept).tobytes()) > _JPEG_EXIF_LIMIT:
        key = max(kept, key=lambda k: len(kept[k]))
        logger.warning("the %r metadata (%d characters) does not fit in a JPEG's 64 KB EXIF segment and was left out; "
                       "save as PNG or WEBP to keep it", key, len(kept.pop(key)))
    return kept


def read_texts(data: bytes) -> dict[str, str]:
    """The text metadata of an image written by encode_with_metadata (or by ComfyUI)."""
    image = Image.open(io.BytesIO(data))
    if image.format == "PNG":
        return dict(image.text)
    texts = {}
    for value in image.getexif().values():
        if isinstance(value, str) and ":" in value:
            key, _, text = value.partition(":")
            texts[key] = text
    return texts


IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF")


def is_image(data: bytes) -> bool:
    return data.startswith(IMAGE_SIGNATURES)


def task_from_image(data: bytes, name: str) -> str:
    """The task JSON an image saved by sdxlkit carries (SDXLKit_Save, `sdxlkit run`)."""
    from .errors import SdxlKitError

    try:
        texts = read_texts(data)
    except Exception as exc:  # PIL raises several types for unreadable images
        raise SdxlKitError(f"{name}: not a readable image ({exc})") from None
    if TASK_KEY not in texts:
        raise SdxlKitError(f"{name}: carries no sdxlkit task (images saved by SDXLKit_Save or `sdxlkit run` do; "
                           f"found metadata keys: {', '.join(sorted(texts)) or 'none'})")
    return texts[TASK_KEY]
