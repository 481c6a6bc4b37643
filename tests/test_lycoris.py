"""LyCORIS files in kohya's layout (LoHa, LoKr, LoCon with a Tucker mid weight, full and norm differences, DoRA) patch
the layers they name as ComfyUI's weight adapters (comfy/weight_adapter) compute them. Each expected value below is
written from those definitions, or from LyCORIS' own where ComfyUI reshapes (LoCon's mid weight)."""

import pytest
import torch

from sdxlkit.errors import ModelLoadError
from sdxlkit.generate import Generation, generate
from sdxlkit.loading.loader import ModelSpec, load_sdxl
from sdxlkit.loading.stability_layout import stability_key, unet_modules
from sdxlkit.lora import LoraFileCache, apply_loras
from sdxlkit.tiny_lora import write_lora

LINEAR = ("unet", "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q")  # [64, 64], no bias
CROSS = ("unet", "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k")  # [64, 96]
CONV = ("unet", "down_blocks.1.resnets.1.conv1")  # [64, 64, 3, 3], with a bias
NORM = ("unet", "down_blocks.1.attentions.0.transformer_blocks.0.norm1")  # LayerNorm(64)
TE1 = ("text_encoder", "text_model.encoder.layers.0.self_attn.q_proj")
TE2 = ("text_encoder_2", "text_model.encoder.layers.1.mlp.fc1")
GEN = dict(prompt="a lighthouse on a cliff", negative_prompt="fog", width=64, height=64, steps=3, cfg=5.0,
           scheduler="Euler", seed=5)


@pytest.fixture(scope="module")
def model(adapter_models):
    return load_sdxl(ModelSpec(adapter_models.checkpoint))


@pytest.fixture(scope="module")
def original(adapter_models):
    return load_sdxl(ModelSpec(adapter_models.checkpoint))


def kohya_name(components, component: str, path: str) -> str:
    """The layer's name as SDXL trainers write it: Stability's block names for the UNet."""
    if component == "unet":
        path = stability_key(path + ".", unet_modules(dict(components.unet.state_dict()))).removesuffix(".")
        return "lora_unet_" + path.replace(".", "_")
    return {"text_encoder": "lora_te1_", "text_encoder_2": "lora_te2_"}[component] + path.replace(".", "_")


def layer_of(components, component: str, path: str):
    model = getattr(components, component)
    names = {name for name, _ in model.named_modules()}
    return model.get_submodule(path if path in names else path.removeprefix("text_model."))


def random_tensors(seed: int):
    generator = torch.Generator().manual_seed(seed)
    return lambda *shape: torch.randn(*shape, generator=generator) * 0.1


def write_layers(tmp_path, components, name: str, layers: dict) -> object:
    """layers: (component, path) -> {suffix: tensor}, written as one kohya-named file."""
    tensors = {f"{kohya_name(components, *target)}.{suffix}": tensor
               for target, group in layers.items() for suffix, tensor in group.items()}
    return write_lora(tensors, tmp_path / f"{name}.safetensors")


def _weights(components, target):
    layer = layer_of(components, *target)
    return layer.weight.detach().clone(), None if layer.bias is None else layer.bias.detach().clone()


def _apply(components, loras):
    apply_loras(components, loras, files=LoraFileCache())


