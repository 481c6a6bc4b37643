"""IP-Adapter: cubiq's per-block weights, combine methods and embed scalings against their formulas (written here
from ComfyUI_IPAdapter_plus's code), the attention processor against plain attention math, weight 0, summing,
file layouts and bad files, task runs."""

import math
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from sdxlkit.errors import ModelLoadError
from sdxlkit.generate import Generation, generate
from sdxlkit.ipadapter import ADAPTERS, ENCODERS, IPAdapterPart, IPAdapterRequest, adapter_uses
from sdxlkit.ipadapter import clip_vision, prepare
from sdxlkit.ipadapter.attention import ImagePrompt, IPAdapterAttnProcessor
from sdxlkit.ipadapter.part import cross_attentions
from sdxlkit.ipadapter.weights import WEIGHT_TYPES, combine, scaled_kv
from sdxlkit.loading.loader import ModelSpec, load_sdxl
from sdxlkit.runner import RunOptions, prepare as prepare_task, run_prepared
from sdxlkit.task.model import parse_tasks
from sdxlkit.tiny_ipadapter import build_clip_vision, write_clip_vision, write_ip_adapter

GEN = dict(prompt="a lighthouse on a cliff", negative_prompt="fog", width=64, height=64, steps=3, cfg=5.0,
           scheduler="Euler", seed=5)
UUID = "5b6e1c53-61a3-4a62-9f71-1c1a3b0c5a10"


def _image(seed: int, size=(96, 64)) -> Image.Image:
    return Image.fromarray((np.random.RandomState(seed).rand(size[1], size[0], 3) * 255).astype(np.uint8))


@pytest.fixture(scope="module")
def model(ip_models):
    return load_sdxl(ModelSpec(ip_models.checkpoint))


def _request(ip_models, model_id="runware:55@1", images=None, **options) -> IPAdapterRequest:
    return IPAdapterRequest(ip_models.path[model_id], ip_models.encoder[model_id], images or [_image(1)], **options)


# --- per-block weights (cubiq's ipadapter_execute / ipadapter_attention, SDXL: layers = 11) ---

def cubiq_weight(weight_type, w, wc, t):
    """Written from cubiq's code: the weight of transformer index t, or None where the block is skipped."""
    layers = 11
    kind = "input" if t in (0, 1, 2, 3) else "middle" if t == 4 else "output"
    if weight_type == "normal":
        return w
    if weight_type == "ease_in":
        return w * (0.05 + 0.95 * (1 - t / layers))
    if weight_type == "ease_out":
        return w * (0.05 + 0.95 * (t / layers))
    if weight_type == "ease_in_out":
        return w * (0.05 + 0.95 * (1 - abs(t - (layers / 2)) / (layers / 2)))
    if weight_type in ("weak_input", "weak_middle", "weak_output"):
        return w * 0.2 if kind == weight_type.split("_")[1] else w
    if weight_type == "strong_middle":
        return w * 0.2 if kind in ("input", "output") else w
    table = {"style_transfer": {6: w}, "composition": {3: w},
             "strong_style_transfer": {0: w, 1: w, 2: w, 4: w, 5: w, 6: w, 7: w, 8: w, 9: w, 10: w},
             "style_and_composition": {3: wc, 6: w},
             "strong_style_and_composition": {0: w, 1: w, 2: w, 3: wc, 4: w, 5: w, 6: w, 7: w, 8: w, 9: w, 10: w}}
    return table[weight_type].get(t)


def test_every_weight_type_is_covered():
    assert len(WEIGHT_TYPES) == 13


