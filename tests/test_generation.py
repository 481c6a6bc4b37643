import copy
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from sdxlkit import vae as guarded_vae
from sdxlkit.generate import Generation, generate
from sdxlkit.loading.components import SDXLComponents
from sdxlkit.loading.loader import ModelSpec, load_sdxl

PROMPT = "a watercolor painting of a harbor at dawn"


@pytest.fixture(scope="module")
def components(tiny_checkpoint):
    return load_sdxl(ModelSpec(tiny_checkpoint))


def gen(**overrides):
    base = dict(prompt=PROMPT, negative_prompt=None, width=128, height=128, steps=4, cfg=5.0, scheduler="Default", seed=123)
    return Generation(**(base | overrides))


def test_txt2img_matches_the_diffusers_pipeline(components, tiny_components):
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline(**tiny_components, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    for negative, cfg in ((None, 5.0), ("ugly, blurry", 6.0), (None, 1.0)):
        expected = pipe(PROMPT, negative_prompt=negative, width=128, height=128, num_inference_steps=4, guidance_scale=cfg,
                        generator=torch.Generator("cpu").manual_seed(123), output_type="pt").images
        ((ours, seed),) = generate(components, gen(negative_prompt=negative, cfg=cfg))
        assert seed == 123 and ours.shape == expected.shape == (1, 3, 128, 128)
        assert (ours - expected).abs().max().item() <= 1e-4


def test_number_results_use_consecutive_seeds(components):
    batch = generate(components, gen(count=3, seed=10, steps=2))
    assert [s for _, s in batch] == [10, 11, 12]
    ((single, _),) = generate(components, gen(seed=11, steps=2))
    assert torch.equal(batch[1][0], single)
    assert not torch.equal(batch[0][0], batch[1][0])


def test_negative_prompt_is_ignored_without_guidance(components):
    a = generate(components, gen(cfg=1.0, negative_prompt="red"))[0][0]
    b = generate(components, gen(cfg=1.0, negative_prompt="blue"))[0][0]
    c = generate(components, gen(cfg=5.0, negative_prompt="red"))[0][0]
    d = generate(components, gen(cfg=5.0, negative_prompt="blue"))[0][0]
    assert torch.equal(a, b) and not torch.equal(c, d)


def test_progress_reports_every_step_and_interrupt_propagates(components):
    calls = []
    generate(components, gen(count=2, steps=3), on_step=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 6) for i in range(1, 7)]

    class Stop(Exception):
        pass

    def stop_at_two(done, total):
        if done == 2:
            raise Stop()

    with pytest.raises(Stop):
        generate(components, gen(steps=5), on_step=stop_at_two)


