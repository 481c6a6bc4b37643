"""The SDXL refiner: loading in its real layouts, the hand-off by step index, and the task side."""

from dataclasses import replace

import pytest
import torch
from PIL import Image

from sdxlkit.errors import ModelLoadError, SdxlKitError, TaskValidationError
from sdxlkit.generate import Generation, generate
from sdxlkit.loading.loader import ModelSpec, load_sdxl
from sdxlkit.refiner import RefinerRequest, switch_step
from sdxlkit.refiner import handoff
from sdxlkit.sampling import UNetPart
from sdxlkit.schedulers import (SCHEDULER_NAMES, SCHEDULERS, Mapped, Refused, evaluates_twice_per_step,
                               make_scheduler)
from sdxlkit.task.model import parse_tasks


@pytest.fixture(scope="module")
def base(refiner_models):
    return load_sdxl(ModelSpec(refiner_models.checkpoint))


@pytest.fixture(scope="module")
def refiner(refiner_models):
    return load_sdxl(ModelSpec(refiner_models.single, role="refiner"))


class Recorder(UNetPart):
    """Records every UNet call of a pass: the model, the step index, the timestep, the time ids."""

    def __init__(self, role, log):
        self.role, self.log = role, log

    def __call__(self, call, forward):
        self.log.append(dict(role=self.role, step=call.step, total=call.total, t=float(call.timestep),
                             width=call.encoder_hidden_states.shape[-1], time_ids=call.added_cond_kwargs["time_ids"].clone()))
        return forward(call)


@pytest.fixture
def recorded(monkeypatch):
    """Every pass of a hand-off runs with a Recorder as its innermost part (real pass assembly, real pipelines)."""
    log = []
    real = handoff.denoise

    def recording(components, p, on_step=None):
        return real(components, replace(p, parts=[*p.parts, Recorder(components.role, log)]), on_step)

    monkeypatch.setattr(handoff, "denoise", recording)
    return log


def schedule(components, steps, scheduler="Default"):
    s = make_scheduler(scheduler, components.scheduler_config, seed=0)
    s.set_timesteps(steps)
    return [float(t) for t in s.timesteps]


def gen(path, switch, **overrides):
    values = dict(prompt="a lighthouse", negative_prompt=None, width=64, height=64, steps=6, cfg=5.0,
                  scheduler="Default", seed=3, refiner=RefinerRequest(path, switch))
    return Generation(**(values | overrides))


def test_refiner_single_file_and_folder_load_with_the_written_weights(refiner_models, tiny_refiner, refiner):
    folder = load_sdxl(ModelSpec(refiner_models.folder, role="refiner"))
    for loaded in (refiner, folder):
        assert loaded.role == "refiner" and loaded.text_encoder is None and loaded.tokenizer is None
        assert loaded.vae is None  # the base's VAE decodes
        for name in ("unet", "text_encoder_2"):
            expected, got = tiny_refiner[name].state_dict(), getattr(loaded, name).state_dict()
            assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    # 4 UNet levels, attention only in the middle two, time ids of 5 numbers (sizes, crop, aesthetic score)
    assert list(refiner.unet.config.down_block_types) == ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
    cfg = refiner.unet.config
    assert cfg.projection_class_embeddings_input_dim == 5 * cfg.addition_time_embed_dim + refiner.text_encoder_2.config.projection_dim


def test_refiner_keys_are_stabilitys_refiner_layout(refiner_models):
    from safetensors import safe_open

    with safe_open(str(refiner_models.single), "pt") as f:
        keys = set(f.keys())
    assert any(k.startswith("conditioner.embedders.0.model.transformer.resblocks.") for k in keys)
    assert not any(k.startswith("conditioner.embedders.0.transformer.") or k.startswith("conditioner.embedders.1.") for k in keys)
    assert "model.diffusion_model.label_emb.0.0.weight" in keys


def test_a_refiner_is_refused_as_the_model_and_a_base_as_the_refiner(refiner_models):
    for path in (refiner_models.single, refiner_models.folder):
        with pytest.raises(ModelLoadError, match="this is an SDXL refiner checkpoint, not an SDXL base"):
            load_sdxl(ModelSpec(path))
    with pytest.raises(ModelLoadError, match="this is an SDXL base checkpoint, not an SDXL refiner"):
        load_sdxl(ModelSpec(refiner_models.checkpoint, role="refiner"))