def test_loha_layers_follow_the_hadamard_product(tmp_path, model, original):
    r = random_tensors(1)
    plain = {"hada_w1_a": r(64, 4), "hada_w1_b": r(4, 96), "hada_w2_a": r(64, 4), "hada_w2_b": r(4, 96),
             "alpha": torch.tensor(2.0)}
    tucker = {"hada_t1": r(4, 4, 3, 3), "hada_w1_a": r(4, 64), "hada_w1_b": r(4, 64),
              "hada_t2": r(4, 4, 3, 3), "hada_w2_a": r(4, 64), "hada_w2_b": r(4, 64), "alpha": torch.tensor(1.0)}
    text = {"hada_w1_a": r(32, 2), "hada_w1_b": r(2, 32), "hada_w2_a": r(32, 2), "hada_w2_b": r(2, 32)}
    path = write_layers(tmp_path, model, "loha", {CROSS: plain, CONV: tucker, TE1: text})
    _apply(model, [(path, 0.7)])

    w, _ = _weights(original, CROSS)
    expected = w + 0.7 * (2.0 / 4) * (plain["hada_w1_a"] @ plain["hada_w1_b"]) * (plain["hada_w2_a"] @ plain["hada_w2_b"])
    assert torch.allclose(_weights(model, CROSS)[0], expected, atol=1e-6)

    def tucker_factor(t, a, b):  # t[i, j, k, l], b[j, in], a[i, out] -> [out, in, k, l]
        return torch.einsum("ijkl,jr,ip->prkl", t, b, a)

    w, bias = _weights(original, CONV)
    change = (tucker_factor(tucker["hada_t1"], tucker["hada_w1_a"], tucker["hada_w1_b"])
              * tucker_factor(tucker["hada_t2"], tucker["hada_w2_a"], tucker["hada_w2_b"]))
    assert torch.allclose(_weights(model, CONV)[0], w + 0.7 * (1.0 / 4) * change, atol=1e-6)
    assert torch.equal(_weights(model, CONV)[1], bias)

    w, _ = _weights(original, TE1)  # no alpha: no scaling
    expected = w + 0.7 * (text["hada_w1_a"] @ text["hada_w1_b"]) * (text["hada_w2_a"] @ text["hada_w2_b"])
    assert torch.allclose(_weights(model, TE1)[0], expected, atol=1e-6)


def test_lokr_layers_follow_the_kronecker_product(tmp_path, model, original):
    r = random_tensors(2)
    decomposed = {"lokr_w1": r(8, 8), "lokr_w2_a": r(8, 2), "lokr_w2_b": r(2, 8), "alpha": torch.tensor(4.0)}
    full = {"lokr_w1": r(8, 8), "lokr_w2": r(8, 12), "alpha": torch.tensor(4.0)}  # alpha unused: nothing decomposed
    tucker = {"lokr_w1_a": r(4, 2), "lokr_w1_b": r(2, 8), "lokr_t2": r(2, 2, 3, 3), "lokr_w2_a": r(2, 16),
              "lokr_w2_b": r(2, 8), "alpha": torch.tensor(1.0)}
    text = {"lokr_w1": r(4, 4), "lokr_w2": r(64, 16)}
    path = write_layers(tmp_path, model, "lokr", {LINEAR: decomposed, CROSS: full, CONV: tucker, TE2: text})
    _apply(model, [(path, -1.3)])

    w, _ = _weights(original, LINEAR)
    expected = w - 1.3 * (4.0 / 2) * torch.kron(decomposed["lokr_w1"], decomposed["lokr_w2_a"] @ decomposed["lokr_w2_b"])
    assert torch.allclose(_weights(model, LINEAR)[0], expected, atol=1e-6)

    w, _ = _weights(original, CROSS)
    assert torch.allclose(_weights(model, CROSS)[0], w - 1.3 * torch.kron(full["lokr_w1"], full["lokr_w2"]), atol=1e-6)

    w, _ = _weights(original, CONV)  # the rank is w2's (the factor decomposed last), w1 is a 1x1 kernel
    w1 = (tucker["lokr_w1_a"] @ tucker["lokr_w1_b"])[:, :, None, None]
    w2 = torch.einsum("ijkl,jr,ip->prkl", tucker["lokr_t2"], tucker["lokr_w2_b"], tucker["lokr_w2_a"])
    w2 = w2.contiguous()  # torch.kron cannot take einsum's strided result (ComfyUI logs an error and skips the layer)
    assert torch.allclose(_weights(model, CONV)[0], w - 1.3 * (1.0 / 2) * torch.kron(w1, w2), atol=1e-6)

    w, _ = _weights(original, TE2)
    assert torch.allclose(_weights(model, TE2)[0], w - 1.3 * torch.kron(text["lokr_w1"], text["lokr_w2"]), atol=1e-6)


