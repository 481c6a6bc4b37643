"""Hires fix: the first-pass size rule, exactly `steps` refine evaluations by step index, the upscaler models
(spandrel, .pth and .safetensors, tiled), and the task path."""

import json
import math
from dataclasses import replace

import pytest
import torch

from sdxlkit import generate as generate_module
from sdxlkit.generate import Generation, generate, img2img, to_pil, txt2img
from sdxlkit.hires import HiresFix, first_pass_size, upscaled
from sdxlkit.loading.loader import ModelSpec, load_sdxl
from sdxlkit.sampling import UNetPart, schedule_for
from sdxlkit.tiny_upscaler import tiny_esrgan_state_dict, write_upscaler
from sdxlkit.upscale import load_upscaler, upscale

PROMPT = "a lighthouse on a cliff"


@pytest.fixture(scope="module")
def components(tiny_checkpoint):
    return load_sdxl(ModelSpec(tiny_checkpoint))


@pytest.fixture(scope="module")
def upscaler_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("upscale-models")
    sd = tiny_esrgan_state_dict(seed=3)
    return {suffix: write_upscaler(sd, root / "upscale_models" / f"RealESRGAN_x4plus{suffix}")
            for suffix in (".pth", ".safetensors")}


class Recorder(UNetPart):
    """Records (step, total, latent height, latent width) of every UNet evaluation."""

    def __init__(self, log):
        self.log = log

    def __call__(self, call, forward):
        self.log.append((call.step, call.total, *call.sample.shape[-2:]))
        return forward(call)


@pytest.fixture
def recorded(monkeypatch):
    log = []
    original = generate_module.unet_parts
    monkeypatch.setattr(generate_module, "unet_parts", lambda *a, **k: [*original(*a, **k), Recorder(log)])
    return log


def gen(upscaler, **overrides):
    hires = HiresFix(upscaler=upscaler, steps=3, strength=0.6, first_pass_area=64 * 64)
    base = dict(prompt=PROMPT, negative_prompt=None, width=128, height=128, steps=4, cfg=5.0, scheduler="Default",
                seed=11, hires=hires)
    return Generation(**(base | overrides))


@pytest.mark.parametrize("final, area, first", [
    ((2048, 2048), 1024 * 1024, (1024, 1024)),
    ((1024, 1024), 1024 * 1024, (512, 512)),    # not above the native area: half the sides
    ((1920, 1088), 1024 * 1024, (1360, 768)),   # sqrt(2^20 / (1920*1088)) = 0.7096 -> 1362.5, 772.1 -> floor to 8
    ((3072, 1024), 1024 * 1024, (1768, 584)),
    ((128, 128), 64 * 64, (64, 64)),
])
def test_first_pass_size_is_the_native_area_at_the_final_aspect(final, area, first):
    w, h = first_pass_size(*final, area)
    assert (w, h) == first
    assert w % 8 == 0 and h % 8 == 0 and w < final[0] and h < final[1] and w * h <= max(area, final[0] * final[1] / 4)


def test_schedule_runs_exactly_steps_at_strength():
    for steps in range(1, 61):
        for strength in [k / 100 for k in range(1, 101)]:
            n = schedule_for(steps, strength)
            assert int(n * strength) == steps  # what diffusers' img2img runs
            assert n == steps or int((n - 1) * strength) < steps  # and the shortest such schedule
    assert schedule_for(10, 0.5) == 20 and schedule_for(7, 0.7) == 10 and schedule_for(3, 1.0) == 3
    with pytest.raises(ValueError, match="strength"):
        schedule_for(5, 0)


def test_hires_runs_the_first_pass_small_and_exactly_steps_refine_evaluations(components, upscaler_files, recorded):
    ((image, seed),) = generate(components, gen(upscaler_files[".safetensors"]))
    assert image.shape == (1, 3, 128, 128) and seed == 11
    first = [r for r in recorded if r[2:] == (8, 8)]      # 64x64 px first pass
    refine = [r for r in recorded if r[2:] == (16, 16)]   # 128x128 px refine
    assert first == [(i, 4, 8, 8) for i in range(4)]
    assert refine == [(i, 3, 16, 16) for i in range(3)]   # hiresFix.steps = 3 evaluations at strength 0.6
    assert len(recorded) == 7


def test_hires_is_first_pass_then_upscale_then_img2img_with_the_same_seed(components, upscaler_files):
    g = gen(upscaler_files[".pth"])
    ((image, _),) = generate(components, g)
    embeds = generate_module.prompt_embeds(components, g, g.prompt, g.negative_prompt, g.cfg)
    small = txt2img(components, replace(g, width=64, height=64, hires=None), [11], embeds, None)
    big = upscaled(components, small, g.hires.upscaler, (128, 128))
    expected = img2img(components, replace(g, hires=None, seed_image=to_pil(big)[0], steps=schedule_for(3, 0.6),
                                           strength=0.6), [11], embeds, None)
    assert torch.equal(image, expected)
    ((other, _),) = generate(components, replace(g, seed=12))
    assert (other - image).abs().mean() > 1e-3


