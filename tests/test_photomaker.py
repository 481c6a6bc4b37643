"""PhotoMaker V1: trigger-word token replacement and fusion against the reference's formulas, the start step by step
index (txt2img, and img2img, inpaint, hires refine and face passes on their full schedule), the UNet LoRA, the style
templates' exact text, task checks and bad files."""

import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from sdxlkit.errors import ModelLoadError, TaskValidationError
from sdxlkit.generate import Generation, generate
from sdxlkit.photomaker.request import PhotoMakerRequest
from sdxlkit.loading.loader import ModelSpec, load_sdxl
from sdxlkit.lora import EmbeddedLora, apply_loras
from sdxlkit.photomaker import STYLES, apply_style
from sdxlkit.photomaker.encoder import build_encoder, pixel_values
from sdxlkit.photomaker.files import lora_weights, read_photomaker
from sdxlkit.photomaker.part import start_merge_step
from sdxlkit.photomaker.prompt import encode_identity_prompts
from sdxlkit.prompts import encode_prompts
from sdxlkit.runnable import field_problems
from sdxlkit.runner import RunOptions, prepare, run_tasks
from sdxlkit.sampling import UNetPart
from sdxlkit.task import schema
from sdxlkit.task.model import parse_tasks
from sdxlkit.tiny_photomaker import tiny_photomaker, write_photomaker

WIDTHS = (32, 64)  # the tiny text encoders
PROMPT = "a photo of a man img wearing glasses"


@pytest.fixture(scope="module")
def pm(adapter_models, tiny_components):
    sections, layers = tiny_photomaker(tiny_components, seed=11)
    folder = adapter_models.root / "photomaker"
    return sections, layers, write_photomaker(sections, folder / "photomaker-v1.bin")


@pytest.fixture(scope="module")
def model(adapter_models):
    return load_sdxl(ModelSpec(adapter_models.checkpoint))


def photos(count):
    rng = np.random.RandomState(3)
    return [Image.fromarray((rng.rand(90 + 20 * i, 70, 3) * 255).astype(np.uint8)) for i in range(count)]


def _mlp(x, sd, prefix, residual):
    h = torch.nn.functional.layer_norm(x, x.shape[-1:], sd[f"{prefix}.layernorm.weight"], sd[f"{prefix}.layernorm.bias"])
    h = torch.nn.functional.linear(h, sd[f"{prefix}.fc1.weight"], sd[f"{prefix}.fc1.bias"])
    h = torch.nn.functional.linear(torch.nn.functional.gelu(h), sd[f"{prefix}.fc2.weight"], sd[f"{prefix}.fc2.bias"])
    return h + x if residual else h