@pytest.mark.parametrize("weight_type", WEIGHT_TYPES)
def test_each_block_runs_with_cubiqs_weight(weight_type, ip_models, model, monkeypatch):
    """A recording processor sees, in a real UNet call, which blocks run the image attention and with what weight."""
    w, wc = -0.7, 0.35
    seen = {}
    original = IPAdapterAttnProcessor._image_attention

    def recording(self, prompt, query, heads):
        seen[self.block] = prompt.weight
        return original(self, prompt, query, heads)

    monkeypatch.setattr(IPAdapterAttnProcessor, "_image_attention", recording)
    request = _request(ip_models, weight=w, weight_type=weight_type, weight_composition=wc)
    part = IPAdapterPart(adapter_uses([request], model.unet, torch.float32, "cpu"), guidance=True)
    _unet_call(model.unet, [part])
    expected = {t: cubiq_weight(weight_type, w, wc, t) for t in range(11)}
    expected = {t: v for t, v in expected.items() if v is not None}
    assert seen.keys() == expected.keys()
    for t, v in expected.items():
        assert seen[t] == pytest.approx(v, rel=1e-12), t


def test_blocks_map_to_comfyuis_transformer_index(model):
    blocks = {name.split(".transformer_blocks")[0]: t for name, _, t in cross_attentions(model.unet)}
    assert blocks == {"down_blocks.1.attentions.0": 0, "down_blocks.1.attentions.1": 1, "down_blocks.2.attentions.0": 2,
                      "down_blocks.2.attentions.1": 3, "mid_block.attentions.0": 4, "up_blocks.0.attentions.0": 5,
                      "up_blocks.0.attentions.1": 6, "up_blocks.0.attentions.2": 7, "up_blocks.1.attentions.0": 8,
                      "up_blocks.1.attentions.1": 9, "up_blocks.1.attentions.2": 10}
    assert [n for _, n, _ in cross_attentions(model.unet)] == list(range(1, 22, 2))  # h94's numbering


def _unet_call(unet, parts, seed=3):
    g = torch.Generator().manual_seed(seed)
    sample = torch.randn(2, 4, 8, 8, generator=g)
    hidden = torch.randn(2, 77, unet.config.cross_attention_dim, generator=g)
    added = {"text_embeds": torch.randn(2, 64, generator=g), "time_ids": torch.randn(2, 6, generator=g)}
    for part in parts:
        part.attach(unet)
    try:
        return unet(sample, torch.tensor(500), hidden, added_cond_kwargs=added).sample
    finally:
        for part in reversed(parts):
            part.detach(unet)


# --- combine methods and embed scalings on tensors ---

def test_combine_methods_follow_cubiq():
    x = torch.randn(3, 5, 7, generator=torch.Generator().manual_seed(4))
    assert torch.equal(combine(x, "concat"), x)
    assert torch.allclose(combine(x, "add"), (x[0] + x[1] + x[2])[None])
    assert torch.allclose(combine(x, "subtract"), (x[0] - (x[1] + x[2]) / 2)[None])
    assert torch.allclose(combine(x, "average"), ((x[0] + x[1] + x[2]) / 3)[None])
    norm = torch.sqrt(x[0] ** 2 + x[1] ** 2 + x[2] ** 2)  # elementwise, over the images
    assert torch.allclose(combine(x, "norm_average"), ((x[0] / norm + x[1] / norm + x[2] / norm) / 3)[None])
    assert all(torch.equal(combine(x[:1], m), x[:1]) for m in ("add", "subtract", "average", "norm_average"))


@pytest.mark.parametrize("width", [640, 1280])
def test_embed_scalings_follow_cubiq(width):
    g = torch.Generator().manual_seed(5)
    k, v, w = torch.randn(2, 4, width, generator=g), torch.randn(2, 4, width, generator=g), 0.6
    assert [t for t in scaled_kv(k, v, w, "only_v")[:2]] == [k, v] and scaled_kv(k, v, w, "only_v")[2] == w
    kk, vv, f = scaled_kv(k, v, w, "kv")
    assert torch.allclose(kk, k * 0.6) and torch.allclose(vv, v * 0.6) and f == 1.0
    penalty = 0.6 * width / 1280
    kk, vv, f = scaled_kv(k, v, w, "kv_penalty_c")
    assert torch.allclose(kk, k * penalty) and torch.allclose(vv, v * penalty) and f == 1.0
    kk, vv, f = scaled_kv(k, v, w, "k_mean_v_penalty_c")
    mean = v.sum(dim=1, keepdim=True) / 4  # over the image tokens
    assert torch.allclose(kk, k * penalty) and torch.allclose(vv, v - mean + mean * penalty, atol=1e-6) and f == 1.0


