"""ControlNet: A1111's control modes against their formulas, step windows by index, summing, file layouts, bad files."""

from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from sdxlkit.controlnet import Control, ControlNetCache, ControlNetPart, load_controlnet, residual_scales
from sdxlkit.sampling.window import step_window
from sdxlkit.controlnet.part import scaled_residuals
from sdxlkit.errors import ModelLoadError
from sdxlkit.generate import ControlRequest, Generation, generate
from sdxlkit.loading.loader import ModelSpec, load_sdxl
from sdxlkit.lora import apply_loras
from sdxlkit.runner import RunOptions, prepare
from sdxlkit.sampling import PassUNet
from sdxlkit.task.model import parse_tasks
from sdxlkit.tiny_controlnet import write_controlnet

GEN = dict(prompt="a lighthouse on a cliff", negative_prompt="fog", width=64, height=64, steps=4, cfg=5.0,
           scheduler="Euler", seed=5)


@pytest.fixture(scope="module")
def model(adapter_models):
    return load_sdxl(ModelSpec(adapter_models.checkpoint))


@pytest.fixture(scope="module")
def guide():
    return Image.fromarray((np.random.RandomState(0).rand(48, 80, 3) * 255).astype(np.uint8))


def test_balanced_scales_every_residual_by_the_weight():
    assert residual_scales("balanced", 0.7, 10) == [0.7] * 10


@pytest.mark.parametrize("mode", ["prompt", "controlnet"])
def test_soft_scales_are_a1111s_first_ten_of_thirteen(mode):
    scales = residual_scales(mode, 2.0, 10)
    assert scales == pytest.approx([2.0 * 0.825 ** (12 - i) for i in range(10)])
    assert scales[0] == pytest.approx(2.0 * 0.0994, abs=1e-4) and scales[-1] == pytest.approx(2.0 * 0.5615, abs=1e-4)


def _raw(batch=2, count=4):
    g = torch.Generator().manual_seed(1)
    return [torch.randn(batch, 3, 4, 4, generator=g) for _ in range(count - 1)], torch.randn(batch, 3, 2, 2, generator=g)


@pytest.mark.parametrize("mode,uncond_kept", [("balanced", True), ("prompt", True), ("controlnet", False)])
def test_modes_scale_residuals_and_zero_uncond_only_in_controlnet_mode(mode, uncond_kept):
    down, mid = _raw()
    control = Control(model=None, image=None, weight=1.5, mode=mode, window=step_window(10))
    out_down, out_mid = scaled_residuals(control, down, mid, guidance=True)
    scales = residual_scales(mode, 1.5, 4)
    for raw, out, scale in zip([*down, mid], [*out_down, out_mid], scales):
        assert torch.allclose(out[1], raw[1] * scale)  # the conditional half
        assert torch.allclose(out[0], raw[0] * scale if uncond_kept else torch.zeros_like(raw[0]))
    # without classifier-free guidance the batch is all conditional: nothing is zeroed
    no_cfg_down, _ = scaled_residuals(control, [d[:1] for d in down], mid[:1], guidance=False)
    assert torch.allclose(no_cfg_down[0], down[0][:1] * scales[0])


class RecordingUNet(torch.nn.Module):
    """Stands in for the real UNet to see the residuals the controlled UNet hands over."""

    config = SimpleNamespace(in_channels=4)

    def forward(self, sample, timestep, encoder_hidden_states, **kwargs):
        self.seen = kwargs
        return (sample,)


def test_several_controlnets_are_summed_each_with_its_own_mode(adapter_models, model, guide):
    controlnet = adapter_models.controlnet
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    controls = [Control(controlnet, image, 0.8, "balanced", step_window(4)),
                Control(controlnet, image.flip(-1), -1.2, "controlnet", step_window(4))]
    scheduler = SimpleNamespace(timesteps=list(range(4)), begin_index=None)
    recorder = RecordingUNet()
    unet = PassUNet(recorder, [ControlNetPart(controls, guidance=True)], scheduler)
    g = torch.Generator().manual_seed(3)
    sample, t = torch.randn(2, 4, 8, 8, generator=g), torch.tensor(500)
    hidden = torch.randn(2, 77, model.unet.config.cross_attention_dim, generator=g)
    added = {"text_embeds": torch.randn(2, 64, generator=g), "time_ids": torch.randn(2, 6, generator=g)}
    unet(sample, t, hidden, added_cond_kwargs=added)
    expected_down, expected_mid = None, None
    for control in controls:
        down, mid = controlnet(sample, t, encoder_hidden_states=hidden, controlnet_cond=control.image.expand(2, -1, -1, -1),
                               added_cond_kwargs=added, return_dict=False)
        scales = residual_scales(control.mode, control.weight, len(down) + 1)
        keep = torch.tensor([0.0, 1.0]).view(2, 1, 1, 1) if control.mode == "controlnet" else 1.0
        down = [d * s * keep for d, s in zip(down, scales)]
        expected_down = down if expected_down is None else [a + b for a, b in zip(expected_down, down)]
        expected_mid = mid * scales[-1] * keep if expected_mid is None else expected_mid + mid * scales[-1] * keep
    assert len(expected_down) == 9  # SDXL's layout: conv_in + 3 levels x 2 resnets + 2 downsamplers, then the middle
    for got, want in zip(recorder.seen["down_block_additional_residuals"], expected_down):
        assert torch.allclose(got, want, atol=1e-6)
    assert torch.allclose(recorder.seen["mid_block_additional_residual"], expected_mid, atol=1e-6)