def reference_fusion(sd, prompt_tokens, images):
    """photomaker/model.py: CLIP ViT pooled -> visual_projection | visual_projection_2 -> FuseModule.fuse_fn."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from sdxlkit.photomaker.encoder import shipped_config
    from sdxlkit.tiny_photomaker import TINY_VISION

    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**(shipped_config() | TINY_VISION | {
        "num_attention_heads": 1, "projection_dim": WIDTHS[0]})))
    clip.load_state_dict({k: v for k, v in sd.items() if k.startswith(("vision_model.", "visual_projection."))})
    with torch.no_grad():
        pooled = clip.eval().vision_model(pixel_values=pixel_values(images)).pooler_output  # model.py: [1]
        id_embeds = torch.cat([clip.visual_projection(pooled),
                               torch.nn.functional.linear(pooled, sd["visual_projection_2.weight"])], dim=-1)
        stacked = _mlp(torch.cat([prompt_tokens, id_embeds], -1), sd, "fuse_module.mlp1", False) + prompt_tokens
        stacked = _mlp(stacked, sd, "fuse_module.mlp2", True)
        return torch.nn.functional.layer_norm(stacked, stacked.shape[-1:], sd["fuse_module.layer_norm.weight"],
                                              sd["fuse_module.layer_norm.bias"])


def _encoders(components):
    return (components["tokenizer"], components["tokenizer_2"]), (components["text_encoder"], components["text_encoder_2"])


@pytest.mark.parametrize("count", [1, 3])
def test_class_token_copies_carry_the_fused_photos_and_the_rest_is_the_clean_prompt(pm, tiny_components, count):
    sections, _, path = pm
    tokenizers, encoders = _encoders(tiny_components)
    images = photos(count)
    embeds = encode_identity_prompts(tokenizers, encoders, build_encoder(path, WIDTHS), pixel_values(images), PROMPT,
                                     "blurry", clip_skip=0, weighting=None, guidance=True)
    # text-only: the prompt without the trigger word, exactly as the plain encoding gives it
    plain = encode_prompts(tokenizers, encoders, "a photo of a man wearing glasses", "blurry")
    assert torch.equal(embeds.prompt_embeds, plain.prompt_embeds)
    assert torch.equal(embeds.negative_prompt_embeds, plain.negative_prompt_embeds)
    # identity: trigger removed, "man" (token 5 after BOS) repeated once per photo, those copies fused
    repeated = encode_prompts(tokenizers, encoders, "a photo of a " + "man " * count + "wearing glasses", "blurry")
    identity = embeds.identity.prompt_embeds
    copies = list(range(5, 5 + count))
    others = [i for i in range(identity.shape[1]) if i not in copies]
    assert torch.equal(identity[0, others], repeated.prompt_embeds[0, others])
    assert torch.equal(embeds.identity.pooled_prompt_embeds, repeated.pooled_prompt_embeds)
    expected = reference_fusion(sections["id_encoder"], repeated.prompt_embeds[0, copies], images)
    assert torch.allclose(identity[0, copies], expected, atol=1e-5)
    assert (identity[0, copies] - repeated.prompt_embeds[0, copies]).abs().min() > 1e-3


def test_weighted_prompts_and_long_prompts_keep_the_class_position(pm, tiny_components):
    _, _, path = pm
    tokenizers, encoders = _encoders(tiny_components)
    long = "word " * 74 + "a woman IMG"  # "woman" is token 76: the second chunk; CLIP lowercases IMG
    embeds = encode_identity_prompts(tokenizers, encoders, build_encoder(path, WIDTHS), pixel_values(photos(2)), long,
                                     None, clip_skip=0, weighting="sdEmbeds", guidance=False)
    repeated = encode_prompts(tokenizers, encoders, "word " * 74 + "a woman woman", None, guidance=False)
    identity = embeds.identity.prompt_embeds
    assert identity.shape == repeated.prompt_embeds.shape == (1, 154, 96)
    changed = [i for i in range(154) if not torch.equal(identity[0, i], repeated.prompt_embeds[0, i])]
    assert changed == [77 + 1, 77 + 2]  # second chunk, after its BOS: tokens 76 and 77 of the prompt


def _changed(identity, plain):
    return [i for i in range(identity.shape[1]) if not torch.equal(identity[0, i], plain[0, i])]


def test_the_class_position_follows_the_comma_backtrack_of_sdembeds(pm, tiny_components):
    """A1111's comma back-tracking (main's chunking under sdEmbeds) moves ", a woman woman ..." to the second chunk
    of the identity prompt: the fused copies are where the chunking put them, not where a cut at 75 would."""
    _, _, path = pm
    tokenizers, encoders = _encoders(tiny_components)
    head, tail = "word " * 70, " word" * 5  # identity: 70 words, ",", "a", 2 x "woman", 5 words = 80 tokens
    embeds = encode_identity_prompts(tokenizers, encoders, build_encoder(path, WIDTHS), pixel_values(photos(2)),
                                     head + ", a woman img" + tail, None, clip_skip=0, weighting="sdEmbeds",
                                     guidance=False)
    repeated = encode_prompts(tokenizers, encoders, head + ", a woman woman" + tail, None, weighting="sdEmbeds",
                              guidance=False)
    assert embeds.identity.prompt_embeds.shape == repeated.prompt_embeds.shape == (1, 154, 96)
    # the second chunk starts with "a" (after its BOS), then the two copies
    assert _changed(embeds.identity.prompt_embeds, repeated.prompt_embeds) == [77 + 2, 77 + 3]


def test_a_longer_negative_repeats_the_identity_prompt_with_every_repeat_fused(pm, tiny_components):
    """Positive and negative are repeated to a common length (prompts.alignment): a one-chunk identity prompt beside a
    two-chunk negative is the identity prompt twice, its class-token copies fused in both repeats."""
    _, _, path = pm
    tokenizers, encoders = _encoders(tiny_components)
    negative = "blurry " * 80
    embeds = encode_identity_prompts(tokenizers, encoders, build_encoder(path, WIDTHS), pixel_values(photos(2)), PROMPT,
                                     negative, clip_skip=0, weighting=None, guidance=True)
    repeated = encode_prompts(tokenizers, encoders, "a photo of a man man wearing glasses", negative)
    identity = embeds.identity.prompt_embeds
    assert identity.shape == embeds.prompt_embeds.shape == embeds.negative_prompt_embeds.shape == (1, 154, 96)
    assert torch.equal(identity[:, :77], identity[:, 77:])
    assert _changed(identity, repeated.prompt_embeds) == [5, 6, 77 + 5, 77 + 6]
    assert torch.equal(embeds.negative_prompt_embeds, repeated.negative_prompt_embeds)


class Recorder(UNetPart):
    """Innermost part: what the UNet is given at each step (the conditional row)."""

    def __init__(self):
        self.states, self.pooled = {}, {}

    def __call__(self, call, forward):
        self.states[call.step] = call.encoder_hidden_states[-1].clone()
        self.pooled[call.step] = call.added_cond_kwargs["text_embeds"][-1].clone()
        return forward(call)


def _gen(pm, **overrides):
    values = dict(prompt=PROMPT, negative_prompt="blurry", width=64, height=64, steps=6, cfg=5.0, scheduler="Euler",
                  seed=3, photomaker=PhotoMakerRequest(pm[2], photos(2), strength=50))
    return Generation(**(values | overrides))


@pytest.mark.parametrize("strength,steps", [(50, 6), (15, 20), (34, 9)])
def test_identity_starts_after_start_merge_step_by_step_index(pm, model, monkeypatch, strength, steps):
    import sdxlkit.generate as generate_module

    recorder, original = Recorder(), generate_module.unet_parts
    monkeypatch.setattr(generate_module, "unet_parts", lambda *a, **k: original(*a, **k) + [recorder])
    gen = _gen(pm, steps=steps, photomaker=PhotoMakerRequest(pm[2], photos(2), strength=strength))
    generate(model, gen)
    embeds = generate_module.prompt_embeds(model, gen, gen.prompt, gen.negative_prompt, gen.cfg, gen.photomaker)
    start = int(strength / 100 * steps)
    assert start_merge_step(strength, steps) == start
    for step in range(steps):
        expected = embeds.identity if step > start else embeds
        assert torch.equal(recorder.states[step], expected.prompt_embeds[0]), step
        assert torch.equal(recorder.pooled[step], expected.pooled_prompt_embeds[0]), step


def test_the_identity_switch_is_the_outermost_part_so_an_ip_adapter_runs_on_the_prompt_of_the_step(
        pm, model, ip_models, monkeypatch):
    import sdxlkit.generate as generate_module
    from sdxlkit.ipadapter import IPAdapterRequest

    recorder, original, made = Recorder(), generate_module.unet_parts, []

    def parts(*args, **kwargs):
        made.append([type(part).__name__ for part in original(*args, **kwargs)])
        return original(*args, **kwargs) + [recorder]

    monkeypatch.setattr(generate_module, "unet_parts", parts)
    adapter = IPAdapterRequest(ip_models.path["runware:55@1"], ip_models.encoder["runware:55@1"], photos(1))
    gen = _gen(pm, steps=6, ip_adapters=[adapter])
    generate(model, gen)
    assert made == [["IdentityPart", "IPAdapterPart"]]
    embeds, start = generate_module.prompt_embeds(model, gen, gen.prompt, gen.negative_prompt, gen.cfg, gen.photomaker), start_merge_step(50, 6)
    for step in range(6):  # what the IP-Adapter's attention (inside) and the UNet get as the text
        assert torch.equal(recorder.states[step], (embeds.identity if step > start else embeds).prompt_embeds[0]), step


def reference_identity_steps(schedule: int, ratio: int, run: int) -> list[bool]:
    """TencentARC's loop (pipeline.py: text-only prompt `if i <= start_merge_step`, else the identity prompt; the demo's
    start_merge_step = int(style_strength_ratio / 100 * steps), at most 30), i indexing a schedule of `schedule` steps
    of which the pass runs the last `run` (diffusers' img2img/inpaint): per step run, whether it sees the identity."""
    start = min(int(ratio / 100 * schedule), 30)
    return [i > start for i in range(schedule - run, schedule)]


@pytest.fixture
def passes(monkeypatch):
    """A Recorder per denoising pass (unet_parts is called once per pass), the face detailer's passes included."""
    import sdxlkit.generate as generate_module
    from sdxlkit.faces import detailer

    recorders, original = [], generate_module.unet_parts

    def parts(*args, **kwargs):
        recorders.append(Recorder())
        return original(*args, **kwargs) + [recorders[-1]]

    monkeypatch.setattr(generate_module, "unet_parts", parts)
    monkeypatch.setattr(detailer, "unet_parts", parts)
    return recorders


def identity_seen(recorder, embeds) -> list[bool]:
    """Per UNet call of a pass: whether it got the identity prompt; any call must get that or the text-only prompt."""
    seen = []
    for step in sorted(recorder.states):
        got = recorder.states[step], recorder.pooled[step]
        identity = embeds.identity.prompt_embeds[0], embeds.identity.pooled_prompt_embeds[0]
        text_only = embeds.prompt_embeds[0], embeds.pooled_prompt_embeds[0]
        merged = all(map(torch.equal, got, identity))
        assert merged or all(map(torch.equal, got, text_only)), f"step {step}: neither PhotoMaker prompt"
        seen.append(merged)
    return seen


def _run_embeds(model, gen):
    from sdxlkit.generate import prompt_embeds

    return prompt_embeds(model, gen, gen.prompt, gen.negative_prompt, gen.cfg, gen.photomaker)


@pytest.mark.parametrize("scheduler", ["Euler", "DDIM"])  # DDIM keeps no begin_index: its start is found by timestep
@pytest.mark.parametrize("steps,ratio,strength,run", [
    (30, 30, 0.3, 9),  # start step 9 of 30; the pass runs steps 21..29
    (10, 50, 0.8, 8),  # start step 5 falls inside the pass (steps 2..9)
])
def test_img2img_merges_the_identity_where_the_full_schedule_does(pm, model, passes, scheduler, steps, ratio,
                                                                   strength, run):
    gen = _gen(pm, steps=steps, scheduler=scheduler, seed_image=photos(1)[0], strength=strength,
               photomaker=PhotoMakerRequest(pm[2], photos(2), strength=ratio))
    generate(model, gen)
    (recorder,) = passes
    assert identity_seen(recorder, _run_embeds(model, gen)) == reference_identity_steps(steps, ratio, run)


@pytest.mark.parametrize("steps,ratio,strength,run", [(30, 30, 0.25, 7), (10, 40, 0.7, 7)])
def test_inpaint_merges_the_identity_where_the_full_schedule_does(pm, model, passes, steps, ratio, strength, run):
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    gen = _gen(pm, steps=steps, seed_image=photos(1)[0], mask_image=mask, strength=strength,
               photomaker=PhotoMakerRequest(pm[2], photos(2), strength=ratio))
    generate(model, gen)
    (recorder,) = passes
    assert identity_seen(recorder, _run_embeds(model, gen)) == reference_identity_steps(steps, ratio, run)


def test_before_a_refiner_the_base_steps_merge_the_identity_where_the_full_schedule_does(pm, model, passes,
                                                                                        refiner_models):
    from sdxlkit.refiner import RefinerRequest

    gen = _gen(pm, steps=10, seed_image=photos(1)[0], strength=0.8, refiner=RefinerRequest(refiner_models.single, 8))
    generate(model, gen)
    (base,) = passes  # the refiner's pass has none of the base's parts
    assert identity_seen(base, _run_embeds(model, gen)) == reference_identity_steps(10, 50, 8)[:6]  # it takes 8, 9


def test_the_hires_refine_pass_merges_the_identity_on_its_own_schedule(pm, model, passes, tmp_path):
    from sdxlkit.hires import HiresFix
    from sdxlkit.tiny_upscaler import tiny_esrgan_state_dict, write_upscaler

    upscaler = write_upscaler(tiny_esrgan_state_dict(seed=3), tmp_path / "RealESRGAN_x4plus.safetensors")
    gen = _gen(pm, width=128, height=128, steps=4,
               hires=HiresFix(upscaler=upscaler, steps=3, strength=0.6, first_pass_area=64 * 64))
    generate(model, gen)
    first, refine = passes
    embeds = _run_embeds(model, gen)
    assert identity_seen(first, embeds) == reference_identity_steps(4, 50, 4)
    assert identity_seen(refine, embeds) == reference_identity_steps(5, 50, 3)  # 3 steps at 0.6: a 5-step schedule


@pytest.mark.parametrize("face_prompt", [None, "a close-up photo of a woman img smiling"])
def test_the_face_pass_repaints_with_the_identity(pm, model, passes, monkeypatch, face_prompt):
    from types import SimpleNamespace

    from sdxlkit.faces import Box, FaceDetailer, detailer
    from sdxlkit.generate import prompt_embeds

    stub = SimpleNamespace(detect=lambda image, confidence: [Box(16, 16, 40, 44, 0.9)])
    monkeypatch.setattr(detailer, "DETECTORS", SimpleNamespace(get=lambda path, device: stub))
    faces = FaceDetailer(detector=None, confidence=0.5, padding=4, blur=2, inpaint_size=64, steps=3, cfg=4.0,
                         strength=0.5, prompt=face_prompt)
    gen = _gen(pm, faces=faces)
    generate(model, gen)
    base, face = passes
    assert identity_seen(base, _run_embeds(model, gen)) == reference_identity_steps(6, 50, 6)
    face_embeds = prompt_embeds(model, gen, face_prompt or gen.prompt, gen.negative_prompt, 4.0, gen.photomaker)
    assert identity_seen(face, face_embeds) == reference_identity_steps(6, 50, 3)  # 3 steps at 0.5: a 6-step schedule


def test_start_step_is_capped_at_30():
    assert start_merge_step(50, 100) == 30 and start_merge_step(20, 50) == 10 and start_merge_step(15, 30) == 4


def test_the_photomaker_lora_is_merged_at_weight_one_beside_task_loras(pm, model, adapter_models):
    _, layers, path = pm
    original = load_sdxl(ModelSpec(adapter_models.checkpoint))
    apply_loras(model, [(adapter_models.loras["style_kohya"], 0.5), (EmbeddedLora(path, lora_weights), 1.0)])
    style = adapter_models.layers["style"]["unet"]
    for layer in layers[:3] + layers[-2:]:
        module, base = model.unet.get_submodule(layer.module), original.unet.get_submodule(layer.module)
        x = torch.randn(2, module.in_features, generator=torch.Generator().manual_seed(1))
        expected = base(x) + layer.alpha / layer.down.shape[0] * (x @ layer.down.T @ layer.up.T)
        other = next((s for s in style if s.module == layer.module), None)
        if other is not None:
            expected = expected + 0.5 * other.alpha / other.down.shape[0] * (x @ other.down.T @ other.up.T)
        with torch.no_grad():
            assert torch.allclose(module(x), expected, atol=1e-5, rtol=1e-4)
    apply_loras(model, [])


def test_styles_are_the_reference_text():
    assert list(STYLES) == schema.field("photoMaker.style")["enum"]
    assert apply_style("Cinematic", "a man img", "blurry") == (
        "cinematic still a man img . emotional, harmonious, vignette, highly detailed, high budget, bokeh, "
        "cinemascope, moody, epic, gorgeous, film grain, grainy",
        "anime, cartoon, graphic, text, painting, crayon, graphite, abstract, glitch, deformed, mutated, ugly, "
        "disfigured blurry")
    assert apply_style("Fantasy art", "a woman img", None)[0].startswith("ethereal fantasy concept art of  a woman img .")
    assert apply_style("Lowpoly", "x", None) == (
        "low-poly style x . low-poly game art, polygon mesh, jagged, blocky, wireframe edges, centered composition",
        "noisy, sloppy, messy, grainy, highly detailed, ultra textured, photo ")
    assert apply_style("No style", "a man img", "dark") == ("a man img", " dark")
    assert apply_style("No style", "a man img", None) == ("a man img", None)  # stays SDXL's zeroed negative


def _task(**fields):
    return parse_tasks({"taskType": "imageInference", "taskUUID": "5f0c1b2a-3d4e-4f60-8a7b-9c0d1e2f3a4b",
                        "model": "tiny-sdxl", "positivePrompt": PROMPT, "width": 128, "height": 128, "steps": 4,
                        "seed": 1, "photoMaker": {"images": ["p.png"]}} | fields)[0]


@pytest.mark.parametrize("fields,path,words", [
    ({"positivePrompt": "a photo of a man"}, "$.positivePrompt", "found it 0 times"),
    ({"positivePrompt": "a man img and a woman img"}, "$.positivePrompt", "found it 2 times"),
    ({"positivePrompt": "img of a man"}, "$.positivePrompt", "must follow a class word"),
    ({"promptWeighting": "compel"}, "$.promptWeighting", "sdEmbeds"),
    ({"ultralytics": {"positivePrompt": "a detailed face"}}, "$.ultralytics.positivePrompt",
     "face detailer repaints faces with the identity, so its prompt needs the trigger word"),
])
def test_prompts_photomaker_cannot_use_are_refused_before_loading(adapter_models, fields, path, words):
    with pytest.raises(TaskValidationError) as info:
        prepare(_task(**fields), RunOptions(models_dir=adapter_models.root))
    assert info.value.problems[0].path == path and words in info.value.problems[0].message


def test_a_face_prompt_left_out_or_empty_is_positive_prompt_and_one_given_carries_the_trigger():
    for faces in ({}, {"positivePrompt": ""}, {"positivePrompt": "a detailed face of a man img"}):
        assert field_problems(_task(ultralytics=faces)) == [], faces


def test_a_task_runs_with_style_and_photos(pm, adapter_models, tmp_path):
    photo = tmp_path / "p.png"
    photos(1)[0].save(photo)
    task = _task(positivePrompt="a man img, portrait", negativePrompt="dark",
                 photoMaker={"images": [str(photo), str(photo)], "strength": 30, "style": "Comic book"})
    prepared = prepare(task, RunOptions(models_dir=adapter_models.root))
    gen = prepared.generation
    assert gen.prompt == ("comic a man img, portrait . graphic illustration, comic art, graphic novel art, vibrant, "
                          "highly detailed")
    assert gen.negative_prompt == "photograph, deformed, glitch, noisy, realistic, stock photo dark"
    assert gen.photomaker.path == pm[2] and len(gen.photomaker.images) == 2 and gen.photomaker.strength == 30
    results = run_tasks([task], RunOptions(models_dir=adapter_models.root, out_dir=tmp_path, device="cpu"))
    assert len(results) == 1 and results[0]["imageURL"].startswith("file://")


def test_a_missing_photomaker_file_is_named(tmp_path, adapter_models):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "tiny-sdxl.safetensors").symlink_to(adapter_models.checkpoint)
    photo = tmp_path / "p.png"
    photos(1)[0].save(photo)
    with pytest.raises(Exception, match="photomaker-v1.*photomaker"):
        prepare(_task(photoMaker={"images": [str(photo)]}), RunOptions(models_dir=tmp_path))


