"""Input images as users have them: EXIF-rotated phone photos, masks with and without real transparency."""

import io

import numpy as np
from PIL import Image

from sdxlkit.images import load_image, to_mask


def _uri(image: Image.Image, fmt: str = "PNG", **save) -> str:
    import base64

    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buffer.getvalue()).decode()


def test_an_exif_rotated_photo_is_used_as_viewers_show_it():
    stored = Image.new("RGB", (60, 40), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 10, 40))  # red on the left as stored; orientation 6 turns it to the top
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    shown = load_image(_uri(stored, "JPEG", exif=exif.tobytes(), quality=95), "inputs.seedImage")
    assert shown.size == (40, 60)
    pixels = np.asarray(shown.convert("RGB")).astype(int)
    assert pixels[2, 20, 0] > 200 and pixels[2, 20, 2] < 60  # top row: red
    assert pixels[-3, 20, 2] > 200  # bottom: blue


def _square(mode: str, background, square) -> Image.Image:
    image = Image.new(mode, (16, 16), background)
    image.paste(square, (4, 4, 12, 12))
    return image


def test_masks_white_repaints_and_transparency_counts_only_where_there_is_some():
    expected = np.zeros((16, 16), np.uint8)
    expected[4:12, 4:12] = 255
    cases = {
        "grey": _square("L", 0, 255),
        "RGB": _square("RGB", (0, 0, 0), (255, 255, 255)),
        "opaque RGBA (canvas export)": _square("RGBA", (0, 0, 0, 255), (255, 255, 255, 255)),
        "opaque LA": _square("LA", (0, 255), (255, 255)),
        "alpha-only RGBA": _square("RGBA", (0, 0, 0, 0), (0, 0, 0, 255)),  # opaque = repaint
        "transparent background, white strokes": _square("RGBA", (0, 0, 0, 0), (255, 255, 255, 255)),
    }
    palette = _square("L", 0, 255).convert("P")
    palette.info["transparency"] = 0  # palette entry 0 (black) transparent: the square is the opaque part
    cases["palette with tRNS"] = palette
    for name, image in cases.items():
        mask = to_mask(Image.open(io.BytesIO(_png(image))))
        assert np.array_equal(np.asarray(mask), expected), name


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **({"transparency": image.info["transparency"]} if "transparency" in image.info else {}))
    return buffer.getvalue()


def test_sixteen_bit_depth_maps_keep_their_ramp():
    from sdxlkit.images import to_rgb

    ramp = np.linspace(0, 65535, 16 * 16).astype(np.uint16).reshape(16, 16)
    image = Image.open(io.BytesIO(_png(Image.fromarray(ramp))))
    expected = np.round(ramp / 65535 * 255).astype(np.uint8)
    assert np.abs(np.asarray(to_rgb(image))[..., 0].astype(int) - expected).max() <= 1
    assert np.abs(np.asarray(to_mask(image)).astype(int) - expected).max() <= 1
