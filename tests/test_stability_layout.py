"""The Stability single-file layout writer, checked against diffusers' own single-file converters, and the tiny models."""

import json

import pytest
import torch

from sdxlkit.errors import SdxlKitError
from sdxlkit.loading.stability_layout import diffusers_to_stability
from sdxlkit.tiny import (
    MODELS,
    build_tiny_components,
    component_configs,
    preset_configs,
    write_diffusers_folder,
    write_single_file,
)

PREFIXES = ("model.diffusion_model.", "first_stage_model.", "conditioner.embedders.0.transformer.text_model.",
            "conditioner.embedders.1.model.")


@pytest.fixture
def tiny(tiny_components):  # the session-wide tiny model of conftest.py
    return tiny_components


def _state_dicts(components):
    return [components[name].state_dict() for name in MODELS]


def _from_stability(checkpoint, configs, text_encoder_2):
    """Diffusers state dicts from a Stability-layout checkpoint, using the installed diffusers' converters."""
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint,
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
        convert_open_clip_checkpoint,
    )

    clip_l = convert_ldm_clip_checkpoint(checkpoint)
    return [
        convert_ldm_unet_checkpoint(checkpoint, configs["unet"]),
        convert_ldm_vae_checkpoint(checkpoint, configs["vae"]),
        {k.removeprefix("text_model."): v for k, v in clip_l.items()},  # transformers 5 CLIPTextModel has no prefix
        convert_open_clip_checkpoint(text_encoder_2, checkpoint, prefix="conditioner.embedders.1.model."),
    ]


def _assert_same(originals, converted, exact=True):
    for name, original, back in zip(MODELS, originals, converted):
        assert sorted(back) == sorted(original), name
        for key, value in original.items():
            assert back[key].shape == value.shape, (name, key)
            if exact:
                assert torch.equal(back[key], value), (name, key)