def test_safetensors_layout_loads_the_same_encoder(pm, tmp_path):
    sections, _, path = pm
    flat = write_photomaker(sections, tmp_path / "photomaker-v1.safetensors")
    a, b = build_encoder(path, WIDTHS), build_encoder(flat, WIDTHS)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert read_photomaker(flat).lora_weights.keys() == sections["lora_weights"].keys()


class _Exploit:
    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_bad_files_are_refused_naming_the_file(pm, tmp_path):
    sections, _, path = pm
    v2 = {"id_encoder": dict(sections["id_encoder"]) | {"qformer_perceiver.token_norm.weight": torch.ones(4)},
          "lora_weights": sections["lora_weights"]}
    with pytest.raises(ModelLoadError, match=r"v2\.bin: a PhotoMaker V2 file.*InsightFace"):
        read_photomaker(write_photomaker(v2, tmp_path / "v2.bin"))
    truncated = tmp_path / "cut.bin"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match="cut.bin"):
        read_photomaker(truncated)
    marker = tmp_path / "ran"
    _Exploit.marker = marker
    evil = tmp_path / "evil.bin"
    with open(evil, "wb") as f:
        pickle.dump({"id_encoder": _Exploit(), "lora_weights": {}}, f)
    with pytest.raises(ModelLoadError, match="evil.bin"):
        read_photomaker(evil)
    assert not marker.exists()
    lora_only = write_photomaker({"lora_weights": sections["lora_weights"]}, tmp_path / "other.bin")
    with pytest.raises(ModelLoadError, match="other.bin: not a PhotoMaker file"):
        read_photomaker(lora_only)
    wrong = {"id_encoder": {k: v for k, v in sections["id_encoder"].items() if "fuse_module" not in k},
             "lora_weights": sections["lora_weights"]}
    with pytest.raises(ModelLoadError, match="wrong.bin: its id_encoder does not fit"):
        build_encoder(write_photomaker(wrong, tmp_path / "wrong.bin"), WIDTHS)
    with pytest.raises(ModelLoadError, match="photomaker-v1.bin: its ID embeddings are 32\\+64 wide"):
        build_encoder(path, (768, 1280))