def _attend(q, k, v, heads):
    """Multi-head softmax attention written out: [B, N, C] x [B, T, C] -> [B, N, C]."""
    b, n, c = q.shape
    d = c // heads
    q, k, v = (x.reshape(b, -1, heads, d).transpose(1, 2) for x in (q, k, v))
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)
    return (weights @ v).transpose(1, 2).reshape(b, n, c)


@pytest.mark.parametrize("scaling", ["only_v", "kv", "kv_penalty_c", "k_mean_v_penalty_c"])
def test_processor_adds_each_adapters_image_attention_before_the_output_projection(model, scaling):
    """out = to_out(Attn(q, K, V) + sum_i Attn(q, K_i', V_i') * f_i); uncond rows (first half) use uncond tokens."""
    modules = dict(model.unet.named_modules())
    name, _, _ = cross_attentions(model.unet)[3]
    attn = modules[name.removesuffix(".processor")]
    g = torch.Generator().manual_seed(6)
    width, inner = model.unet.config.cross_attention_dim, attn.to_k.out_features
    prompts = []
    for weight in (0.8, -0.45):
        to_k, to_v = torch.nn.Linear(width, inner, bias=False), torch.nn.Linear(width, inner, bias=False)
        for linear in (to_k, to_v):
            linear.weight.data = torch.randn(inner, width, generator=g) / width ** 0.5
        prompts.append(ImagePrompt(to_k, to_v, torch.randn(1, 8, width, generator=g), torch.randn(1, 8, width, generator=g),
                                   weight, scaling))
    hidden, context = torch.randn(2, 16, attn.to_q.in_features, generator=g), torch.randn(2, 77, width, generator=g)
    with torch.no_grad():
        got = IPAdapterAttnProcessor(3, prompts, guidance=True)(attn, hidden, context)
        q = attn.to_q(hidden)
        expected = _attend(q, attn.to_k(context), attn.to_v(context), attn.heads)
        for p in prompts:
            tokens = torch.cat([p.uncond, p.cond])
            k, v, w = p.to_k(tokens), p.to_v(tokens), p.weight
            c_weight = w * inner / 1280
            if scaling == "only_v":
                expected = expected + _attend(q, k, v, attn.heads) * w
            elif scaling == "kv":
                expected = expected + _attend(q, k * w, v * w, attn.heads)
            elif scaling == "kv_penalty_c":
                expected = expected + _attend(q, k * c_weight, v * c_weight, attn.heads)
            else:
                mean = v.mean(dim=1, keepdim=True)
                expected = expected + _attend(q, k * c_weight, (v - mean) + mean * c_weight, attn.heads)
        expected = attn.to_out[0](expected)
    assert torch.allclose(got, expected, atol=1e-5)


# --- generations ---

def test_weight_zero_is_exactly_the_base_output(ip_models, model):
    base = generate(model, Generation(**GEN))[0][0]
    made = ADAPTERS.made
    off = generate(model, Generation(**GEN, ip_adapters=[_request(ip_models, weight=0.0)]))[0][0]
    assert torch.equal(off, base) and ADAPTERS.made == made  # skipped entirely, nothing loaded
    # style transfer acts on t6 only: every other block keeps its own processor
    part = IPAdapterPart(adapter_uses([_request(ip_models, weight_type="style_transfer")], model.unet,
                                      torch.float32, "cpu"), guidance=True)
    assert {p.block for p in part.processors(model.unet).values()} == {6}
    on = generate(model, Generation(**GEN, ip_adapters=[_request(ip_models)]))[0][0]
    assert (on - base).abs().max() > 1e-3
    assert all(type(p).__name__ != "IPAdapterAttnProcessor" for p in model.unet.attn_processors.values())


