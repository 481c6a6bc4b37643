"""A prompt and a negative whose chunk counts share no small multiple: padded to the longer and masked out of
cross-attention instead of repeated to their least common multiple, with the same images."""

import numpy as np
import pytest
import torch
from PIL import Image

from sdxlkit.generate import ControlRequest, Generation, generate
from sdxlkit.ipadapter import IPAdapterRequest
from sdxlkit.loading.loader import ModelSpec, load_sdxl
from sdxlkit.prompts import alignment
from sdxlkit.prompts.alignment import aligned
from sdxlkit.sampling.token_mask import MASK, real_token_rows
from sdxlkit.sampling.unet import UNetCall
from sdxlkit.sampling.window import step_window

CHUNK = 77
THREE_CHUNKS = "red " * 200  # 200 tokens: 3 chunks of 75
FOUR_CHUNKS = "blue " * 240  # 4 chunks: 3 x 4 repeat to 12 chunks, three times the longer
GEN = dict(prompt=THREE_CHUNKS, negative_prompt=FOUR_CHUNKS, width=64, height=64, steps=3, cfg=5.0,
           scheduler="Euler", seed=5)


def _embeds(chunks: int, value: float) -> torch.Tensor:
    return torch.full((1, chunks * CHUNK, 8), value)


@pytest.mark.parametrize("positive,negative,length", [(2, 3, 6), (1, 3, 3), (4, 2, 4), (2, 2, 2)])
def test_lengths_whose_common_multiple_is_at_most_twice_the_longer_are_repeated(positive, negative, length):
    p, n, p_mask, n_mask = aligned(_embeds(positive, 1.0), _embeds(negative, 2.0))
    assert p.shape[1] == n.shape[1] == length * CHUNK and p_mask is None and n_mask is None
    assert torch.equal(p[:, : positive * CHUNK], _embeds(positive, 1.0)) and (n == 2.0).all()


def test_longer_common_multiples_pad_the_shorter_with_zeros_and_mask_its_own_tokens():
    p, n, p_mask, n_mask = aligned(_embeds(3, 1.0), _embeds(4, 2.0))
    assert p.shape[1] == n.shape[1] == 4 * CHUNK
    assert (p[:, : 3 * CHUNK] == 1.0).all() and (p[:, 3 * CHUNK:] == 0).all() and (n == 2.0).all()
    assert p_mask.shape == n_mask.shape == (1, 4 * CHUNK) and p_mask.dtype == torch.bool
    assert int(p_mask.sum()) == 3 * CHUNK and bool(p_mask[0, 3 * CHUNK - 1]) and not p_mask[0, 3 * CHUNK:].any()
    assert n_mask.all()


def test_rows_run_by_their_own_token_count():
    mask = torch.tensor([[True, True, False], [True, True, False], [True, True, True]])
    call = UNetCall(torch.zeros(3, 4, 8, 8), torch.tensor(1.0), torch.zeros(3, 3, 8), None, {MASK: mask})
    assert real_token_rows(call) == [(slice(0, 2), 2), (slice(2, 3), 3)]
    call.kwargs.pop(MASK)
    assert real_token_rows(call) == [(slice(None), None)]


@pytest.fixture(scope="module")
def model(adapter_models):
    return load_sdxl(ModelSpec(adapter_models.checkpoint))


def _guide(seed: int) -> Image.Image:
    return Image.fromarray((np.random.RandomState(seed).rand(64, 96, 3) * 255).astype(np.uint8))


def _padded_and_repeated(model, monkeypatch, gen: Generation) -> tuple[torch.Tensor, torch.Tensor, list]:
    """The generation with the conditioning padded and masked (the default here), then repeated to 12 chunks; the
    UNet's cross-attention lengths and masks seen in the padded run."""
    seen = []
    hook = model.unet.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append((args[2].shape[1] if len(args) > 2 else
                                                  kwargs["encoder_hidden_states"].shape[1], kwargs.get(MASK))),
        with_kwargs=True)
    try:
        model.embeds_cache.release()
        padded = generate(model, gen)[0][0]
    finally:
        hook.remove()
    monkeypatch.setattr(alignment, "MAX_REPEAT_GROWTH", 3)
    model.embeds_cache.release()
    repeated = generate(model, gen)[0][0]
    model.embeds_cache.release()
    return padded, repeated, seen


def test_padded_conditioning_gives_the_image_of_the_repeated_one(model, monkeypatch):
    padded, repeated, seen = _padded_and_repeated(model, monkeypatch, Generation(**GEN))
    assert torch.allclose(padded, repeated, atol=1e-5), (padded - repeated).abs().max()
    assert len(seen) == 3
    for length, mask in seen:  # the longer one's 4 chunks, not 12; the negative rows first
        assert length == 4 * CHUNK and mask.shape == (2, 4 * CHUNK)
        assert mask[0].all() and int(mask[1].sum()) == 3 * CHUNK


def test_with_a_controlnet_each_half_runs_on_its_own_tokens(adapter_models, model, monkeypatch):
    request = ControlRequest(path=adapter_models.controlnets["file"], image=_guide(0), weight=1.0, mode="balanced",
                             window=step_window(3))
    padded, repeated, _ = _padded_and_repeated(model, monkeypatch, Generation(**GEN, controls=[request]))
    assert torch.allclose(padded, repeated, atol=1e-5), (padded - repeated).abs().max()


def test_with_an_ip_adapter_the_text_attention_keeps_the_mask(ip_models, model, monkeypatch):
    request = IPAdapterRequest(ip_models.path["runware:55@1"], ip_models.encoder["runware:55@1"], [_guide(1)])
    padded, repeated, _ = _padded_and_repeated(model, monkeypatch, Generation(**GEN, ip_adapters=[request]))
    assert torch.allclose(padded, repeated, atol=1e-5), (padded - repeated).abs().max()