@pytest.mark.parametrize("window,total,expected", [
    (dict(start_step=2, end_step=6), 10, [2, 3, 4, 5]),
    (dict(start_percent=25, end_percent=75), 8, [2, 3, 4, 5]),
    (dict(end_step=3), 10, [0, 1, 2]),
    (dict(start_percent=30), 10, [3, 4, 5, 6, 7, 8, 9]),
    (dict(start_percent=50, end_percent=100), 6, [3, 4, 5]),  # img2img: 6 of 10 steps run, fractions of the run
])
def test_step_windows_by_index(adapter_models, window, total, expected):
    steps = 10 if total == 6 else total
    control = Control(adapter_models.controlnet, torch.zeros(1, 3, 64, 64), 1.0, "balanced", step_window(steps, **window))
    scheduler = SimpleNamespace(timesteps=list(range(10 if total == 6 else total)), begin_index=4 if total == 6 else None)
    part = ControlNetPart([control], guidance=False)
    unet = PassUNet(RecordingUNet(), [part], scheduler)
    hidden = torch.zeros(1, 77, adapter_models.controlnet.config.cross_attention_dim)
    added = {"text_embeds": torch.zeros(1, 64), "time_ids": torch.zeros(1, 6)}
    for _ in range(total):
        unet(torch.zeros(1, 4, 8, 8), torch.tensor(1), hidden, added_cond_kwargs=added)
    assert part.active_steps == [expected]


def test_window_fractions_are_exact():
    assert step_window(30, start_percent=10, end_step=20) == step_window(30, start_step=3, end_percent=Fraction(200, 3))


def test_weight_zero_is_exactly_the_base_output_and_modes_differ(model, adapter_models, guide):
    base = generate(model, Generation(**GEN))[0][0]
    request = dict(path=adapter_models.controlnets["file"], image=guide, window=step_window(4))
    off = generate(model, Generation(**GEN, controls=[ControlRequest(weight=0.0, mode="balanced", **request)]))[0][0]
    assert torch.equal(off, base)
    outputs = [generate(model, Generation(**GEN, controls=[ControlRequest(weight=1.0, mode=m, **request)]))[0][0]
               for m in ("balanced", "prompt", "controlnet")]
    for i, a in enumerate(outputs):
        assert (a - base).abs().max() > 1e-3
        for b in outputs[i + 1:]:
            assert (a - b).abs().max() > 1e-4


def test_every_file_layout_loads_the_same_weights(adapter_models, model):
    expected = adapter_models.controlnet.state_dict()
    for layout, path in adapter_models.controlnets.items():
        loaded = load_controlnet(path, model.unet, torch.float32, "cpu").state_dict()
        assert loaded.keys() == expected.keys(), layout
        assert all(torch.equal(loaded[k], expected[k]) for k in expected), layout


def test_bad_controlnet_files_name_the_file(tmp_path, adapter_models, model):
    from safetensors.torch import save_file

    from sdxlkit.tiny import build_tiny_components
    from sdxlkit.tiny_controlnet import build_tiny_controlnet

    sd = adapter_models.controlnet.state_dict()
    union = tmp_path / "union_promax.safetensors"
    save_file({**sd, "task_embedding": torch.zeros(8, 32)}, str(union))
    control_lora = tmp_path / "control_lora.safetensors"
    save_file({"lora_controlnet": torch.zeros(1)}, str(control_lora))
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(adapter_models.controlnets["file"].read_bytes()[:4096])
    a_lora = adapter_models.loras["style_kohya"]
    other = write_controlnet(build_tiny_controlnet(build_tiny_components("mid")["unet"]), tmp_path / "for_mid.safetensors")
    cases = [(union, "ControlNet-Union"), (control_lora, "Control-LoRA"), (truncated, "truncated or corrupt"),
             (a_lora, "not a ControlNet"), (other, "for another model")]
    for path, reason in cases:
        with pytest.raises(ModelLoadError, match=rf"^{path.name}: .*{reason}"):
            ControlNetCache().get(path, model)