@pytest.mark.parametrize("steps, switch", [(6, 4), (30, 10)])
def test_txt2img_hand_off_splits_the_schedule_at_the_switch_step(base, refiner, refiner_models, recorded, steps, switch):
    progress = []
    generate(base, gen(refiner_models.single, switch, steps=steps), lambda d, t: progress.append((d, t)))
    first = [c for c in recorded if c["role"] == "base"]
    second = [c for c in recorded if c["role"] == "refiner"]
    full = schedule(base, steps)
    # exactly `steps` UNet evaluations: base steps 0..switch-1, refiner the rest, each timestep of the schedule once
    assert [c["step"] for c in first] == list(range(switch))
    assert [c["step"] for c in second] == list(range(steps - switch))
    assert [c["t"] for c in first + second] == full
    # the refiner's UNet ran them: bigG-only conditioning, aesthetic scores 6.0 (prompt) / 2.5 (negative) in its time ids
    assert {c["width"] for c in first} == {96} and {c["width"] for c in second} == {64}
    assert second[0]["time_ids"][:, -1].tolist() == [2.5, 6.0]  # CFG batch: negative half first
    assert first[0]["time_ids"].shape[-1] == 6 and second[0]["time_ids"].shape[-1] == 5
    assert progress == [(i, steps) for i in range(1, steps + 1)]


def test_hand_off_from_leading_spacing_where_a_plain_fraction_misplaces_the_step(base):
    # 30 leading-spaced steps: step 9 is t=661, and denoising_end=10/30 cuts at 667, so the base would run 9 steps
    steps = schedule(base, 30)
    assert steps[9] == 661 and round(1000 - 1000 * 10 / 30) == 667
    p = type("P", (), {"scheduler": "Default", "seeds": [0], "steps": 30})()
    fraction = handoff.switch_fraction(base, p, 10)
    cutoff = round(1000 - fraction * 1000)
    assert steps[9] >= cutoff > steps[10]


@pytest.mark.parametrize("mode", ["img2img", "inpaint"])
def test_img2img_and_inpaint_hand_off_run_the_strengths_steps_once(base, refiner, refiner_models, recorded, mode):
    image = Image.new("RGB", (64, 64), (200, 120, 40))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    extra = dict(seed_image=image, strength=0.5) | ({"mask_image": mask} if mode == "inpaint" else {})
    ((out, _),) = generate(base, gen(refiner_models.single, 6, steps=8, **extra), None)
    full = schedule(base, 8)
    first = [c for c in recorded if c["role"] == "base"]
    second = [c for c in recorded if c["role"] == "refiner"]
    assert [c["t"] for c in first] == full[4:6] and [c["t"] for c in second] == full[6:8]
    assert out.shape == (1, 3, 64, 64)
    if mode == "inpaint":  # outside the feathered mask the source pixels are kept
        assert torch.allclose(out[..., :4, :4], torch.tensor([200, 120, 40]).div(255).view(1, 3, 1, 1).expand(1, 3, 4, 4), atol=1 / 255)


def test_the_refiner_changes_the_image_and_a_different_switch_gives_another(base, refiner, refiner_models):
    plain = generate(base, replace(gen(refiner_models.single, 4), refiner=None))[0][0]
    refined = generate(base, gen(refiner_models.single, 4))[0][0]
    later = generate(base, gen(refiner_models.single, 5))[0][0]
    assert not torch.equal(plain, refined) and not torch.equal(refined, later)


def task(**fields):
    return {"taskType": "imageInference", "taskUUID": "0b7e4cd6-5b8e-4f57-9d5c-2f4c6f3d1a11", "model": "tiny-sdxl",
            "positivePrompt": "a lighthouse", "width": 128, "height": 128, "steps": 10} | fields


def test_switch_step_from_step_or_percentage():
    assert switch_step(30, 20) == 20
    assert switch_step(30, None, 75) == 22  # 22.5 rounded down
    assert switch_step(30) == 24  # diffusers' documented 0.8


@pytest.mark.parametrize("refiner, fields, path", [
    ({"model": "r", "startStep": 10}, {}, "$.refiner.startStep"),
    ({"model": "r", "startStepPercentage": 5}, {}, "$.refiner.startStepPercentage"),  # 10 * 5% = step 0
    ({"model": "r", "startStep": 3}, {"inputs": {"seedImage": "x.png"}, "strength": 0.5}, "$.refiner.startStep"),
])
def test_a_switch_where_one_model_would_run_no_step_is_refused(refiner, fields, path):
    with pytest.raises(TaskValidationError) as err:
        parse_tasks(task(refiner=refiner, **fields))
    assert [p.path for p in err.value.problems] == [path]


