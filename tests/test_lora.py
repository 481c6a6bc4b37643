"""LoRA stacks: file formats, the LoRA formula on patched layers, weight 0, switching without drift, bad files."""

import pytest
import torch

from sdxlkit.errors import ModelLoadError, TaskValidationError
from sdxlkit.generate import Generation, generate
from sdxlkit.loading.loader import ModelSpec, load_sdxl
from sdxlkit.lora import LoraFileCache, apply_loras
from sdxlkit.runner import RunOptions, prepare
from sdxlkit.task.model import parse_tasks
from sdxlkit.tiny_lora import kohya_state_dict, random_lora, write_lora

GEN = dict(prompt="a lighthouse on a cliff", negative_prompt="fog", width=64, height=64, steps=3, cfg=5.0,
           scheduler="Euler", seed=5)


@pytest.fixture(scope="module")
def model(adapter_models):
    """A model of its own: LoRA adapters are injected into its modules."""
    return load_sdxl(ModelSpec(adapter_models.checkpoint))


def image(components, loras=(), **overrides):
    return generate(components, Generation(**(GEN | overrides), loras=list(loras)))[0][0]


def test_kohya_and_diffusers_files_of_one_lora_give_the_same_image(model, adapter_models):
    base = image(model)
    kohya = image(model, [(adapter_models.loras["style_kohya"], 0.8)])
    diffusers = image(model, [(adapter_models.loras["style_diffusers"], 0.8)])
    assert (kohya - base).abs().max() > 1e-3
    assert torch.equal(kohya, diffusers)


def test_weight_zero_and_no_lora_are_exactly_the_base_model(model, adapter_models):
    base = image(model)
    assert torch.equal(image(model, [(adapter_models.loras["style_kohya"], 0.0)]), base)
    image(model, [(adapter_models.loras["detail_kohya"], 1.0)])
    assert torch.equal(image(model, []), base)


def _module(model, name):
    names = {n for n, _ in model.named_modules()}
    return model.get_submodule(name if name in names else name.removeprefix("text_model."))