def test_task_controlnet_entries_become_requests_before_any_model_loads(adapter_models, tmp_path, guide):
    guide_path = tmp_path / "guide.png"
    guide.save(guide_path)
    task = parse_tasks({"taskType": "imageInference", "taskUUID": "5b6e1c53-61a3-4a62-9f71-1c1a3b0c5a10",
                        "model": "tiny-sdxl", "positivePrompt": "a cat", "width": 128, "height": 128, "steps": 20,
                        "controlNet": [{"model": "canny_file", "guideImage": str(guide_path), "weight": 0.5,
                                        "controlMode": "prompt", "startStep": 2, "endStepPercentage": 80}]})[0]
    prepared = prepare(task, RunOptions(models_dir=adapter_models.root, device="cpu"))
    (request,) = prepared.generation.controls
    assert request.path == adapter_models.controlnets["file"] and request.weight == 0.5 and request.mode == "prompt"
    assert request.window == step_window(20, start_step=2, end_percent=80) and request.image.size == guide.size


def _expected_control_lora(file: dict, unet) -> dict:
    """ComfyUI's ControlLora: the UNet's weights under the ControlNet's (ldm) names, the file's .weight/.bias over
    them, and weight + mm(up.flatten(1), down.flatten(1)).reshape(weight.shape) for each up/down pair."""
    from sdxlkit.loading.stability_layout import _rename, unet_modules
    from sdxlkit.lora import base_state_dict

    sd = base_state_dict(unet)
    expected = _rename(sd, unet_modules(sd), "", "UNet")
    for key, value in file.items():
        if key.endswith((".weight", ".bias")):
            expected[key] = value
        elif key.endswith(".down"):
            stem = key.removesuffix(".down")
            weight = expected[stem + ".weight"]
            expected[stem + ".weight"] = weight + torch.mm(file[stem + ".up"].flatten(start_dim=1),
                                                           value.flatten(start_dim=1)).reshape(weight.shape)
    return expected


def test_control_lora_is_the_unet_plus_the_files_differences(tmp_path, adapter_models):
    from safetensors.torch import load_file

    from sdxlkit.tiny_controlnet import ldm_state_dict

    components = load_sdxl(ModelSpec(adapter_models.checkpoint))
    path = write_controlnet(adapter_models.controlnet, tmp_path / "control-lora-canny-rank4.safetensors", "control_lora")
    file = load_file(str(path))
    cache = ControlNetCache()
    loaded = ldm_state_dict(cache.get(path, components))
    expected = _expected_control_lora(file, components.unet)
    assert len(loaded) > 100
    for key, value in loaded.items():
        assert torch.allclose(value, expected[key.removeprefix("control_model.")], atol=1e-6), key

    # made over the model as it is: a LoRA set changes the ControlNet, and going back finds the first one again
    first = cache.get(path, components)
    apply_loras(components, [(adapter_models.loras["style_kohya"], 1.0)])
    with_lora = cache.get(path, components)
    assert with_lora is not first and cache.made == 2
    expected = _expected_control_lora(file, components.unet)
    for key, value in ldm_state_dict(with_lora).items():
        assert torch.allclose(value, expected[key.removeprefix("control_model.")], atol=1e-6), key
    apply_loras(components, [])
    assert cache.get(path, components) is first and cache.made == 2
    # a full ControlNet does not depend on the LoRA set
    full = cache.get(adapter_models.controlnets["file"], components)
    apply_loras(components, [(adapter_models.loras["style_kohya"], 1.0)])
    assert cache.get(adapter_models.controlnets["file"], components) is full


def test_control_lora_guides_a_generation(tmp_path, adapter_models, model, guide):
    path = write_controlnet(adapter_models.controlnet, tmp_path / "control-lora.safetensors", "control_lora")
    base = generate(model, Generation(**GEN))[0][0]
    request = ControlRequest(path=path, image=guide, weight=1.0, mode="balanced", window=step_window(4))
    guided = generate(model, Generation(**GEN, controls=[request]))[0][0]
    assert torch.isfinite(guided).all() and (guided - base).abs().max() > 1e-3