def test_several_adapters_sum_their_contributions(ip_models, model):
    def call(*requests):
        uses = adapter_uses(list(requests), model.unet, torch.float32, "cpu")
        return _unet_call(model.unet, [IPAdapterPart(uses, guidance=True)] if uses else [])

    a = _request(ip_models, weight=0.9, weight_type="composition")
    b = _request(ip_models, "runware:55@2", images=[_image(2)], weight=0.6, weight_type="composition")
    # one block (t3) acts: its output is linear in the image attentions, so the effects on it add up; checked by
    # running the UNet up to there through a hook
    outputs = {}
    modules = dict(model.unet.named_modules())
    name = next(n for n, _, t in cross_attentions(model.unet) if t == 3).removesuffix(".processor")
    handle = modules[name].register_forward_hook(lambda m, i, o: outputs.__setitem__("t3", o))
    try:
        results = {}
        for key, requests in (("base", ()), ("a", (a,)), ("b", (b,)), ("ab", (a, b))):
            call(*requests)
            results[key] = outputs["t3"]
    finally:
        handle.remove()
    assert torch.allclose(results["ab"] - results["base"], (results["a"] - results["base"]) + (results["b"] - results["base"]),
                          atol=1e-5)
    assert (results["a"] - results["base"]).abs().max() > 1e-3 and (results["b"] - results["base"]).abs().max() > 1e-3


def test_base_tokens_project_combined_image_embeds_and_zeros_for_uncond(ip_models, model):
    images = [_image(3), _image(4, (64, 64))]
    adapter = prepare.load_adapter(ip_models.path["runware:55@1"], model.unet, torch.float32, "cpu")
    encoder = prepare.load_encoder(ip_models.encoder["runware:55@1"], torch.float32, "cpu")
    embeds = torch.cat([clip_vision.encode(encoder, clip_vision.preprocess([im]))[0] for im in images])
    cond, uncond = prepare.image_tokens(adapter, encoder, ip_models.encoder["runware:55@1"], images, "average")
    with torch.no_grad():
        assert torch.allclose(cond, adapter.projection((embeds[0] + embeds[1])[None] / 2), atol=1e-6)
        assert torch.allclose(uncond, adapter.projection(torch.zeros(1, embeds.shape[1])), atol=1e-6)
        cond, uncond = prepare.image_tokens(adapter, encoder, ip_models.encoder["runware:55@1"], images, "concat")
        assert cond.shape == (1, 8, model.unet.config.cross_attention_dim)  # 2 images x 4 tokens
        assert torch.allclose(cond[0, 4:], adapter.projection(embeds[1:])[0], atol=1e-6)
        assert torch.allclose(uncond[0, :4], uncond[0, 4:])


def test_plus_tokens_resample_penultimate_states_and_a_black_image_for_uncond(ip_models, model):
    adapter = prepare.load_adapter(ip_models.path["runware:55@2"], model.unet, torch.float32, "cpu")
    path = ip_models.encoder["runware:55@2"]
    encoder = prepare.load_encoder(path, torch.float32, "cpu")
    assert adapter.plus and not prepare.load_adapter(ip_models.path["runware:55@1"], model.unet, torch.float32, "cpu").plus
    image = _image(5)
    out = encoder(pixel_values=clip_vision.preprocess([image]), output_hidden_states=True)
    black = encoder(pixel_values=clip_vision.preprocess([Image.new("RGB", (224, 224))]), output_hidden_states=True)
    cond, uncond = prepare.image_tokens(adapter, encoder, path, [image], "concat")
    with torch.no_grad():
        assert cond.shape[1] == 16
        assert torch.allclose(cond, adapter.projection(out.hidden_states[-2]), atol=1e-5)
        assert torch.allclose(uncond, adapter.projection(black.hidden_states[-2]), atol=1e-5)