def _picture(size=(128, 128), seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def test_img2img_strength_controls_departure(components):
    source = _picture()
    src = torch.from_numpy(np.asarray(source, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    # the random VAE cannot reproduce a picture: measure against its own round trip of the source
    round_trip = guarded_vae.decode(components, guarded_vae.encode(components, src, torch.Generator().manual_seed(0)))
    distances = []
    for strength in (0.25, 0.6, 1.0):
        out = generate(components, gen(seed_image=source, strength=strength, steps=8))[0][0]
        assert out.shape == (1, 3, 128, 128)
        distances.append((out - round_trip).abs().mean().item())
    assert distances[0] < distances[1] < distances[2], distances


def test_strength_zero_returns_the_vae_round_trip(components):
    source = _picture(seed=4)
    src = torch.from_numpy(np.asarray(source, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    calls = []
    out = generate(components, gen(seed_image=source, strength=0.0), on_step=lambda *a: calls.append(a))[0][0]
    expected = guarded_vae.decode(components, guarded_vae.encode(components, src, torch.Generator().manual_seed(123)))
    assert torch.equal(out, expected) and calls == []


def test_inpaint_keeps_pixels_outside_the_mask(components):
    source = _picture(seed=1)
    mask = Image.new("L", (128, 128), 0)
    mask.paste(255, (40, 40, 88, 88))
    out = generate(components, gen(seed_image=source, mask_image=mask, strength=1.0))[0][0]
    src = torch.from_numpy(np.asarray(source, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    outside = torch.ones(128, 128, dtype=torch.bool)
    outside[20:108, 20:108] = False  # leave room for the feathered seam (Gaussian, sigma 4)
    assert (out - src).abs()[..., outside].max() < 1e-6
    assert (out - src).abs()[..., 50:78, 50:78].mean() > 0.05


@pytest.mark.parametrize("columns", [(57, 63), (56, 62)])
def test_inpaint_repaints_a_stroke_narrower_than_a_latent_block_wherever_it_lies(components, columns):
    """diffusers reads the latent mask at each 8x8 block's top-left pixel: a 6-px stroke at x 57..62 fell between
    two reads and was not repainted at all (identical to strength 0), the same stroke at x 56..61 was."""
    source = _picture(seed=5)
    mask = Image.new("L", (128, 128), 0)
    mask.paste(255, (columns[0], 16, columns[1], 112))
    repainted, kept = (generate(components, gen(seed_image=source, mask_image=mask, strength=strength))[0][0]
                       for strength in (1.0, 0.0))
    assert (repainted - kept).abs()[..., 24:104, columns[0]:columns[1]].mean() > 0.05


def test_whole_latent_blocks_whitens_every_block_a_repaint_pixel_touches():
    from sdxlkit.masking import whole_latent_blocks

    mask = Image.new("L", (36, 20), 0)
    mask.putpixel((9, 3), 200)  # block (0, 1)
    mask.putpixel((35, 19), 128)  # the last, partial block (2, 4)
    mask.putpixel((20, 12), 127)  # under half: not to repaint
    blocks = np.asarray(whole_latent_blocks(mask))
    expected = np.zeros((20, 36), dtype=np.uint8)
    expected[0:8, 8:16] = 255
    expected[16:20, 32:36] = 255
    assert blocks.shape == (20, 36) and np.array_equal(blocks, expected)


def test_inpaint_with_mask_margin_repaints_only_the_crop(components):
    source = _picture((256, 128), seed=2)
    mask = Image.new("L", (256, 128), 0)
    mask.paste(255, (200, 50, 230, 80))
    out = generate(components, gen(width=256, height=128, seed_image=source, mask_image=mask, mask_margin=32, strength=1.0))[0][0]
    src = torch.from_numpy(np.asarray(source, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    assert out.shape == (1, 3, 128, 256)
    assert (out - src).abs()[..., :100].max() < 1e-6  # far left of the crop box is untouched
    assert (out - src).abs()[..., 55:75, 205:225].mean() > 0.05


def test_outpaint_extends_the_canvas_and_keeps_the_original(components):
    source = _picture((128, 128), seed=3)
    out = generate(components, gen(width=256, height=192, seed_image=source, strength=1.0,
                                   outpaint={"left": 64, "right": 64, "bottom": 64}, outpaint_blur=8))[0][0]
    assert out.shape == (1, 3, 192, 256)
    src = torch.from_numpy(np.asarray(source, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    # the seam is a Gaussian blur with sigma = blur (8): 4 sigma inside the original nothing changes
    assert (out[..., 0:96, 96:160] - src[..., 0:96, 32:96]).abs().max() < 1e-6
    assert (out[..., :, :32] - out[..., :, 32:64]).abs().mean() > 0.01  # the new border is not a copy


def _overflowing_vae(vae):
    """A copy of the tiny VAE whose decoder overflows float16 (activations past 65504) but not float32."""
    import copy

    broken = copy.deepcopy(vae)
    with torch.no_grad():
        broken.decoder.conv_in.weight.mul_(1e5)
        broken.decoder.conv_in.bias.mul_(1e5)
    return broken


def test_nan_guard_redoes_a_reduced_precision_decode_in_float32(components, caplog):
    latents = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    vae32 = _overflowing_vae(components.vae)
    half = SDXLComponents(**(components.modules() | {"vae": copy_half(vae32)}), scheduler_config={}, source="test")
    raw = half.vae.decode((latents[:1] / half.vae.config.scaling_factor).half()).sample
    assert not torch.isfinite(raw).all()  # the fault is real
    with caplog.at_level(logging.WARNING, logger="sdxlkit.vae"):
        out = guarded_vae.decode(half, latents)
    assert torch.isfinite(out).all() and out.shape == (2, 3, 128, 128)
    assert "redoing it in float32" in caplog.text
    upcast = copy_half(vae32).float()  # the redo runs the half-precision weights in float32, as diffusers' upcast does
    reference = (upcast.decode(latents / upcast.config.scaling_factor).sample / 2 + 0.5).clamp(0, 1)
    assert (out - reference).abs().max() < 1e-5


def test_nan_guard_redoes_a_reduced_precision_encode_in_float32_once_for_every_seed(components, caplog):
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    vae32 = copy.deepcopy(components.vae)
    with torch.no_grad():
        vae32.encoder.conv_in.weight.mul_(1e5)
        vae32.encoder.conv_in.bias.mul_(1e5)
    half = SDXLComponents(**(components.modules() | {"vae": copy_half(vae32)}), scheduler_config={}, source="test")
    assert not torch.isfinite(half.vae.encode((image * 2 - 1).half()).latent_dist.mean).all()  # the fault is real
    with caplog.at_level(logging.WARNING, logger="sdxlkit.vae"):
        out = guarded_vae.encode_for_seeds(half, image, [3, 4])
    assert caplog.text.count("redoing it in float32") == 1 and out.shape == (2, 4, 8, 8)
    upcast = copy_half(vae32).float()
    dist = upcast.encode(image * 2 - 1).latent_dist
    for latent, seed in zip(out, (3, 4)):
        expected = dist.sample(generator=torch.Generator().manual_seed(seed)) * upcast.config.scaling_factor
        assert (latent - expected[0]).abs().max() < 1e-5


def copy_half(vae):
    import copy

    return copy.deepcopy(vae).half()


def test_tiled_decode_for_large_images(components, monkeypatch):
    latents = torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(1))
    plain = guarded_vae.decode(components, latents)
    monkeypatch.setattr(guarded_vae, "TILE_ABOVE_PIXELS", 64 * 64)
    calls = []
    original = type(components.vae).tiled_decode
    monkeypatch.setattr(type(components.vae), "tiled_decode", lambda self, z, **k: calls.append(z.shape) or original(self, z, **k))
    tiled = guarded_vae.decode(components, latents)
    assert calls and tiled.shape == plain.shape and torch.isfinite(tiled).all()


def test_out_of_memory_decode_falls_back_to_tiles(components, monkeypatch):
    latents = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(2))
    vae_cls = type(components.vae)
    original_tiled = vae_cls.tiled_decode
    tiled_calls = []

    def oom(self, z, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(vae_cls, "decode", oom)
    monkeypatch.setattr(vae_cls, "tiled_decode", lambda self, z, **k: tiled_calls.append(1) or original_tiled(self, z, **k))
    out = guarded_vae.decode(components, latents)
    assert tiled_calls and out.shape == (1, 3, 128, 128) and torch.isfinite(out).all()


def test_blank_prompt_is_the_unconditional_embedding_on_both_branches(components, tiny_components):
    """The format's "__BLANK__" = an unguided image: diffusers run with the unconditional embedding (SDXL's zeros,
    what an absent negative prompt gives) as the positive and the negative, whatever negativePrompt says."""
    from diffusers import StableDiffusionXLPipeline

    from sdxlkit.prompts import encode_prompts

    encoders = (components.text_encoder, components.text_encoder_2)
    tokenizers = (components.tokenizer, components.tokenizer_2)
    unconditional = encode_prompts(tokenizers, encoders, PROMPT)
    assert not unconditional.negative_prompt_embeds.any()
    blank = encode_prompts(tokenizers, encoders, "__BLANK__", "ugly, blurry")
    for ours, expected in ((blank.prompt_embeds, unconditional.negative_prompt_embeds),
                           (blank.pooled_prompt_embeds, unconditional.negative_pooled_prompt_embeds),
                           (blank.negative_prompt_embeds, unconditional.negative_prompt_embeds),
                           (blank.negative_pooled_prompt_embeds, unconditional.negative_pooled_prompt_embeds)):
        assert torch.equal(ours, expected)

    pipe = StableDiffusionXLPipeline(**tiny_components, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    zeros, pooled = unconditional.negative_prompt_embeds, unconditional.negative_pooled_prompt_embeds
    expected = pipe(prompt_embeds=zeros, pooled_prompt_embeds=pooled, negative_prompt_embeds=zeros,
                    negative_pooled_prompt_embeds=pooled, width=128, height=128, num_inference_steps=4, guidance_scale=5.0,
                    generator=torch.Generator("cpu").manual_seed(123), output_type="pt").images
    ours = generate(components, gen(prompt="__BLANK__", negative_prompt="ugly, blurry"))[0][0]
    assert (ours - expected).abs().max().item() <= 1e-4
    unguided = generate(components, gen(prompt="__BLANK__", cfg=1.0))[0][0]
    assert (ours - unguided).abs().max().item() <= 1e-4  # both branches equal: guidance changes nothing
    assert (ours - generate(components, gen(prompt="__BLANK__ harbor"))[0][0]).abs().max().item() > 1e-2


@pytest.mark.parametrize("mode", ["txt2img", "img2img", "inpaint"])
@pytest.mark.parametrize("scheduler", ["Default", "Euler a"])
def test_a_batch_gives_each_image_the_image_of_its_seed_alone(components, mode, scheduler):
    """numberResults in one pass: image i is the image seed + i gives alone. CPU kernels are not batch-invariant
    (a batch sums in another order: differences around 1e-6), which is why the CPU runs one image per pass
    (batching.py) and is bit-identical to single runs by construction; the batched path itself is checked here."""
    seed_image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8))
    mask = Image.new("L", (128, 128), 0)
    mask.paste(255, (32, 32, 96, 96))
    inputs = {"txt2img": {}, "img2img": {"seed_image": seed_image, "strength": 0.6},
              "inpaint": {"seed_image": seed_image, "mask_image": mask, "strength": 0.9}}[mode]
    steps = []
    batch = generate(components, gen(count=3, seed=20, steps=3, scheduler=scheduler, **inputs),
                     on_step=lambda done, total: steps.append((done, total)), batch=3)
    run = steps[-1][1] // 3  # steps the pass runs at its strength
    assert steps == [(3 * (i + 1), 3 * run) for i in range(run)]  # a batched step counts once per image
    for index, (image, seed) in enumerate(batch):
        ((alone, _),) = generate(components, gen(seed=20 + index, steps=3, scheduler=scheduler, **inputs))
        assert seed == 20 + index and (image - alone).abs().max() < 1e-5


def test_schedulers_drawing_one_noise_for_the_batch_run_their_seeds_one_by_one(components):
    from sdxlkit.batching import batch_size

    assert batch_size(components, gen(count=4)) == 1  # CPU: one image per pass, exactly the single runs
    sde = gen(count=2, steps=2, scheduler="DPM++ SDE Karras")
    assert batch_size(components, sde) == 1
    with pytest.raises(ValueError, match="cannot share a pass"):
        generate(components, sde, batch=2)