def test_hires_strength_zero_is_the_upscaled_first_pass(components, upscaler_files, recorded):
    g = gen(upscaler_files[".pth"])
    g = replace(g, hires=replace(g.hires, strength=0.0))
    ((image, _),) = generate(components, g)
    assert all(r[2:] == (8, 8) for r in recorded) and len(recorded) == 4
    assert image.shape == (1, 3, 128, 128)


def test_hires_composes_with_img2img_and_inpaint(components, upscaler_files, recorded):
    from PIL import Image

    source = Image.new("RGB", (128, 128), (40, 120, 200))
    mask = Image.new("L", (128, 128), 0)
    mask.paste(255, (32, 32, 96, 96))
    for extra in ({"seed_image": source, "strength": 0.5}, {"seed_image": source, "mask_image": mask, "strength": 1.0}):
        recorded.clear()
        ((image, _),) = generate(components, gen(upscaler_files[".pth"], **extra))
        first = [r for r in recorded if r[2:] == (8, 8)]
        assert len(first) == int(4 * extra["strength"]) and [r for r in recorded if r[2:] == (16, 16)] == [(i, 3, 16, 16) for i in range(3)]
        assert image.shape == (1, 3, 128, 128)
    # inpaint repaints only the mask, in both passes: away from it the image is the seed image, not its upscaled copy
    seed_pixels = torch.tensor((40, 120, 200), dtype=torch.float32).view(1, 3, 1, 1) / 255
    g = gen(upscaler_files[".pth"], **extra)
    ((upscaled_only, _),) = generate(components, replace(g, hires=replace(g.hires, strength=0.0)))
    for result in (image, upscaled_only):
        assert (result - seed_pixels)[..., :12, :].abs().max() <= 1e-6
    assert (image - upscaled_only)[..., 48:80, 48:80].abs().mean() > 0.01


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_upscaler_files_load_with_spandrel(upscaler_files, suffix):
    model = load_upscaler(upscaler_files[suffix])
    assert model.scale == 4 and model.architecture.name == "ESRGAN"
    x = torch.rand(1, 3, 20, 24)
    assert upscale(model, x).shape == (1, 3, 80, 96)


def test_tiled_upscale_equals_untiled(upscaler_files):
    model = load_upscaler(upscaler_files[".pth"])
    x = torch.rand(1, 3, 72, 100, generator=torch.Generator().manual_seed(0))
    whole = upscale(model, x, tile=512)
    with torch.inference_mode():
        assert torch.equal(whole, model(x).clamp(0, 1))  # one tile: the model on the whole image
    # Tiles blend linearly over the overlap, so pixels near a tile's edge (where its zero padding shows) still count a
    # little: measured 0.0016 (64 px tiles, 16 px overlap) and 0.0046 (32 px, 8 px) at most, 2e-5 / 1e-4 on average
    for tile, overlap, most, mean in ((64, 16, 0.003, 5e-5), (32, 8, 0.01, 2e-4)):
        difference = (upscale(model, x, tile=tile, overlap=overlap) - whole).abs()
        assert difference.max() < most and difference.mean() < mean


def test_upscale_falls_back_to_smaller_tiles_on_out_of_memory(upscaler_files):
    model = load_upscaler(upscaler_files[".pth"])
    real, tiles = model.__call__, []

    def limited(image):
        tiles.append(image.shape[-1])
        if image.shape[-1] > 128:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(image)

    x = torch.rand(1, 3, 300, 300)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(model), "__call__", lambda self, image: limited(image))
        out = upscale(model, x)
    # 512 (the whole image) fails, 256 fails, 128 works: every 128 px tile of the image
    assert out.shape == (1, 3, 1200, 1200) and tiles[:2] == [300, 256] and tiles[2:] == [128] * 9
    assert (out - upscale(model, x, tile=128)).abs().max() == 0


