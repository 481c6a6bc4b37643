import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from sdxlkit.errors import ModelLoadError, ModelNotFound
from sdxlkit.loading.cache import ModelCache
from sdxlkit.loading.loader import ModelSpec, load_sdxl
from sdxlkit.registry import MAPPING_FILE, ModelsDir
from sdxlkit.tiny import write_diffusers_folder


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_single_file_loads_exactly(tiny_checkpoint, tiny_components):
    loaded = load_sdxl(ModelSpec(tiny_checkpoint))
    for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
        assert_same_weights(getattr(loaded, part), tiny_components[part])
        assert getattr(loaded, part).dtype == torch.float32  # auto on CPU
    assert loaded.scheduler_config["_class_name"] == "EulerDiscreteScheduler"
    assert loaded.vae_fp16_safe is False


def test_diffusers_folder_loads_exactly(tmp_path, tiny_components):
    folder = tmp_path / "tiny-diffusers"
    write_diffusers_folder(tiny_components, folder)
    loaded = load_sdxl(ModelSpec(folder))
    for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
        assert_same_weights(getattr(loaded, part), tiny_components[part])


def test_external_vae_file_replaces_the_checkpoint_vae(tmp_path, tiny_checkpoint, tiny_components):
    from diffusers import AutoencoderKL

    torch.manual_seed(5)
    other = AutoencoderKL.from_config(tiny_components["vae"].config)
    # diffusers key names, as a diffusers-format VAE .safetensors carries them; the name marks it fp16-safe
    path = tmp_path / "vae" / "tiny-vae-fp16-fix.safetensors"
    path.parent.mkdir()
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(path),
              metadata={"sdxlkit.configs": '{"vae": %s}' % __import__("json").dumps(dict(other.config))})
    loaded = load_sdxl(ModelSpec(tiny_checkpoint, vae=path))
    assert_same_weights(loaded.vae, other)
    assert loaded.vae_fp16_safe is True
    assert_same_weights(loaded.unet, tiny_components["unet"])


def test_precision_forced_and_auto(tiny_checkpoint):
    loaded = load_sdxl(ModelSpec(tiny_checkpoint, precision="bf16"))
    assert loaded.unet.dtype == torch.bfloat16 and loaded.vae.dtype == torch.bfloat16


def test_cache_reuses_and_releases(tiny_checkpoint):
    cache = ModelCache(capacity=1)
    first = cache.get(ModelSpec(tiny_checkpoint))
    assert cache.get(ModelSpec(tiny_checkpoint)) is first and cache.loads == 1
    cache.get(ModelSpec(tiny_checkpoint, precision="fp32"))  # other options: another entry, the first evicted
    assert cache.loads == 2
    assert cache.release() == 1
    assert cache.get(ModelSpec(tiny_checkpoint)) is not first and cache.loads == 3


def test_truncated_file_names_the_file(tmp_path, tiny_checkpoint):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(tiny_checkpoint.read_bytes()[: os.path.getsize(tiny_checkpoint) // 2])
    with pytest.raises(ModelLoadError, match="broken.safetensors"):
        load_sdxl(ModelSpec(broken))


def test_sd15_checkpoint_is_refused_by_name(tmp_path):
    path = tmp_path / "sd15.safetensors"
    save_file({"cond_stage_model.transformer.text_model.final_layer_norm.weight": torch.ones(4),
               "model.diffusion_model.input_blocks.0.0.weight": torch.ones(4, 4, 3, 3)}, str(path))
    with pytest.raises(ModelLoadError, match=r"sd15.safetensors: an SD 1.x/2.x checkpoint"):
        load_sdxl(ModelSpec(path))


def test_wrong_shapes_are_reported_with_the_part(tmp_path, tiny_checkpoint):
    tensors = load_file(str(tiny_checkpoint))
    key = next(k for k in tensors if k.startswith("model.diffusion_model.out.2.weight"))
    tensors[key] = torch.zeros(3, 3)
    path = tmp_path / "reshaped.safetensors"
    from safetensors import safe_open

    with safe_open(str(tiny_checkpoint), "pt") as f:
        metadata = f.metadata()
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(ModelLoadError, match=r"reshaped.safetensors: the unet weights do not fit"):
        load_sdxl(ModelSpec(path))


def test_pickle_files_need_explicit_permission(tmp_path):
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": {}}, str(path))
    with pytest.raises(ModelLoadError, match="refusing a pickle-based .ckpt"):
        load_sdxl(ModelSpec(path))


def test_registry_resolves_ids_names_and_paths(tmp_path, tiny_checkpoint):
    models = ModelsDir(tiny_checkpoint.parent.parent)
    assert models.resolve("tiny-sdxl.safetensors") == tiny_checkpoint
    assert models.resolve("tiny-sdxl") == tiny_checkpoint
    assert models.resolve(str(tiny_checkpoint)) == tiny_checkpoint
    with pytest.raises(ModelNotFound, match="civitai:101055@128078.*sdxlkit_models.json"):
        models.resolve("civitai:101055@128078")
    (models.root / MAPPING_FILE).write_text('{"civitai:101055@128078": "checkpoints/tiny-sdxl.safetensors"}')
    try:
        assert models.resolve("civitai:101055@128078") == tiny_checkpoint
        assert models.reference_for(tiny_checkpoint) == "civitai:101055@128078"
    finally:
        (models.root / MAPPING_FILE).unlink()
    assert models.reference_for(tiny_checkpoint) == "tiny-sdxl.safetensors"


def test_checkpoint_references_also_find_diffusers_folders(tmp_path, tiny_components):
    folder = tmp_path / "diffusers" / "tiny-diffusers"
    write_diffusers_folder(tiny_components, folder)
    models = ModelsDir(tmp_path)
    assert models.resolve("tiny-diffusers") == folder
    assert models.reference_for(folder) == "tiny-diffusers"