@pytest.mark.parametrize("weighting", [None, "sdEmbeds"])
@pytest.mark.parametrize("prompt", ["a photo of a man img", "a woman IMG, smiling in a garden",
                                    "(a man img:1.2) at night BREAK neon", "portrait of a girl img_2 by the sea",
                                    "a man img's portrait, imgur logo"])
def test_the_refiners_prompt_is_the_text_only_prompts_tokens(prompt, weighting):
    """The text-only prompt of TencentARC's pipeline is the prompt's tokens without the trigger token: the refiner,
    which has no identity to fill in, gets those (it encoded 'img' as a word before)."""
    from sdxlkit.loading.tokenizers import load_clip_tokenizers
    from sdxlkit.photomaker.prompt import _split, without_trigger
    from sdxlkit.prompts.a1111 import BREAK
    from sdxlkit.prompts.encode import parser
    from sdxlkit.prompts.token_prompt import tokenized

    def flat(items):
        return [(token, item[1]) for item in items if item is not BREAK for token in item[0]]

    for tokenizer in load_clip_tokenizers():
        text_only = _split(tokenizer, tokenized(tokenizer, parser(weighting)(prompt)), 1).text_only
        assert flat(tokenized(tokenizer, parser(weighting)(without_trigger(prompt)))) == flat(text_only)


