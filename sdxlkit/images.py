"""Image inputs (data URI, base64, local path, opt-in http(s) URL) and encoded outputs (JPG/PNG/WEBP)."""

from __future__ import annotations

import base64
import binascii
import io
import re
from pathlib import Path

from PIL import Image, ImageOps

from .errors import ImageInputError

_DATA_URI = re.compile(r"^data:image/[\w.+-]+;base64,(?P<data>.*)$", re.DOTALL)
MAX_URL_BYTES = 50 * 1024 * 1024
MAX_PIXELS = 4096 * 4096  # an input image's decoded size, checked from its header before any pixel is decoded
FORMATS = {"JPG": ("JPEG", "image/jpeg", "jpg"), "PNG": ("PNG", "image/png", "png"), "WEBP": ("WEBP", "image/webp", "webp")}


def _open(data: bytes, field: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
    except Exception as exc:
        raise ImageInputError(f"{field}: the data is not a readable image ({exc})") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageInputError(f"{field}: the image is {width}x{height}; input images may have at most {MAX_PIXELS} "
                              f"pixels (4096x4096); scale it down first")
    try:
        image.load()
    except Exception as exc:
        raise ImageInputError(f"{field}: the data is not a readable image ({exc})") from None
    # a phone photo stores the sensor's pixels and an EXIF orientation, which viewers and ComfyUI's LoadImage apply
    return ImageOps.exif_transpose(image)


def _fetch(url: str, field: str) -> bytes:
    from urllib.request import Request, urlopen

    try:
        with urlopen(Request(url, headers={"User-Agent": "sdxlkit"}), timeout=30) as response:
            data = response.read(MAX_URL_BYTES + 1)
    except Exception as exc:
        raise ImageInputError(f"{field}: cannot download {url} ({exc})") from None
    if len(data) > MAX_URL_BYTES:
        raise ImageInputError(f"{field}: {url} is larger than {MAX_URL_BYTES // 2**20} MiB")
    return data


def load_image(ref: str, field: str, *, allow_urls: bool = False, base_dir: Path | None = None) -> Image.Image:
    """Decode an image reference from a task. `field` (e.g. "inputs.seedImage") names it in errors."""
    match = _DATA_URI.match(ref)
    if match:
        return _open(_b64decode(match["data"], field), field)
    if ref.startswith(("http://", "https://")):
        if not allow_urls:
            raise ImageInputError(
                f"{field}: http(s) image URLs are off by default; pass a data URI, base64 or a local file, "
                "or enable URLs explicitly (CLI --allow-urls)"
            )
        return _open(_fetch(ref, field), field)
    path = file_reference(ref, base_dir)
    if path is not None:
        return _open(path.read_bytes(), field)
    if re.fullmatch(r"[A-Za-z0-9+/=\s_-]+", ref) and len(ref) >= 16:
        return _open(_b64decode(ref, field), field)
    raise ImageInputError(f"{field}: not a data URI, base64 image or existing file: {ref[:80]!r}")


def file_reference(ref: str, base_dir: Path | None = None) -> Path | None:
    """The local file an image reference names (relative names start at base_dir), or None when it names none."""
    if _DATA_URI.match(ref) or ref.startswith(("http://", "https://")) or len(ref) >= 4096:
        return None
    path = Path(ref.removeprefix("file://")).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path if _is_file(path) else None


def _is_file(path: Path) -> bool:
    """False also for text no file system accepts as a name (bare base64 longer than a file name may be)."""
    try:
        return path.is_file()
    except OSError:
        return False


def _b64decode(text: str, field: str) -> bytes:
    try:
        cleaned = re.sub(r"\s", "", text)
        altchars = b"-_" if ("-" in cleaned or "_" in cleaned) else None
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), altchars=altchars, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageInputError(f"{field}: invalid base64 data ({exc})") from None


def _eight_bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit greyscale (PNG "I;16" depth maps, "I", "F") scaled to 8 bits: Pillow's convert() clips
    every value above 255 to white."""
    if image.mode not in ("I;16", "I;16B", "I;16L", "I", "F"):
        return image
    import numpy as np

    values = np.asarray(image, dtype=np.float64)
    top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
    return Image.fromarray(np.clip(values / top * 255 + 0.5, 0, 255).astype(np.uint8), "L")


def to_rgb(image: Image.Image) -> Image.Image:
    image = _eight_bit(image)
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def to_mask(image: Image.Image) -> Image.Image:
    """A mask image as 8-bit luminance: white = repaint. An image with transparency uses its alpha (opaque =
    repaint); an alpha opaque everywhere (canvas and editor exports) carries no mask, so its luminance is the mask."""
    image = _eight_bit(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        alpha = image.convert("RGBA").getchannel("A")
        if alpha.getextrema() != (255, 255):
            return alpha
    return image.convert("L")


def data_uri(data: bytes, fmt: str) -> str:
    return f"data:{FORMATS[fmt][1]};base64," + base64.b64encode(data).decode("ascii")