def _layer_check(components, original, lora_layers: list, weights: list[float], component: str):
    """A patched module computes base(x) + sum_k weight_k * alpha_k / rank_k * up_k @ down_k @ x."""
    module_name = lora_layers[0][component][0].module
    module = _module(getattr(components, component), module_name)
    base = _module(getattr(original, component), module_name)
    x = torch.randn(2, module.in_features, generator=torch.Generator().manual_seed(0))
    expected = base(x)
    for layers, weight in zip(lora_layers, weights):
        layer = layers[component][0]
        expected = expected + weight * layer.alpha / layer.down.shape[0] * (x @ layer.down.T @ layer.up.T)
    with torch.no_grad():
        assert torch.allclose(module(x), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("component", ["unet", "text_encoder", "text_encoder_2"])
def test_patched_layers_follow_the_lora_formula_for_several_loras_and_negative_weights(model, adapter_models, component):
    layers, loras = adapter_models.layers, adapter_models.loras
    apply_loras(model, [(loras["style_kohya"], 0.7), (loras["detail_kohya"], -1.5), (loras["light_kohya"], 2.0)])
    original = load_sdxl(ModelSpec(adapter_models.checkpoint))
    _layer_check(model, original, [layers["style"], layers["detail"], layers["light"]], [0.7, -1.5, 2.0], component)


def test_the_same_file_twice_adds_its_weights(model, adapter_models):
    style = adapter_models.loras["style_kohya"]
    assert torch.equal(image(model, [(style, 0.5), (style, 0.25)]), image(model, [(style, 0.75)]))


def test_switching_sets_reads_no_file_twice_and_never_drifts(adapter_models, monkeypatch):
    files = LoraFileCache()
    monkeypatch.setattr("sdxlkit.lora.files.LORA_FILES", files)
    components = load_sdxl(ModelSpec(adapter_models.checkpoint))
    base = image(components)
    loras = adapter_models.loras
    set_a = [(loras["style_kohya"], 0.9), (loras["detail_kohya"], -0.6), (loras["light_kohya"], 1.2)]
    set_b = [(loras["style_diffusers"], -1.0), (loras["detail_kohya"], 0.4), (loras["light_kohya"], 0.3)]
    first_a = image(components, set_a)
    merged_weights = {k: v.clone() for k, v in components.unet.state_dict().items() if "lora" not in k}
    for _ in range(25):
        apply_loras(components, set_b)
        apply_loras(components, set_a)
    assert files.reads == 4
    assert torch.equal(image(components, set_a), first_a)
    assert all(torch.equal(v, components.unet.state_dict()[k]) for k, v in merged_weights.items())
    fresh = load_sdxl(ModelSpec(adapter_models.checkpoint))
    assert torch.equal(image(components), base)
    assert torch.equal(image(fresh), base)
    restored = {k.replace(".base_layer.", "."): v for k, v in components.unet.state_dict().items() if "lora_" not in k}
    fresh_weights = fresh.unet.state_dict()
    assert restored.keys() == fresh_weights.keys()
    assert all(torch.equal(v, restored[k]) for k, v in fresh_weights.items())


def test_bad_lora_files_name_the_file(tmp_path, model, adapter_models, tiny_components):
    from sdxlkit.tiny import build_tiny_components

    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(adapter_models.loras["style_kohya"].read_bytes()[:5000])
    sd15 = write_lora({"lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": torch.ones(4, 32)},
                      tmp_path / "sd15.safetensors")
    foreign = write_lora({"model.layers.0.weight": torch.ones(2, 2)}, tmp_path / "foreign.safetensors")
    mid = build_tiny_components("mid")
    wrong_size = write_lora(kohya_state_dict(random_lora(mid, 1), mid), tmp_path / "for_another_model.safetensors")
    cases = [(truncated, "truncated or corrupt"), (sd15, "SD 1.x/2.x"), (foreign, "no SDXL LoRA keys"),
             (wrong_size, "does not fit this SDXL model")]
    for path, reason in cases:
        with pytest.raises(ModelLoadError, match=rf"^{path.name}: .*{reason}"):
            apply_loras(model, [(path, 1.0)], files=LoraFileCache())
    base_again = image(model)  # a refused file leaves nothing behind
    assert torch.equal(base_again, image(load_sdxl(ModelSpec(adapter_models.checkpoint))))


def test_task_lora_entries_resolve_from_the_models_folder(adapter_models):
    task = parse_tasks({"taskType": "imageInference", "taskUUID": "5b6e1c53-61a3-4a62-9f71-1c1a3b0c5a10",
                        "model": "tiny-sdxl", "positivePrompt": "a cat", "width": 128, "height": 128,
                        "lora": [{"model": "style_kohya", "weight": -2}, {"model": "detail_kohya"}]})[0]
    prepared = prepare(task, RunOptions(models_dir=adapter_models.root, device="cpu"))
    assert prepared.generation.loras == [(adapter_models.loras["style_kohya"], -2.0), (adapter_models.loras["detail_kohya"], 1.0)]


def test_transformer_high_or_low_is_refused_for_sdxl(adapter_models):
    task = parse_tasks({"taskType": "imageInference", "taskUUID": "5b6e1c53-61a3-4a62-9f71-1c1a3b0c5a10",
                        "model": "tiny-sdxl", "positivePrompt": "a cat", "width": 128, "height": 128,
                        "lora": [{"model": "style_kohya", "transformer": "both"}, {"model": "style_kohya", "transformer": "low"}]})[0]
    with pytest.raises(TaskValidationError, match=r"\$\.lora\[1\]\.transformer: got 'low'; SDXL has a single"):
        prepare(task, RunOptions(models_dir=adapter_models.root, device="cpu"))


def test_evicted_adapters_come_back_from_the_parsed_file(model, adapter_models, monkeypatch):
    monkeypatch.setattr("sdxlkit.lora.adapters.RESIDENT_ADAPTERS", 1)
    style, detail = adapter_models.loras["style_kohya"], adapter_models.loras["detail_kohya"]
    first = image(model, [(style, 0.6)])
    image(model, [(detail, 0.6)])
    assert len(model.lora_state.names) == 1 and len(model.lora_state.layers) == 1
    assert torch.equal(image(model, [(style, 0.6)]), first)
    assert torch.equal(image(model), image(load_sdxl(ModelSpec(adapter_models.checkpoint))))