def test_locon_mid_weight_full_and_norm_differences(tmp_path, model, original):
    r = random_tensors(3)
    locon = {"lora_down.weight": r(4, 64, 1, 1), "lora_mid.weight": r(4, 4, 3, 3), "lora_up.weight": r(64, 4, 1, 1),
             "alpha": torch.tensor(8.0)}
    full = {"diff": r(64, 96)}
    norm = {"w_norm": r(64), "b_norm": r(64)}
    projection = ("text_encoder_2", "text_projection")  # beside bigG's transformer: lora_te2_text_projection
    full_projection = {"diff": r(*layer_of(original, *projection).weight.shape)}
    path = write_layers(tmp_path, model, "locon", {CONV: locon, CROSS: full, NORM: norm, projection: full_projection})
    _apply(model, [(path, 0.5)])
    w, _ = _weights(original, projection)
    assert torch.allclose(_weights(model, projection)[0], w + 0.5 * full_projection["diff"], atol=1e-7)

    w, bias = _weights(original, CONV)  # LyCORIS' LoCon: einsum("i j k l, p i, j r -> p r k l", mid, up, down)
    change = torch.einsum("ijkl,pi,jr->prkl", locon["lora_mid.weight"], locon["lora_up.weight"][:, :, 0, 0],
                          locon["lora_down.weight"][:, :, 0, 0])
    assert torch.allclose(_weights(model, CONV)[0], w + 0.5 * (8.0 / 4) * change, atol=1e-6)
    assert torch.equal(_weights(model, CONV)[1], bias)
    w, _ = _weights(original, CROSS)
    assert torch.allclose(_weights(model, CROSS)[0], w + 0.5 * full["diff"], atol=1e-7)
    w, bias = _weights(original, NORM)
    assert torch.allclose(_weights(model, NORM)[0], w + 0.5 * norm["w_norm"], atol=1e-7)
    assert torch.allclose(_weights(model, NORM)[1], bias + 0.5 * norm["b_norm"], atol=1e-7)


def _dora(weight, change, magnitude, strength):
    """ComfyUI's weight_decompose: magnitudes along the output axis divide by the norms of the weight before the
    change (per output row), along the input axis by those of the changed weight (per input column)."""
    changed = weight + change
    if magnitude.shape[0] == weight.shape[0]:
        norm = weight.norm(dim=1, keepdim=True)
    else:
        norm = changed.norm(dim=0, keepdim=True)
    changed = changed * magnitude / (norm + torch.finfo(torch.float32).eps)
    return weight + strength * (changed - weight)


@pytest.mark.parametrize("strength", [1.0, 0.6])
def test_dora_rescales_the_changed_weight_to_the_file_magnitudes(tmp_path, model, original, strength):
    r = random_tensors(4)
    inputs = {"lora_down.weight": r(4, 96), "lora_up.weight": r(64, 4), "alpha": torch.tensor(2.0),
              "dora_scale": 1 + r(1, 96)}
    outputs = {"hada_w1_a": r(64, 2), "hada_w1_b": r(2, 64), "hada_w2_a": r(64, 2), "hada_w2_b": r(2, 64),
               "alpha": torch.tensor(2.0), "dora_scale": 1 + r(64, 1)}
    path = write_layers(tmp_path, model, f"dora_{strength}", {CROSS: inputs, LINEAR: outputs})
    _apply(model, [(path, strength)])

    w, _ = _weights(original, CROSS)
    change = (2.0 / 4) * inputs["lora_up.weight"] @ inputs["lora_down.weight"]
    assert torch.allclose(_weights(model, CROSS)[0], _dora(w, change, inputs["dora_scale"], strength), atol=1e-6)
    w, _ = _weights(original, LINEAR)
    change = (2.0 / 2) * (outputs["hada_w1_a"] @ outputs["hada_w1_b"]) * (outputs["hada_w2_a"] @ outputs["hada_w2_b"])
    assert torch.allclose(_weights(model, LINEAR)[0], _dora(w, change, outputs["dora_scale"], strength), atol=1e-6)