def test_preprocessing_resizes_the_short_side_and_crops_the_centre():
    array = (np.random.RandomState(6).rand(224, 448, 3) * 255).astype(np.uint8)  # short side already 224
    pixels = clip_vision.preprocess([Image.fromarray(array)])
    centre = torch.from_numpy(array[:, 112:336].astype(np.float32) / 255).permute(2, 0, 1)
    mean, std = torch.tensor([0.48145466, 0.4578275, 0.40821073]), torch.tensor([0.26862954, 0.26130258, 0.27577711])
    assert torch.allclose(pixels[0], (centre - mean.view(3, 1, 1)) / std.view(3, 1, 1), atol=1e-6)
    wide = clip_vision.preprocess([Image.fromarray(array).resize((896, 448))])
    assert wide.shape == (1, 3, 224, 224)


def test_switching_the_guide_image_reuses_the_loaded_adapter_and_encoder(ip_models, model):
    generate(model, Generation(**GEN, ip_adapters=[_request(ip_models, images=[_image(7)])]))
    adapters, encoders = ADAPTERS.made, ENCODERS.made
    generate(model, Generation(**GEN, ip_adapters=[_request(ip_models, images=[_image(8)])]))
    assert (ADAPTERS.made, ENCODERS.made) == (adapters, encoders)


# --- files ---

def test_bin_files_load_the_same_weights_as_safetensors(ip_models, model, tmp_path):
    binary = write_ip_adapter(ip_models.adapters["runware:55@2"], tmp_path / "ip-adapter-plus_sdxl_vit-h.bin")
    a = prepare.load_adapter(binary, model.unet, torch.float32, "cpu")
    b = prepare.load_adapter(ip_models.path["runware:55@2"], model.unet, torch.float32, "cpu")
    assert a.plus and torch.equal(a.to_v["21"].weight, b.to_v["21"].weight)
    assert all(torch.equal(x, y) for x, y in zip(a.projection.state_dict().values(), b.projection.state_dict().values()))


class _Exploit:
    def __reduce__(self):
        return (print, ("pickle code ran",))


def test_bad_files_name_the_file(ip_models, model, tmp_path):
    from safetensors.torch import save_file

    sd = ip_models.adapters["runware:55@1"]
    cases = []
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(ip_models.path["runware:55@1"].read_bytes()[:2000])
    cases.append((truncated, "truncated or corrupt"))
    code = tmp_path / "code.bin"
    code.write_bytes(pickle.dumps({"image_proj": _Exploit()}))
    cases.append((code, "a pickle that runs code is refused"))
    checkpoint = tmp_path / "not_an_adapter.safetensors"
    save_file({"model.diffusion_model.conv_in.weight": torch.zeros(4)}, str(checkpoint))
    cases.append((checkpoint, "not an IP-Adapter"))
    sd15 = tmp_path / "ip-adapter_sd15.safetensors"
    save_file({k: (torch.zeros(v.shape[0], 768) if k.startswith("ip_adapter.") else v) for k, v in sd.items()}, str(sd15))
    cases.append((sd15, "for another model"))
    faceid = tmp_path / "ip-adapter-faceid_sdxl.safetensors"
    save_file({**sd, "ip_adapter.0.to_q_lora.down.weight": torch.zeros(2, 2)}, str(faceid))
    cases.append((faceid, "FaceID"))
    few = tmp_path / "fewer_layers.safetensors"
    save_file({k: v for k, v in sd.items() if not k.startswith("ip_adapter.21.")}, str(few))
    cases.append((few, "do not match this UNet"))
    for path, reason in cases:
        with pytest.raises(ModelLoadError, match=rf"^{path.name}: .*{reason}"):
            prepare.load_adapter(path, model.unet, torch.float32, "cpu")


