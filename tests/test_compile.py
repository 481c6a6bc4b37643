"""Compiled mode: the UNet's transformer blocks are compiled in place, the results do not change, and nothing
recompiles when only the prompt, the seed, the step count or LoRA weights change (traced with dynamo's "eager"
backend: the same guards and graphs as inductor, without a C++ toolchain)."""

import pytest
import torch

from sdxlkit.generate import Generation, generate
from sdxlkit.loading.compile import COMPILED_BLOCKS, compile_cache_dir, compile_unet
from sdxlkit.loading.loader import ModelSpec, load_sdxl


def gen(**overrides):
    base = dict(prompt="a harbor at dawn", negative_prompt=None, width=64, height=64, steps=2, cfg=5.0,
                scheduler="Default", seed=1)
    return Generation(**(base | overrides))


@pytest.fixture
def no_recompiles():
    torch._dynamo.reset()
    yield
    torch._dynamo.config.error_on_recompile = False
    torch._dynamo.reset()


def test_compiled_blocks_change_no_result_and_nothing_recompiles(adapter_models, no_recompiles):
    plain = load_sdxl(ModelSpec(adapter_models.checkpoint))
    compiled = load_sdxl(ModelSpec(adapter_models.checkpoint))
    blocks = compile_unet(compiled.unet, backend="eager")
    assert blocks == sum(type(m).__name__ in COMPILED_BLOCKS for m in compiled.unet.modules()) > 0
    lora = [(adapter_models.loras["style_kohya"], 0.5)]
    ((first, _),) = generate(compiled, gen(loras=lora))  # compiles each block shape once
    ((expected, _),) = generate(plain, gen(loras=lora))
    assert torch.allclose(first, expected, atol=1e-5)
    torch._dynamo.config.error_on_recompile = True
    changed = gen(prompt="a red boat in fog, (detailed:1.3)", seed=99, steps=3, loras=[(lora[0][0], -1.2)])
    ((image, _),) = generate(compiled, changed)
    ((expected, _),) = generate(plain, changed)
    assert torch.allclose(image, expected, atol=1e-5)
    longer = gen(prompt="a red boat in fog, " * 30, negative_prompt="blurry, " * 60)  # 3 and 2 chunks, repeated to 6
    ((image, _),) = generate(compiled, longer)
    ((expected, _),) = generate(plain, longer)
    assert torch.allclose(image, expected, atol=1e-5)


def test_compile_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("SDXLKIT_COMPILE_CACHE", str(tmp_path / "cache"))
    assert compile_cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("SDXLKIT_COMPILE_CACHE")
    assert compile_cache_dir().parts[-3:] == (".cache", "sdxlkit", "torch_compile")


def test_a_new_ip_adapter_image_compiles_nothing(ip_models, no_recompiles):
    import numpy as np
    from PIL import Image

    from sdxlkit.ipadapter import IPAdapterRequest

    compiled = load_sdxl(ModelSpec(ip_models.checkpoint))
    compile_unet(compiled.unet, backend="eager")

    def with_image(seed):
        image = Image.fromarray((np.random.RandomState(seed).rand(64, 96, 3) * 255).astype(np.uint8))
        return gen(ip_adapters=[IPAdapterRequest(ip_models.path["runware:55@2"], ip_models.encoder["runware:55@2"],
                                                 [image])])

    ((first, _),) = generate(compiled, with_image(1))
    torch._dynamo.config.error_on_recompile = True
    ((second, _),) = generate(compiled, with_image(2))
    assert not torch.equal(first, second)  # the image acted, through the compiled blocks