def test_a_set_of_lora_lycoris_and_dora_files_applies_in_order(tmp_path, model, original, adapter_models):
    """A DoRA file decomposes the weight the files before it in the set left; the others add up."""
    r = random_tensors(5)
    loha = {"hada_w1_a": r(64, 2), "hada_w1_b": r(2, 64), "hada_w2_a": r(64, 2), "hada_w2_b": r(2, 64)}
    dora = {"lora_down.weight": r(2, 64), "lora_up.weight": r(64, 2), "dora_scale": 1 + r(1, 64)}
    loha_path = write_layers(tmp_path, model, "set_loha", {LINEAR: loha})
    dora_path = write_layers(tmp_path, model, "set_dora", {LINEAR: dora})
    style = adapter_models.layers["style"]["unet"]
    kohya = next(layer for layer in style if layer.module == LINEAR[1])
    _apply(model, [(adapter_models.loras["style_kohya"], 0.8), (loha_path, 1.5), (dora_path, 0.9)])

    w, _ = _weights(original, LINEAR)
    before = (w + 0.8 * kohya.alpha / kohya.down.shape[0] * kohya.up @ kohya.down
              + 1.5 * (loha["hada_w1_a"] @ loha["hada_w1_b"]) * (loha["hada_w2_a"] @ loha["hada_w2_b"]))
    expected = _dora(before, dora["lora_up.weight"] @ dora["lora_down.weight"], dora["dora_scale"], 0.9)
    assert torch.allclose(_weights(model, LINEAR)[0], expected, atol=1e-5)


def _image(components, loras=()):
    return generate(components, Generation(**GEN, loras=list(loras)))[0][0]


def test_lycoris_images_switch_back_to_the_base_model_bit_for_bit(tmp_path, adapter_models, original, monkeypatch):
    files = LoraFileCache()
    monkeypatch.setattr("sdxlkit.lora.files.LORA_FILES", files)
    components = load_sdxl(ModelSpec(adapter_models.checkpoint))
    r = random_tensors(6)
    path = write_layers(tmp_path, components, "switch", {
        LINEAR: {"hada_w1_a": r(64, 4), "hada_w1_b": r(4, 64), "hada_w2_a": r(64, 4), "hada_w2_b": r(4, 64)},
        CONV: {"diff": r(64, 64, 3, 3), "diff_b": r(64)}, NORM: {"w_norm": r(64), "b_norm": r(64)},
        TE1: {"lokr_w1": r(4, 4), "lokr_w2": r(8, 8)}})
    base = _image(components)
    changed = _image(components, [(path, 1.0)])
    assert (changed - base).abs().max() > 1e-3
    assert torch.equal(_image(components, [(path, 0.0)]), base)
    for _ in range(3):
        _image(components, [(path, 1.0), (adapter_models.loras["style_kohya"], 0.5)])
    assert torch.equal(_image(components, [(path, 1.0)]), changed)
    assert torch.equal(_image(components), base)
    assert files.reads == 2
    for name in ("unet", "text_encoder", "text_encoder_2"):
        fresh = getattr(original, name).state_dict()
        now = {k.replace(".base_layer.", "."): v for k, v in getattr(components, name).state_dict().items()
               if "lora_" not in k}
        assert now.keys() == fresh.keys()
        assert all(torch.equal(v, now[k]) for k, v in fresh.items()), name