def _image(components):
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline(**components, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe("a photo of a cat", negative_prompt="blurry", num_inference_steps=2, height=64, width=64,
                guidance_scale=5.0, generator=torch.Generator().manual_seed(0), output_type="np").images


@pytest.mark.parametrize("preset", ["tiny", "mid"])
def test_round_trip_through_diffusers_converters_is_exact(preset, tiny):
    components = tiny if preset == "tiny" else build_tiny_components("mid")
    originals = _state_dicts(components)
    checkpoint = diffusers_to_stability(*originals)
    configs = {name: dict(components[name].config) for name in ("unet", "vae")}
    _assert_same(originals, _from_stability(checkpoint, configs, components["text_encoder_2"]))


def test_full_size_sdxl_key_layout():
    """On weightless full-size SDXL models: the key counts of real SDXL base files, and a round trip of names and shapes."""
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    from sdxlkit.loading.single_file import base_configs
    from sdxlkit.loading.state_dicts import empty_model

    configs = base_configs()
    models = {name: empty_model(name, configs[name]) for name in MODELS}
    originals = _state_dicts(models)
    checkpoint = diffusers_to_stability(*originals)
    # real files have 2 more: embedders.0 ...position_ids and embedders.1.model.logit_scale, both unused
    assert [sum(k.startswith(p) for k in checkpoint) for p in PREFIXES] == [1680, 248, 196, 389]
    for key, shape in {"model.diffusion_model.output_blocks.2.2.conv.weight": (1280, 1280, 3, 3),
                       "model.diffusion_model.input_blocks.8.1.transformer_blocks.9.attn2.to_k.weight": (1280, 2048),
                       "model.diffusion_model.label_emb.0.0.weight": (1280, 2816),
                       "first_stage_model.decoder.up.3.upsample.conv.weight": (512, 512, 3, 3),
                       "first_stage_model.encoder.mid.attn_1.q.weight": (512, 512, 1, 1),
                       "conditioner.embedders.1.model.transformer.resblocks.31.attn.in_proj_weight": (3840, 1280),
                       "conditioner.embedders.1.model.text_projection": (1280, 1280)}.items():
        assert tuple(checkpoint[key].shape) == shape, key
    assert infer_diffusers_model_type(checkpoint) == "xl_base"
    _assert_same(originals, _from_stability(checkpoint, configs, models["text_encoder_2"]), exact=False)


def test_unknown_keys_are_refused(tiny):
    unet, vae, te1, te2 = _state_dicts(tiny)
    with pytest.raises(SdxlKitError, match="UNet.*extra.weight"):
        diffusers_to_stability({**unet, "extra.weight": torch.zeros(1)}, vae, te1, te2)


def test_single_file_reproduces_the_components(tiny, tmp_path):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors import safe_open
    from safetensors.torch import load_file
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    path = write_single_file(tiny, tmp_path / "tiny.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.safetensors"]  # the temporary file is gone
    checkpoint = load_file(path)
    assert len(checkpoint) == 919
    assert [sum(k.startswith(p) for k in checkpoint) for p in PREFIXES] == [498, 244, 52, 125]
    with safe_open(str(path), framework="pt") as f:
        configs = json.loads(f.metadata()["sdxlkit.configs"])
    assert configs == component_configs(tiny)

    models = {
        "unet": UNet2DConditionModel.from_config(configs["unet"]),
        "vae": AutoencoderKL.from_config(configs["vae"]),
        "text_encoder": CLIPTextModel(CLIPTextConfig(**configs["text_encoder"])),
        "text_encoder_2": CLIPTextModelWithProjection(CLIPTextConfig(**configs["text_encoder_2"])),
    }
    for model, state_dict in zip(models.values(), _from_stability(checkpoint, configs, models["text_encoder_2"])):
        model.load_state_dict(state_dict, strict=True)
        model.eval()
    reloaded = {**tiny, **models}
    assert (_image(reloaded) == _image(tiny)).all()


def test_single_file_half_precision(tiny, tmp_path):
    from safetensors.torch import load_file

    path = write_single_file(tiny, tmp_path / "tiny-fp16.safetensors", dtype=torch.float16)
    assert {v.dtype for v in load_file(path).values()} == {torch.float16}


def test_diffusers_folder_round_trip(tiny, tmp_path):
    from diffusers import StableDiffusionXLPipeline

    write_diffusers_folder(tiny, tmp_path / "tiny")
    pipe = StableDiffusionXLPipeline.from_pretrained(tmp_path / "tiny", local_files_only=True)
    reloaded = {name: getattr(pipe, name) for name in tiny}
    for name in MODELS:
        original, back = tiny[name].state_dict(), reloaded[name].state_dict()
        assert sorted(back) == sorted(original) and all(torch.equal(back[k], original[k]) for k in original), name
    scheduler_configs = [{k: v for k, v in c["scheduler"].config.items() if k != "_use_default_values"}
                         for c in (tiny, reloaded)]
    assert scheduler_configs[0] == scheduler_configs[1]
    image = _image(tiny)
    # Not bit-exact: transformers maps the safetensors weights without copying, and a CPU matmul over a weight that is
    # not 64-byte aligned (text_projection here) rounds differently (~2e-7); identical weights, last-bit differences.
    assert abs(_image(reloaded) - image).max() < 1e-5
    assert image.shape == (1, 64, 64, 3)
    # random weights, but a usable picture: spread out, hardly clipped
    assert image.std() > 0.05 and ((image <= 0) | (image >= 1)).mean() < 0.05


def test_presets_are_sdxl_shaped_and_seeded():
    configs = preset_configs("mid")
    assert configs["unet"]["cross_attention_dim"] == 384
    assert configs["unet"]["projection_class_embeddings_input_dim"] == 448
    a, b, c = (build_tiny_components("tiny", seed=s)["unet"].state_dict() for s in (0, 0, 1))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["conv_in.weight"], c["conv_in.weight"])
    with pytest.raises(ValueError, match="unknown preset"):
        preset_configs("huge")