def test_hires_task_runs_with_a_mapped_upscaler_id(tmp_path, tiny_checkpoint, upscaler_files, recorded):
    from sdxlkit.runner import RunOptions, prepare, run_tasks
    from sdxlkit.task.model import parse_tasks

    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    (models / "checkpoints" / tiny_checkpoint.name).symlink_to(tiny_checkpoint)
    (models / "upscale_models").mkdir()
    # runware:504@1 maps to upscale_models/RealESRGAN_x4plus.pth; the same model as .safetensors is found too
    (models / "upscale_models" / "RealESRGAN_x4plus.safetensors").symlink_to(upscaler_files[".safetensors"])
    task = {"taskType": "imageInference", "taskUUID": "a5a6f0e1-7b3c-4d2e-9f10-1a2b3c4d5e6f", "model": tiny_checkpoint.name,
            "positivePrompt": PROMPT, "width": 128, "height": 128, "steps": 2, "seed": 5, "outputType": "base64Data",
            "hiresFix": {"model": "runware:504@1", "steps": 2, "strength": 0.5}}
    options = RunOptions(models_dir=models, device="cpu")
    prepared = prepare(parse_tasks(task)[0], options)
    hires = prepared.generation.hires
    assert hires.upscaler.name == "RealESRGAN_x4plus.safetensors" and (hires.steps, hires.strength) == (2, 0.5)
    (result,) = run_tasks(parse_tasks(task), options)
    assert result["seed"] == 5 and "imageBase64Data" in result
    assert [r[:2] for r in recorded if r[2:] == (16, 16)] == [(0, 2), (1, 2)]
    # true: the documented defaults (RealESRGAN_x4plus, the task's steps, strength 0.5)
    defaults = prepare(parse_tasks(task | {"hiresFix": True, "steps": 3})[0], options).generation.hires
    assert (defaults.steps, defaults.strength, defaults.first_pass_area) == (3, 0.5, 1024 * 1024)
    missing = task | {"hiresFix": {"model": "runware:esrgan@ultrasharp"}}
    with pytest.raises(Exception, match="4x-UltraSharp"):
        prepare(parse_tasks(missing)[0], options)
    json.dumps(result)
    assert math.isfinite(hires.strength)


def test_missing_packages_say_what_to_install(monkeypatch):
    import sys

    from sdxlkit.errors import SdxlKitError
    from sdxlkit.faces.yolo import ultralytics
    from sdxlkit.upscale import spandrel

    monkeypatch.setitem(sys.modules, "spandrel", None)
    monkeypatch.setitem(sys.modules, "ultralytics", None)
    with pytest.raises(SdxlKitError, match=r"pip install spandrel==0\.4\.2"):
        spandrel()
    with pytest.raises(SdxlKitError, match=r"pip install ultralytics==8\.4\.190"):
        ultralytics()


def test_hires_with_outpaint_is_refused_by_name():
    from sdxlkit.errors import TaskValidationError
    from sdxlkit.task.model import parse_tasks

    task = {"taskType": "imageInference", "taskUUID": "c5a6f0e1-7b3c-4d2e-9f10-1a2b3c4d5e6f", "model": "m",
            "positivePrompt": PROMPT, "width": 192, "height": 128, "inputs": {"seedImage": "x.png"},
            "outpaint": {"right": 64}, "hiresFix": True}
    with pytest.raises(TaskValidationError, match=r"\$\.hiresFix: cannot be combined with outpaint"):
        parse_tasks(task)


@pytest.mark.parametrize(("fields", "path", "says"), [
    ({"scheduler": "LCM", "steps": 26, "hiresFix": True}, "$.hiresFix.strength", "need a 52-step schedule, but 'LCM' takes at most 50"),
    ({"scheduler": "LCM", "ultralytics": {}}, "$.ultralytics.strength", "20 steps at strength 0.3 need a 67-step schedule"),
    ({"scheduler": "DDIM", "hiresFix": {"model": "runware:504@1", "steps": 12, "strength": 0.01}}, "$.hiresFix.strength",
     "need a 1200-step schedule, but 'DDIM' takes at most 1000; raise hiresFix.strength to at least 0.02")])
def test_post_passes_whose_schedule_the_scheduler_cannot_take_are_refused_before_loading(fields, path, says):
    from sdxlkit.runnable import field_problems
    from sdxlkit.task.model import parse_tasks

    task = {"taskType": "imageInference", "taskUUID": "0b7e4cd6-5b8e-4f57-9d5c-2f4c6f3d1a11", "model": "m",
            "positivePrompt": "a face", "width": 1024, "height": 1024} | fields
    (problem,) = field_problems(parse_tasks(task)[0])
    assert problem.path == path and says in problem.message
    longest = {"LCM": 50, "DDIM": 1000}[fields["scheduler"]]
    fitting = task | {path.split(".")[1]: (fields[path.split(".")[1]] if isinstance(fields[path.split(".")[1]], dict)
                                          else {"model": "runware:504@1"}) | {"strength": 1.0, "steps": longest}}
    assert not field_problems(parse_tasks(fitting)[0])  # a schedule of exactly the longest is fine