def test_unusable_lycoris_files_are_refused_by_name(tmp_path, model, original):
    r = random_tensors(7)
    loha = {"hada_w1_a": r(64, 2), "hada_w1_b": r(2, 64), "hada_w2_a": r(64, 2), "hada_w2_b": r(2, 64)}
    cases = {
        "oft": ({LINEAR: {"oft_blocks": r(4, 16, 16)}}, r"LyCORIS OFT/BOFT file"),
        "glora": ({LINEAR: {"a1.weight": r(4, 64)}}, r"LyCORIS GLoRA file"),
        "partial": ({LINEAR: {k: v for k, v in loha.items() if k != "hada_w2_b"}}, r"loha layer \S+: missing hada_w2_b"),
        "unknown": ({LINEAR: loha | {"hada_w3": r(2)}}, r"loha layer \S+: unknown keys hada_w3"),
        "mixed": ({LINEAR: loha | {"lokr_w1": r(8, 8)}}, r"layer \S+ has parts of loha and lokr"),
        "shape": ({LINEAR: {"hada_w1_a": r(32, 2), "hada_w1_b": r(2, 32), "hada_w2_a": r(32, 2),
                            "hada_w2_b": r(2, 32)}}, r"changes a weight of 1024 values; the model's is \(64, 64\)"),
        "bias": ({LINEAR: {"diff": r(64, 64), "diff_b": r(64)}}, r"changes a bias of 64 values; the model's is none"),
        "factors": ({LINEAR: loha | {"hada_w1_b": r(3, 64)}}, r"layer \S+: its factors do not fit each other"),
    }
    for name, (layers, reason) in cases.items():
        path = write_layers(tmp_path, model, name, layers)
        with pytest.raises(ModelLoadError, match=rf"^{name}\.safetensors: .*{reason}"):
            _apply(model, [(path, 1.0)])
    stray = write_lora({"lora_unet_not_a_layer.hada_w1_a": r(2, 2), "lora_unet_not_a_layer.hada_w1_b": r(2, 2),
                        "lora_unet_not_a_layer.hada_w2_a": r(2, 2), "lora_unet_not_a_layer.hada_w2_b": r(2, 2)},
                       tmp_path / "stray.safetensors")
    with pytest.raises(ModelLoadError, match=r"^stray\.safetensors: 1 of its 1 layers have no counterpart"):
        _apply(model, [(stray, 1.0)])
    peft_dora = write_lora({"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight": r(2, 64),
                            "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight": r(64, 2),
                            "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_magnitude_vector":
                                r(64)}, tmp_path / "peft_dora.safetensors")
    with pytest.raises(ModelLoadError, match=r"^peft_dora\.safetensors: a DoRA file in PEFT's layout"):
        _apply(model, [(peft_dora, 1.0)])
    _apply(model, [])
    assert torch.equal(_weights(model, LINEAR)[0], _weights(original, LINEAR)[0])


def test_bundled_embeddings_and_orphan_alphas_are_skipped_as_other_hosts_do(tmp_path, model, original, adapter_models,
                                                                              caplog):
    from sdxlkit.tiny_lora import kohya_state_dict

    r = random_tensors(8)
    loha = {"hada_w1_a": r(64, 2), "hada_w1_b": r(2, 64), "hada_w2_a": r(64, 2), "hada_w2_b": r(2, 64)}
    extras = {"bundle_emb.mychar.clip_l": r(2, 32), "bundle_emb.mychar.clip_g": r(2, 64)}
    lycoris = write_lora({f"{kohya_name(model, *LINEAR)}.{k}": v for k, v in loha.items()}
                         | {f"{kohya_name(model, *CROSS)}.alpha": torch.tensor(4.0)} | extras, tmp_path / "bundle.safetensors")
    plain = write_lora(kohya_state_dict(adapter_models.layers["style"], original.modules()) | extras,
                       tmp_path / "plain_bundle.safetensors")
    for path in (lycoris, plain):
        with caplog.at_level("WARNING", logger="sdxlkit.lora.files"):
            _apply(model, [(path, 1.0)])
        assert f"{path.name}: skipping 2 bundled embedding tensors" in caplog.text
        assert not torch.equal(_weights(model, LINEAR)[0], _weights(original, LINEAR)[0])
        assert torch.equal(_weights(model, CROSS)[0], _weights(original, CROSS)[0]) or path == plain
    _apply(model, [])