def test_bad_encoders_and_mismatched_pairs_name_the_file(ip_models, model, tmp_path):
    from safetensors.torch import save_file

    open_clip = tmp_path / "open_clip_vit_h.safetensors"
    save_file({"visual.transformer.resblocks.0.attn.in_proj_weight": torch.zeros(3, 1)}, str(open_clip))
    with pytest.raises(ModelLoadError, match=rf"^{open_clip.name}: .*open_clip"):
        prepare.load_encoder(open_clip, torch.float32, "cpu")
    with pytest.raises(ModelLoadError, match="not a CLIP vision model"):
        prepare.load_encoder(ip_models.path["runware:55@1"], torch.float32, "cpu")
    other = write_clip_vision(build_clip_vision("mid"), tmp_path / "other_encoder.safetensors")
    wrong = IPAdapterRequest(ip_models.path["runware:55@1"], other, [_image(1)])
    with pytest.raises(ModelLoadError, match=r"^ip-adapter_sdxl.safetensors needs a CLIP vision encoder whose image "
                                             r"embeds are 24 wide; other_encoder.safetensors gives 96"):
        adapter_uses([wrong], model.unet, torch.float32, "cpu")


def test_shipped_encoder_configs_match_cubiqs_encoders():
    import json
    from importlib import resources

    for name, (width, layers, projection) in {"vit-h-14.json": (1280, 32, 1024), "vit-bigg-14.json": (1664, 48, 1280)}.items():
        config = json.loads(resources.files("sdxlkit").joinpath("data/clip_vision", name).read_text())
        assert (config["hidden_size"], config["num_hidden_layers"], config["projection_dim"]) == (width, layers, projection)
        assert config["image_size"] == 224 and config["patch_size"] == 14 and config["num_attention_heads"] == 16


# --- tasks ---

def test_task_ip_adapters_run_through_the_mapped_ids(ip_models, tmp_path):
    paths = []
    for seed in (9, 10):
        paths.append(tmp_path / f"guide{seed}.png")
        _image(seed).save(paths[-1])
    base = {"taskType": "imageInference", "taskUUID": UUID, "model": "tiny-sdxl", "positivePrompt": "a cat",
            "negativePrompt": "fog", "width": 128, "height": 128, "steps": 2, "seed": 5, "CFGScale": 5.0,
            "outputType": "base64Data"}
    adapters = [{"model": "runware:55@1", "guideImages": [str(p) for p in paths], "combineMethod": "average",
                 "weightType": "style_transfer", "weight": 1.5},
                {"model": "runware:55@2", "guideImages": [str(paths[0])], "embedScaling": "only_v"}]
    options = RunOptions(models_dir=ip_models.root, device="cpu")
    prepared = prepare_task(parse_tasks(base | {"ipAdapters": adapters})[0], options)
    first, second = prepared.generation.ip_adapters
    assert (first.path, first.encoder_path) == (ip_models.path["runware:55@1"], ip_models.encoder["runware:55@1"])
    assert (second.path, second.encoder_path) == (ip_models.path["runware:55@2"], ip_models.encoder["runware:55@2"])
    assert (first.combine_method, first.weight_type, first.weight, first.embed_scaling) == ("average", "style_transfer", 1.5, "kv")
    assert len(first.images) == 2 and second.embed_scaling == "only_v" and second.weight == 1.0
    with_ip = run_prepared(prepared, options)[0]["imageBase64Data"]
    plain = run_prepared(prepare_task(parse_tasks(base)[0], options), options)[0]["imageBase64Data"]
    assert with_ip != plain


