"""Reference checks against ComfyUI's own code, when a ComfyUI checkout is present (COMFYUI_PATH; its interpreter is
COMFYUI_PYTHON, default COMFYUI_PATH/../venv/bin/python). ComfyUI is only ever imported in that interpreter, by
tests/comfy_reference_worker.py, never in this process.

- Sigmas: every scheduler name with a ComfyUI twin (the friendly names on the normal / Karras / exponential
  schedules, DDIM = ddim_uniform) at 20 and 30 steps (DDIM: 20 and 25, the counts that divide 1000), against
  ``comfy.samplers.calculate_sigmas`` on ``ModelSamplingDiscrete`` (SDXL's schedule). Tolerance: 1e-5 relative
  (both sides store float32; ComfyUI also computes in float32).
- Conditioning: both text encoders at SDXL's real sizes (CLIP-L 768 x 12 layers, bigG 1280 x 32) with the same
  random weights loaded into ours (transformers) and ComfyUI's (``SDXLClipModel``), short and 2-chunk prompts at
  clip skip 0 and 1, and positive/negative of different chunk counts batched by ComfyUI's ``CONDCrossAttn.concat``.
  Tolerance: max |ours - ComfyUI| <= 1e-4 x max |ComfyUI| (float32 on both sides, different attention kernels).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest

COMFYUI_PATH = os.environ.get("COMFYUI_PATH")
pytestmark = [pytest.mark.host, pytest.mark.skipif(not COMFYUI_PATH, reason="set COMFYUI_PATH to compare with ComfyUI")]
torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")

from test_schedulers import SDXL_SCHEDULER, step_sigmas  # noqa: E402

from sdxlkit.schedulers import SCHEDULERS, Mapped, make_scheduler  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "comfy_reference_worker.py"
COMFY_TWIN = {"normal": "normal", "karras": "karras", "exponential": "exponential"}
SIGMA_RTOL = 1e-5
CONDITIONING_RTOL = 1e-4


def run_comfy(request: dict, out: Path) -> Path:
    python = os.environ.get("COMFYUI_PYTHON", str(Path(COMFYUI_PATH).parent / "venv" / "bin" / "python"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "request.json").write_text(json.dumps(request))
    result = subprocess.run([python, str(WORKER), COMFYUI_PATH, str(out / "request.json"), str(out)],
                            capture_output=True, text=True, timeout=1800, cwd=out)
    assert result.returncode == 0, result.stderr[-4000:]
    return out


# ---- sigmas --------------------------------------------------------------------------------------------------------

TWINNED = sorted(n for n, e in SCHEDULERS.items() if isinstance(e, Mapped) and e.sigmas in COMFY_TWIN)


@pytest.fixture(scope="module")
def comfy_sigmas(tmp_path_factory):
    request = {"sigmas": {"schedulers": [*COMFY_TWIN.values(), "ddim_uniform", "beta"], "steps": [20, 25, 30]}}
    out = run_comfy(request, tmp_path_factory.mktemp("comfy-sigmas"))
    return json.loads((out / "sigmas.json").read_text())


@pytest.fixture(scope="module")
def base():
    return json.loads(SDXL_SCHEDULER.read_text(encoding="utf-8"))


def ours(name: str, base: dict, steps: int):
    scheduler = make_scheduler(name, base)
    scheduler.set_timesteps(steps)
    return scheduler


def test_every_twinned_name_is_checked():
    assert len(TWINNED) == 41 and "Euler" in TWINNED and "DPM++ 2M Karras" in TWINNED
    untwinned = {n for n, e in SCHEDULERS.items() if isinstance(e, Mapped) and e.sigmas is not None} - set(TWINNED)
    assert all(n.endswith(" Beta") for n in untwinned)


@pytest.mark.parametrize("steps", [20, 30])
@pytest.mark.parametrize("name", TWINNED)
def test_sigmas_equal_comfyuis(name, steps, base, comfy_sigmas):
    expected = np.array(comfy_sigmas[COMFY_TWIN[SCHEDULERS[name].sigmas]][str(steps)])
    got = step_sigmas(ours(name, base, steps))
    assert got.shape == expected.shape and got[-1] == expected[-1] == 0.0
    np.testing.assert_allclose(got, expected, rtol=SIGMA_RTOL, atol=0)


@pytest.mark.parametrize("steps", [20, 25])
def test_ddim_is_comfyuis_ddim_uniform(steps, base, comfy_sigmas):
    timesteps = ours("DDIM", base, steps).timesteps.numpy()
    betas = np.linspace(base["beta_start"] ** 0.5, base["beta_end"] ** 0.5, base["num_train_timesteps"]) ** 2
    alphas_cumprod = np.cumprod(1 - betas)
    sigma = np.sqrt((1 - alphas_cumprod[timesteps]) / alphas_cumprod[timesteps])
    np.testing.assert_allclose(np.append(sigma, 0.0), comfy_sigmas["ddim_uniform"][str(steps)], rtol=SIGMA_RTOL)


def test_beta_names_are_a1111s_not_comfyuis(base, comfy_sigmas):
    """Documented difference: ComfyUI's beta applies the ppf to timestep indices, A1111's (ours) to sigma."""
    got = step_sigmas(ours("Euler Beta", base, 20))
    comfy = np.array(comfy_sigmas["beta"]["20"])
    assert got[0] == pytest.approx(comfy[0], rel=1e-5) and not np.allclose(got, comfy, rtol=1e-2)


@pytest.mark.parametrize("name", ["IPNDM Uniform", "IPNDM Uniform Karras"])
def test_ipndm_equals_comfyuis_sampler(name, base, tmp_path):
    """Our IPNDM over a stand-in denoiser against comfy.k_diffusion.sampling.sample_ipndm on the same sigmas."""
    from safetensors.torch import load_file, save_file
    from test_schedulers import _run_on_denoiser

    scheduler = make_scheduler(name, base)
    scheduler.set_timesteps(12)
    x0 = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5)) * scheduler.sigmas[0]
    save_file({"x": x0.contiguous()}, str(tmp_path / "start.safetensors"))
    request = {"ipndm": {"start": str(tmp_path / "start.safetensors"), "sigmas": scheduler.sigmas.tolist()}}
    comfy = load_file(str(run_comfy(request, tmp_path / "comfy") / "ipndm.safetensors"))["x"]
    assert torch.allclose(_run_on_denoiser(scheduler, x0), comfy, atol=1e-5)


# ---- conditioning --------------------------------------------------------------------------------------------------

WORDS = ["red", "green", "blue", "cat", "dog", "tree", "house", "sky", "car", "bird", "fish", "moon"]


def words(n: int, start: int = 0) -> str:
    return " ".join(WORDS[(start + i) % len(WORDS)] for i in range(n))


CASES = [
    {"name": "short_skip0", "prompt": "a photo of an astronaut riding a horse on the moon, 8k", "clip_skip": 0},
    {"name": "short_skip1", "prompt": "a photo of an astronaut riding a horse on the moon, 8k", "clip_skip": 1},
    {"name": "two_chunks_skip0", "prompt": words(100), "clip_skip": 0},
    {"name": "two_chunks_skip1", "prompt": words(100, 5), "clip_skip": 1},
    {"name": "two_vs_one", "prompt": words(100), "negative": "blurry, dark, low quality", "clip_skip": 0},
    {"name": "three_vs_two", "prompt": words(160, 2), "negative": words(90, 7), "clip_skip": 1},
]


@pytest.fixture(scope="module")
def real_size_encoders(tmp_path_factory):
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    data = ROOT / "sdxlkit" / "data" / "sdxl_base"
    folder = tmp_path_factory.mktemp("clip-weights")
    encoders, paths = [], []
    for index, (cls, config) in enumerate(((CLIPTextModel, "text_encoder.json"),
                                           (CLIPTextModelWithProjection, "text_encoder_2.json"))):
        torch.manual_seed(100 + index)
        encoder = cls(CLIPTextConfig.from_json_file(data / config)).eval()
        paths.append(str(folder / f"{index}.safetensors"))
        # checkpoint key layout (transformers 5 leaves "text_model." off CLIPTextModel's own state dict)
        state = {(k if k.startswith(("text_model.", "text_projection.")) else "text_model." + k): v.contiguous()
                 for k, v in encoder.state_dict().items()}
        save_file(state, paths[-1])
        encoders.append(encoder)
    return encoders, paths


@pytest.fixture(scope="module")
def comfy_conditioning(tmp_path_factory, real_size_encoders):
    from safetensors.torch import load_file

    request = {"conditioning": {"weights": real_size_encoders[1], "cases": CASES}}
    out = run_comfy(request, tmp_path_factory.mktemp("comfy-conditioning"))
    return load_file(str(out / "conditioning.safetensors"))


def close(got, expected) -> float:
    assert got.shape == expected.shape
    return float((got - expected).abs().max() / expected.abs().max())


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_conditioning_equals_comfyuis(case, real_size_encoders, comfy_conditioning):
    from sdxlkit.loading.tokenizers import load_clip_tokenizers
    from sdxlkit.prompts import encode_prompts

    negative = case.get("negative")
    result = encode_prompts(load_clip_tokenizers(), real_size_encoders[0], case["prompt"], negative,
                            clip_skip=case["clip_skip"], guidance=negative is not None)
    name = case["name"]
    assert close(result.prompt_embeds, comfy_conditioning[f"{name}.cond"]) <= CONDITIONING_RTOL
    assert close(result.pooled_prompt_embeds, comfy_conditioning[f"{name}.pooled"]) <= CONDITIONING_RTOL
    if negative is not None:
        chunks = result.prompt_embeds.shape[1] // 77
        assert chunks == math.lcm(len(case["prompt"].split()) // 76 + 1, len(negative.split()) // 76 + 1)
        assert close(result.negative_prompt_embeds, comfy_conditioning[f"{name}.negative"]) <= CONDITIONING_RTOL
        assert close(result.negative_pooled_prompt_embeds,
                     comfy_conditioning[f"{name}.negative_pooled"]) <= CONDITIONING_RTOL


# ---- LyCORIS weight patches ----------------------------------------------------------------------------------------

def test_lycoris_patches_equal_comfyuis(tmp_path, adapter_models):
    """A set of two LyCORIS files of every type we apply (LoCon with a mid weight, LoHa plain and Tucker, LoKr, full
    and norm differences, DoRA on both axes), on the UNet and both text encoders, against comfy.lora's patching.
    LoKr in Tucker form is left out: ComfyUI 0.3.64's torch.kron fails on it (see the README)."""
    from safetensors.torch import load_file, save_file
    from test_lycoris import CONV, CROSS, LINEAR, NORM, TE1, TE2, kohya_name, layer_of, random_tensors, write_layers

    from sdxlkit.loading.loader import ModelSpec, load_sdxl
    from sdxlkit.lora import LoraFileCache, apply_loras

    model = load_sdxl(ModelSpec(adapter_models.checkpoint))
    conv2 = ("unet", "down_blocks.1.resnets.1.conv2")
    r = random_tensors(9)
    first = write_layers(tmp_path, model, "every_type", {
        CONV: {"lora_down.weight": r(4, 64, 1, 1), "lora_mid.weight": r(4, 4, 3, 3), "lora_up.weight": r(64, 4, 1, 1),
               "alpha": torch.tensor(8.0)},
        CROSS: {"hada_w1_a": r(64, 4), "hada_w1_b": r(4, 96), "hada_w2_a": r(64, 4), "hada_w2_b": r(4, 96),
                "alpha": torch.tensor(2.0), "dora_scale": 1 + r(1, 96)},
        LINEAR: {"lokr_w1": r(8, 8), "lokr_w2_a": r(8, 2), "lokr_w2_b": r(2, 8), "alpha": torch.tensor(4.0),
                 "dora_scale": 1 + r(64, 1)},
        NORM: {"w_norm": r(64), "b_norm": r(64)},
        TE1: {"lokr_w1_a": r(4, 2), "lokr_w1_b": r(2, 4), "lokr_w2": r(8, 8), "alpha": torch.tensor(1.0)},
        TE2: {"diff": r(256, 64), "diff_b": r(256)}})
    second = write_layers(tmp_path, model, "second", {
        LINEAR: {"lora_down.weight": r(2, 64), "lora_up.weight": r(64, 2), "dora_scale": 1 + r(1, 64)},
        CONV: {"hada_t1": r(4, 4, 3, 3), "hada_w1_a": r(4, 64), "hada_w1_b": r(4, 64), "hada_t2": r(4, 4, 3, 3),
               "hada_w2_a": r(4, 64), "hada_w2_b": r(4, 64), "alpha": torch.tensor(1.0)},
        conv2: {"diff": r(64, 64, 3, 3), "diff_b": r(64)},
        TE1: {"lora_down.weight": r(2, 32), "lora_up.weight": r(32, 2), "alpha": torch.tensor(1.0)}})
    targets = [CONV, CROSS, LINEAR, NORM, TE1, TE2, conv2]
    base = {f"{kohya_name(model, *t)}.{param}": getattr(layer_of(model, *t), param).detach().clone().contiguous()
            for t in targets for param in ("weight", "bias") if getattr(layer_of(model, *t), param) is not None}
    save_file(base, str(tmp_path / "base.safetensors"))
    loras = [(first, 0.7), (second, -1.2)]
    request = {"lora": {"base": str(tmp_path / "base.safetensors"), "set": [[str(p), w] for p, w in loras]}}
    comfy = load_file(str(run_comfy(request, tmp_path / "comfy") / "lora.safetensors"))

    apply_loras(model, loras, files=LoraFileCache())
    ours = {f"{kohya_name(model, *t)}.{param}": getattr(layer_of(model, *t), param)
            for t in targets for param in ("weight", "bias") if getattr(layer_of(model, *t), param) is not None}
    changed = {key for key in ours if not torch.equal(ours[key], base[key])}
    assert changed == set(comfy)  # the same parameters change (the biases without a bias patch do not)
    for key, expected in comfy.items():
        assert torch.allclose(ours[key], expected, rtol=1e-5, atol=1e-6), key
