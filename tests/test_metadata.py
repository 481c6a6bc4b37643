"""Metadata in saved images: a task too large for a JPEG's one EXIF segment (inline images) never loses the image."""

import io
import json
import logging

import pytest
from PIL import Image

from sdxlkit.metadata import TASK_KEY, encode_with_metadata, read_texts

BIG_TASK = json.dumps({"positivePrompt": "a boat", "inputs": {"seedImage": "data:image/png;base64," + "A" * 90_000}})


def test_jpeg_keeps_the_image_and_the_entries_that_fit_leaving_out_the_largest(caplog):
    image = Image.new("RGB", (32, 24), (200, 10, 10))
    with caplog.at_level(logging.WARNING, logger="sdxlkit.metadata"):
        data = encode_with_metadata(image, "JPG", 95, {"prompt": "{}", TASK_KEY: BIG_TASK})
    decoded = Image.open(io.BytesIO(data))
    assert decoded.format == "JPEG" and decoded.size == (32, 24)
    assert read_texts(data) == {"prompt": "{}"}
    assert TASK_KEY in caplog.text and "PNG or WEBP" in caplog.text


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "JPG"])
def test_entries_that_fit_are_kept_whole(fmt):
    texts = {"prompt": "{}", TASK_KEY: json.dumps({"positivePrompt": "x" * 60_000})}
    assert read_texts(encode_with_metadata(Image.new("RGB", (8, 8)), fmt, 90, texts)) == texts


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_png_and_webp_carry_a_large_task(fmt):
    texts = {TASK_KEY: BIG_TASK}
    assert read_texts(encode_with_metadata(Image.new("RGB", (8, 8)), fmt, 90, texts)) == texts