def test_missing_encoder_is_named_before_models_load(ip_models, tmp_path):
    from sdxlkit.errors import ModelNotFound

    root = tmp_path / "models"
    (root / "ipadapter").mkdir(parents=True)
    (root / "checkpoints").mkdir()
    (root / "checkpoints" / "tiny-sdxl.safetensors").symlink_to(ip_models.checkpoint)
    (root / "ipadapter" / "ip-adapter_sdxl.safetensors").symlink_to(ip_models.path["runware:55@1"])
    _image(1).save(tmp_path / "g.png")
    task = parse_tasks({"taskType": "imageInference", "taskUUID": UUID, "model": "tiny-sdxl", "positivePrompt": "a fox",
                        "width": 128, "height": 128,
                        "ipAdapters": [{"model": "runware:55@1", "guideImages": [str(tmp_path / "g.png")]}]})[0]
    with pytest.raises(ModelNotFound, match="CLIP-ViT-bigG-14-laion2B-39B-b160k.safetensors.*clip_vision"):
        prepare_task(task, RunOptions(models_dir=root, device="cpu"))



def test_guide_images_are_checked_with_the_task_before_models_load(tmp_path):
    """runnable.image_references lists every guide image, so run, validate and the task route read and refuse them
    by their own JSON path."""
    from sdxlkit.errors import TaskValidationError
    from sdxlkit.runnable import check_task, image_references

    _image(1).save(tmp_path / "a.png")
    _image(2, (40, 40)).save(tmp_path / "b.png")
    task = parse_tasks({"taskType": "imageInference", "taskUUID": UUID, "model": "m", "positivePrompt": "a fox",
                        "width": 128, "height": 128, "ipAdapters": [
                            {"model": "runware:55@1", "guideImages": ["a.png"]},
                            {"model": "runware:55@2", "guideImages": ["b.png", "missing.png"]}]})[0]
    assert image_references(task) == [("ipAdapters[0].guideImages[0]", "a.png"), ("ipAdapters[1].guideImages[0]", "b.png"),
                                      ("ipAdapters[1].guideImages[1]", "missing.png")]
    with pytest.raises(TaskValidationError) as info:
        check_task(task, "$[2]", base_dir=tmp_path)
    assert [(p.path, p.code) for p in info.value.problems] == [("$[2].ipAdapters[1].guideImages[1]", "invalidImage")]
    task.data["ipAdapters"][1]["guideImages"].pop()
    images = check_task(task, base_dir=tmp_path)
    assert images["ipAdapters[1].guideImages[0]"].size == (40, 40) and images["ipAdapters[0].guideImages[0]"].mode == "RGB"


def test_a_guide_image_or_photo_thinner_than_the_encoders_take_is_refused_by_its_field(tmp_path):
    """The encoders resize the shorter side to 224 before cutting the centre out: a thin strip is refused before
    anything grows (16384x4 would become 917504x224)."""
    from sdxlkit.errors import TaskValidationError
    from sdxlkit.runnable import MAX_ENCODER_IMAGE_ASPECT, check_task

    Image.new("RGB", (16384, 4)).save(tmp_path / "strip.png")
    Image.new("RGB", (MAX_ENCODER_IMAGE_ASPECT * 8, 8)).save(tmp_path / "widest.png")
    Image.new("RGB", (4, MAX_ENCODER_IMAGE_ASPECT * 4 + 1)).save(tmp_path / "tall.png")
    task = parse_tasks({"taskType": "imageInference", "taskUUID": UUID, "model": "m", "positivePrompt": "a fox img",
                        "width": 128, "height": 128,
                        "ipAdapters": [{"model": "runware:55@1", "guideImages": ["strip.png", "widest.png"]}],
                        "photoMaker": {"images": ["tall.png"]}})[0]
    with pytest.raises(TaskValidationError) as info:
        check_task(task, base_dir=tmp_path)
    problems = {p.path: p for p in info.value.problems}
    assert set(problems) == {"$.ipAdapters[0].guideImages[0]", "$.photoMaker.images[0]"}
    assert problems["$.ipAdapters[0].guideImages[0]"].message.startswith(
        f"is 16384x4; its longer side may be at most {MAX_ENCODER_IMAGE_ASPECT} times its shorter side")
    assert problems["$.photoMaker.images[0]"].code == "invalidImage"