@pytest.mark.parametrize("scheduler", ["Heun", "Heun Karras", "HeunDiscreteScheduler", "KDPM2DiscreteScheduler",
                                       "KDPM2AncestralDiscreteScheduler", "DPM++ SDE", "DPM++ SDE Karras"])
def test_schedulers_of_two_evaluations_per_step_are_refused_with_a_refiner(scheduler):
    from sdxlkit.runnable import field_problems

    (with_refiner,) = parse_tasks(task(refiner={"model": "r", "startStep": 6}, scheduler=scheduler))
    assert [p.path for p in field_problems(with_refiner)] == ["$.scheduler"]
    assert not field_problems(parse_tasks(task(scheduler=scheduler))[0])
    assert not field_problems(parse_tasks(task(refiner={"model": "r", "startStep": 6}, scheduler="Euler"))[0])


REFUSED = [n for n in SCHEDULER_NAMES if isinstance(SCHEDULERS[n], Refused)]


@pytest.mark.parametrize("scheduler", REFUSED)
def test_a_refused_scheduler_with_a_refiner_is_reported_as_the_tasks_scheduler_problem(scheduler):
    from sdxlkit.runnable import field_problems

    (with_refiner,) = parse_tasks(task(refiner={"model": "r", "startStep": 6}, scheduler=scheduler))
    problems = field_problems(with_refiner)
    assert [p.path for p in problems] == ["$.scheduler"]
    assert problems[0].code == "unsupportedScheduler"


ONE_EVALUATION = [n for n in SCHEDULER_NAMES if isinstance(SCHEDULERS[n], Mapped) and not evaluates_twice_per_step(n)]


@pytest.mark.parametrize("scheduler", ONE_EVALUATION)
def test_every_cut_leaves_the_base_exactly_the_steps_before_the_switch_or_is_refused(base, scheduler):
    """diffusers' rule (pipeline_stable_diffusion_xl): the base keeps the timesteps >= int(round(N - f * N)) of its
    denoising_end f, the refiner's denoising_start keeps those below."""
    refused = 0
    for steps in (5, 10, 20, 30, 50):
        timesteps = make_scheduler(scheduler, base.scheduler_config)
        timesteps.set_timesteps(steps)
        timesteps = timesteps.timesteps.tolist()
        p = type("P", (), {"scheduler": scheduler, "seeds": [0], "steps": steps})()
        for switch in range(1, steps):
            try:
                fraction = handoff.switch_fraction(base, p, switch)
            except SdxlKitError as exc:
                if len(timesteps) != steps:  # PNDM's warm-up step
                    assert f"runs {len(timesteps)} UNet evaluations for {steps} steps" in str(exc)
                    continue
                assert f"cannot take over at step {switch} of {steps}" in str(exc)
                assert timesteps[switch - 1] - timesteps[switch] < 1
                refused += 1
                continue
            cutoff = int(round(1000 - fraction * 1000))
            assert sum(t >= cutoff for t in timesteps) == switch, (steps, switch)
            assert sum(t < cutoff for t in timesteps) == steps - switch, (steps, switch)
    assert refused < 40  # only where the tail's timesteps crowd under one apart


def test_a_late_switch_on_a_karras_tail_is_refused_before_loading_naming_the_latest_step():
    from sdxlkit.runnable import field_problems

    (late,) = parse_tasks(task(steps=30, scheduler="Euler Karras", refiner={"model": "r", "startStepPercentage": 97}))
    (problem,) = field_problems(late)
    assert problem.path == "$.refiner"
    assert "cannot take over at step 29 of 30 with 'Euler Karras'" in problem.message
    latest = int(problem.message.rsplit("take over at step ", 1)[1].split()[0])
    assert 20 < latest < 29
    (fine,) = parse_tasks(task(steps=30, scheduler="Euler Karras", refiner={"model": "r", "startStep": latest}))
    assert not field_problems(fine)


def test_a_task_with_a_refiner_runs_through_the_mapped_id(refiner_models, tmp_path, monkeypatch):
    from sdxlkit.loading.cache import ModelCache
    from sdxlkit.runner import RunOptions, prepare, run_prepared

    refiners = ModelCache()
    monkeypatch.setattr(handoff, "REFINER_CACHE", refiners)
    options = RunOptions(models_dir=refiner_models.root, out_dir=tmp_path, device="cpu")
    prepared = prepare(parse_tasks(task(refiner={"model": "civitai:101055@128080", "startStepPercentage": 60},
                                        outputType="base64Data"))[0], options)
    assert prepared.generation.refiner == RefinerRequest(refiner_models.single, 6)
    (result,) = run_prepared(prepared, options, ModelCache())
    assert result["imageBase64Data"] and refiners.loads == 1