def test_the_refiner_encodes_the_prompt_without_the_trigger_word(pm, model, refiner_models, monkeypatch):
    import sdxlkit.generate as generate_module
    from sdxlkit.refiner import RefinerRequest

    encoded = []
    original = generate_module.prompt_embeds

    def recording(components, gen, prompt, *args, **kwargs):
        encoded.append((components.role, prompt))
        return original(components, gen, prompt, *args, **kwargs)

    monkeypatch.setattr(generate_module, "prompt_embeds", recording)
    generate(model, _gen(pm, steps=4, refiner=RefinerRequest(refiner_models.single, 3)))
    assert [prompt for role, prompt in encoded if role == "refiner"] == ["a photo of a man  wearing glasses"]


def test_identity_embeddings_are_kept_like_any_prompts_for_the_same_file_and_photos(pm, model, monkeypatch):
    """The face detailer encodes its prompt for every image: with PhotoMaker that ran the ID encoder each time."""
    import sdxlkit.photomaker.prompt as prompt_module
    from sdxlkit.generate import prompt_embeds

    calls = []
    original = prompt_module.encode_identity_prompts
    monkeypatch.setattr(prompt_module, "encode_identity_prompts",
                        lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs))
    gen = _gen(pm)
    model.embeds_cache.release()  # what earlier tests encoded
    first = prompt_embeds(model, gen, PROMPT, "blurry", 5.0, PhotoMakerRequest(pm[2], photos(2), strength=50))
    again = prompt_embeds(model, gen, PROMPT, "blurry", 5.0, PhotoMakerRequest(pm[2], photos(2), strength=30))
    assert again is first and len(calls) == 1  # new Image objects of the same pixels; strength is not in them
    other = prompt_embeds(model, gen, PROMPT, "blurry", 5.0, PhotoMakerRequest(pm[2], photos(1), strength=50))
    assert other is not first and len(calls) == 2
    assert prompt_embeds(model, gen, PROMPT, "blurry", 5.0) is not first  # no identity: the plain prompt's
