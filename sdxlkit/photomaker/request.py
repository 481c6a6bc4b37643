"""A run's photoMaker field as the engine uses it: the file, the photos and the strength, the LoRA it adds and the
prompts' embeddings with the identity (generate.py)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..loading.lru import file_key
from ..loading.residency import bringing, extras_device
from ..lora import EmbeddedLora
from .files import lora_weights


@dataclass
class PhotoMakerRequest:
    """The photoMaker field: the PhotoMaker file, the photos, strength (style_strength_ratio, %); the style is
    already applied to the Generation's prompts."""

    path: Path
    images: list[Image.Image]
    strength: int


def photomaker_loras(request: PhotoMakerRequest | None) -> list:
    """PhotoMaker's UNet LoRA at weight 1.0, as the reference pipeline fuses it (beside the task's LoRAs)."""
    return [] if request is None else [(EmbeddedLora(request.path, lora_weights), 1.0)]


def identity_key(request: PhotoMakerRequest) -> tuple:
    """What the identity embeddings take from the request besides the prompts: the file and the photos' pixels."""
    return (file_key(request.path, "PhotoMaker file"),
            tuple((image.mode, image.size, hashlib.sha1(image.tobytes()).hexdigest()) for image in request.images))


def identity_embeds(components, request: PhotoMakerRequest, tokenizers, encoders, prompt: str, negative: str | None,
                    **options):
    """IdentityEmbeds (photomaker.prompt) for the prompts, with the ID encoder of the request's file (kept loaded)."""
    from .encoder import ID_ENCODERS, pixel_values
    from .prompt import encode_identity_prompts

    widths = tuple(encoder.config.hidden_size for encoder in encoders)
    encoder = ID_ENCODERS.get(request.path, widths, components.dtype, extras_device(components))
    with bringing(components, encoder):
        return encode_identity_prompts(tokenizers, encoders, encoder, pixel_values(request.images), prompt,
                                       negative, **options)
