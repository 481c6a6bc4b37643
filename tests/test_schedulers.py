"""The scheduler table: it covers the format's enum, every accepted name samples, the flags take effect, refusals say why.

Sampling uses an exact epsilon model for a point-mass data distribution (every image equals the tensor ``TARGET``):
for such data the probability-flow ODE is solved exactly by any consistent solver and the ancestral/SDE samplers also
land on the target, so a scheduler that is wired to SDXL's schedule correctly must end near ``TARGET``. A scheduler
with the wrong timesteps or noise schedule (IPNDM, EDM, flow matching) ends far away.
"""

from __future__ import annotations

import inspect
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sdxlkit.errors import UnsupportedScheduler
from sdxlkit.schedulers import (
    SCHEDULER_NAMES,
    SCHEDULERS,
    Mapped,
    Refused,
    check_scheduler,
    make_scheduler,
    scheduler_class,
    scheduler_table_markdown,
)

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "sdxlkit" / "spec" / "imageInference.schema.json"
SDXL_SCHEDULER = ROOT / "sdxlkit" / "data" / "sdxl_base" / "scheduler.json"
SIGMA_FLAGS = ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas")

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")
diffusers = pytest.importorskip("diffusers")
diffusers.utils.logging.set_verbosity_error()

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # numpy 2 / torch __array__ notices inside diffusers
    pytest.mark.filterwarnings("ignore:Should have tb<=t1:UserWarning"),  # torchsde float rounding at sigma_max
]

ACCEPTED = [n for n in SCHEDULER_NAMES if isinstance(SCHEDULERS[n], Mapped)]
REFUSED = [n for n in SCHEDULER_NAMES if isinstance(SCHEDULERS[n], Refused)]


def schema_enum() -> list[str]:
    return json.loads(SCHEMA.read_text(encoding="utf-8"))["properties"]["scheduler"]["enum"]


@pytest.fixture(scope="module")
def base() -> dict:
    """SDXL base's scheduler config as shipped with the package."""
    config = json.loads(SDXL_SCHEDULER.read_text(encoding="utf-8"))
    assert {k: config[k] for k in ("_class_name", "beta_start", "beta_end", "beta_schedule", "num_train_timesteps",
                                   "steps_offset", "timestep_spacing", "prediction_type")} == {
        "_class_name": "EulerDiscreteScheduler", "beta_start": 0.00085, "beta_end": 0.012,
        "beta_schedule": "scaled_linear", "num_train_timesteps": 1000, "steps_offset": 1,
        "timestep_spacing": "leading", "prediction_type": "epsilon"}
    return config


@pytest.fixture(scope="module")
def training_log_sigmas(base) -> np.ndarray:
    betas = np.linspace(base["beta_start"] ** 0.5, base["beta_end"] ** 0.5, base["num_train_timesteps"],
                        dtype=np.float64) ** 2
    alphas_cumprod = np.cumprod(1.0 - betas)
    return np.log(np.sqrt((1.0 - alphas_cumprod) / alphas_cumprod))


TARGET = torch.linspace(-0.8, 0.8, 4 * 8 * 8).reshape(1, 4, 8, 8)


def sample(scheduler, log_sigmas: np.ndarray, steps: int = 6, noise_seed: int = 1):
    """A full denoising loop as diffusers pipelines run it, over an exact epsilon model for point-mass data."""

    def model(x_in: torch.Tensor, t) -> torch.Tensor:
        # x_in is in DDPM form, sqrt(a) * x0 + sqrt(1 - a) * eps, with a = alphas_cumprod at (possibly fractional) t
        sigma2 = math.exp(2.0 * np.interp(float(t), np.arange(len(log_sigmas)), log_sigmas))
        a = 1.0 / (1.0 + sigma2)
        return (x_in - math.sqrt(a) * TARGET) / math.sqrt(1.0 - a)

    scheduler.set_timesteps(steps)
    accepted = inspect.signature(scheduler.step).parameters
    extra = {}
    if "eta" in accepted:  # StableDiffusionXLPipeline.prepare_extra_step_kwargs
        extra["eta"] = 0.0
    if "generator" in accepted:
        extra["generator"] = torch.Generator().manual_seed(0)
    x = torch.randn(TARGET.shape, generator=torch.Generator().manual_seed(noise_seed)) * scheduler.init_noise_sigma
    evaluations = 0
    for t in scheduler.timesteps:
        x_in = scheduler.scale_model_input(x, t)
        x = scheduler.step(model(x_in, t), t, x, **extra).prev_sample
        evaluations += 1
    assert evaluations == len(scheduler.timesteps)
    return x


def karras(sigma_max: float, sigma_min: float, n: int, rho: float = 7.0) -> np.ndarray:
    ramp = np.linspace(0, 1, n)
    return (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho


def built(name: str, base: dict, steps: int = 6):
    scheduler = make_scheduler(name, base)
    scheduler.set_timesteps(steps)
    return scheduler


# ---- (a) coverage -------------------------------------------------------------------------------------------------

def test_table_covers_exactly_the_schema_enum():
    enum = schema_enum()
    assert len(enum) == 75 and len(set(enum)) == 75
    assert SCHEDULER_NAMES == tuple(enum)
    assert set(SCHEDULERS) == set(enum)
    assert len(ACCEPTED) + len(REFUSED) == 75


def test_module_imports_without_torch_or_diffusers():
    code = ("import sys; sys.modules['torch'] = None; sys.modules['diffusers'] = None\n"
            "import sdxlkit.schedulers as s\n"
            "assert len(s.SCHEDULER_NAMES) == 75 and s.scheduler_table_markdown()\n"
            "s.check_scheduler('Euler')\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_every_setting_is_a_real_constructor_parameter():
    """from_config silently drops unknown keys, so a flag the class lacks would be ignored, not applied."""
    for name in ACCEPTED:
        entry = SCHEDULERS[name]
        if entry.cls is None:
            continue
        cls = scheduler_class(entry.cls)
        params = inspect.signature(cls.__init__).parameters
        unknown = set(entry.overrides) - set(params)
        assert not unknown, f"{name}: {entry.cls} has no parameter(s) {sorted(unknown)}"


# ---- (b) every name samples or is refused --------------------------------------------------------------------------

@pytest.mark.parametrize("name", SCHEDULER_NAMES)
def test_every_name_samples_or_is_refused(name, base, training_log_sigmas):
    entry = SCHEDULERS[name]
    if isinstance(entry, Refused):
        with pytest.raises(UnsupportedScheduler, match=re.escape(repr(name))) as info:
            make_scheduler(name, base)
        assert entry.reason in str(info.value) and info.value.name == name
        return
    scheduler = make_scheduler(name, base, seed=0)
    assert type(scheduler).__name__ == (entry.cls or base["_class_name"])
    result = sample(scheduler, training_log_sigmas)
    assert torch.isfinite(result).all()
    # Exact solvers hit the target to ~1e-6; DDIM/PNDM/DEIS/TCD stop at SDXL's sigma_min (set_alpha_to_one=False),
    # leaving about 0.03 x the unit noise. A scheduler on the wrong schedule is off by orders of magnitude.
    assert (result - TARGET).abs().max().item() < 0.15, name


# ---- (c) the flags take effect ------------------------------------------------------------------------------------

# Reference formulas, written from their sources (not from this package):
# - k-diffusion DiscreteSchedule.get_sigmas (A1111's automatic / "Uniform" schedule) = ComfyUI normal_scheduler:
#   t = linspace(T - 1, 0, n); log sigma interpolated between floor(t) and ceil(t) (t_to_sigma); append 0.
# - k-diffusion get_sigmas_karras(n, sigma_min, sigma_max, rho=7) and get_sigmas_exponential; append 0.
# - A1111 sd_schedulers.beta_scheduler: sigma_min + beta.ppf(1 - linspace(0, 1, n), 0.6, 0.6) * (max - min); append 0.

def ref_normal(log_sigmas: np.ndarray, n: int) -> np.ndarray:
    t = np.linspace(len(log_sigmas) - 1, 0, n)
    low, high = np.floor(t).astype(int), np.ceil(t).astype(int)
    w = t - low
    return np.exp((1 - w) * log_sigmas[low] + w * log_sigmas[high])


def ref_exponential(sigma_max: float, sigma_min: float, n: int) -> np.ndarray:
    return np.exp(np.linspace(math.log(sigma_max), math.log(sigma_min), n))


def ref_a1111_beta(sigma_max: float, sigma_min: float, n: int) -> np.ndarray:
    from scipy import stats

    return np.array([sigma_min + stats.beta.ppf(x, 0.6, 0.6) * (sigma_max - sigma_min)
                     for x in 1 - np.linspace(0, 1, n)])


def reference_sigmas(name: str, log_sigmas: np.ndarray, n: int) -> np.ndarray:
    """The schedule a friendly name's words ask for (no word / "Uniform": A1111's automatic one), with the 0."""
    sigma_max, sigma_min = math.exp(log_sigmas[-1]), math.exp(log_sigmas[0])
    if name.endswith(" Karras"):
        out = karras(sigma_max, sigma_min, n)
    elif name.endswith(" Exponential"):
        out = ref_exponential(sigma_max, sigma_min, n)
    elif name.endswith(" Beta"):
        out = ref_a1111_beta(sigma_max, sigma_min, n)
    else:
        out = ref_normal(log_sigmas, n)
    return np.append(out, 0.0)


FRIENDLY = [n for n in ACCEPTED if SCHEDULERS[n].sigmas is not None]
SECOND_ORDER = ("HeunDiscreteScheduler", "DPMSolverSDEScheduler")  # sigmas interleaved with the midpoints


def step_sigmas(scheduler) -> np.ndarray:
    sigmas = scheduler.sigmas.numpy().astype(np.float64)
    if type(scheduler).__name__ in SECOND_ORDER:
        assert np.array_equal(sigmas[1:-1:2], sigmas[2:-1:2])
        sigmas = np.concatenate([sigmas[:1], sigmas[1:-1:2], sigmas[-1:]])
    return sigmas


def test_friendly_names_are_every_a1111_style_name():
    class_names = {n for n in ACCEPTED if n.endswith("Scheduler")}
    assert set(FRIENDLY) == set(ACCEPTED) - class_names - {"Default", "DDIM", "LCM"}
    for name in ("Euler", "Euler a", "LMS", "Heun", "DPM++ 2M", "UniPC", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 3M",
                 "DPM++ 2M Uniform", "UniPC 3M Uniform", "DPM++ 3M SDE Uniform"):
        assert SCHEDULERS[name].sigmas == "normal", name


@pytest.mark.parametrize("steps", [20, 30])
@pytest.mark.parametrize("name", FRIENDLY)
def test_friendly_sigmas_follow_the_reference_formula(name, steps, base, training_log_sigmas):
    scheduler = built(name, base, steps)
    expected = reference_sigmas(name, training_log_sigmas, steps)
    got = step_sigmas(scheduler)
    assert got.shape == expected.shape and got[-1] == 0.0
    np.testing.assert_allclose(got[:-1], expected[:-1], rtol=2e-7)  # float32 storage of float64 values
    timesteps = scheduler.timesteps.numpy().astype(np.float64)
    first_order = timesteps
    if type(scheduler).__name__ in SECOND_ORDER:  # [t0, mid, t1, mid, t2, ...]
        first_order = np.concatenate([timesteps[:1], timesteps[2::2]])
    fractional = np.interp(np.log(expected[:-1]), training_log_sigmas, np.arange(len(training_log_sigmas)))
    if type(scheduler).__name__ in ("DPMSolverMultistepScheduler", "UniPCMultistepScheduler", "IPNDMSigmaScheduler"):
        np.testing.assert_array_equal(first_order, np.round(fractional))  # nearest training timestep (ComfyUI)
    else:
        np.testing.assert_allclose(first_order, fractional, atol=2e-3)  # fractional (k-diffusion / A1111)


@pytest.mark.parametrize("steps", [20, 30])
@pytest.mark.parametrize("name", ["Default", "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler",
                                  "LMSDiscreteScheduler", "HeunDiscreteScheduler"])
def test_class_names_follow_the_configs_leading_spacing(name, steps, base, training_log_sigmas):
    """diffusers' "leading" spacing with SDXL's steps_offset 1: t = (0, 1, ..., n - 1) * (1000 // n) + 1, reversed,
    at the training sigmas; the start sqrt(1 + sigma_0²)."""
    scheduler = built(name, base, steps)
    t = (np.arange(steps) * (1000 // steps) + 1)[::-1]
    expected = np.append(np.exp(training_log_sigmas[t]), 0.0)
    np.testing.assert_allclose(step_sigmas(scheduler), expected, rtol=2e-5)  # diffusers' betas are float32
    assert float(scheduler.init_noise_sigma) == pytest.approx(math.sqrt(1 + expected[0] ** 2), rel=2e-5)


def test_issue_anchor_values(base):
    """The values quoted for A1111's Euler at 20 steps: 14.61, 10.75, ..., 0.0292, 0 (not diffusers' 11.03 start)."""
    sigmas = built("Euler", base, 20).sigmas.numpy()
    assert sigmas[0] == pytest.approx(14.6146, rel=1e-4) and sigmas[1] == pytest.approx(10.75, rel=1e-3)
    assert sigmas[-2] == pytest.approx(0.0292, rel=1e-2) and sigmas[-1] == 0.0


def test_initial_noise_is_sqrt_one_plus_sigma0_squared(base, training_log_sigmas):
    """ComfyUI's rule at full denoise: k-space samplers scale unit noise by sqrt(1 + sigma_0²); the multistep solvers
    start from unit noise in their variance-preserving form, which is the same point."""
    sigma_max = math.exp(training_log_sigmas[-1])
    for name in FRIENDLY:
        scheduler = built(name, base, 20)
        expected = math.sqrt(1 + sigma_max ** 2) if scheduler.init_noise_sigma != 1.0 else 1.0
        assert float(scheduler.init_noise_sigma) == pytest.approx(expected, rel=1e-6), name
        if expected == 1.0:
            assert type(scheduler).__name__ in ("DPMSolverMultistepScheduler", "UniPCMultistepScheduler"), name


def test_ddim_is_a1111s_uniform_discretisation(base):
    for steps in (20, 25):  # A1111/ComfyUI ddim_uniform: range(0, 1000, 1000 // steps) + 1, when steps divides 1000
        timesteps = built("DDIM", base, steps).timesteps.numpy()
        np.testing.assert_array_equal(timesteps, (np.arange(0, 1000, 1000 // steps) + 1)[::-1])
    tuned = dict(base) | {"timestep_spacing": "trailing", "steps_offset": 0}
    assert built("DDIM", tuned, 20).timesteps[0].item() == 951


def test_solver_settings(base):
    def cfg(name):
        return make_scheduler(name, base).config

    assert (cfg("DPM++ 2M").algorithm_type, cfg("DPM++ 2M").solver_order) == ("dpmsolver++", 2)
    assert (cfg("DPM++ 2M SDE").algorithm_type, cfg("DPM++ 2M SDE").solver_order) == ("sde-dpmsolver++", 2)
    assert cfg("DPM++ 2M SDE Karras").algorithm_type == "sde-dpmsolver++"
    assert (cfg("DPM++ 3M").algorithm_type, cfg("DPM++ 3M").solver_order) == ("dpmsolver++", 3)
    sde3 = cfg("DPM++ 3M SDE Uniform")
    assert (sde3.algorithm_type, sde3.solver_order) == ("sde-dpmsolver++", 3)
    assert dict(cfg("DPM++")) == dict(cfg("DPM++ 2M"))  # plain DPM++ is diffusers' default DPM-Solver++ (2M)
    assert cfg("UniPC 3M").solver_order == 3 and cfg("UniPC 2M").solver_order == 2 and cfg("UniPC").solver_order == 2
    assert cfg("UniPC 3M Karras").solver_order == 3
    assert type(make_scheduler("DPM++ SDE", base)).__name__ == "DPMSolverSDEScheduler"
    assert type(make_scheduler("Euler a", base)).__name__ == "EulerAncestralDiscreteScheduler"
    assert type(make_scheduler("LCM", base)).__name__ == "LCMScheduler"
    assert type(make_scheduler("Heun Karras", base)).__name__ == "HeunDiscreteScheduler"


def test_only_the_implied_settings_change(base):
    for name in ACCEPTED:
        config = make_scheduler(name, base).config
        for key in ("beta_start", "beta_end", "beta_schedule", "num_train_timesteps", "prediction_type"):
            assert config[key] == base[key], (name, key)


def test_class_names_keep_the_checkpoint_config_but_friendly_names_pin_their_meaning(base, training_log_sigmas):
    tuned = dict(base) | {"_class_name": "DPMSolverMultistepScheduler", "algorithm_type": "sde-dpmsolver++",
                          "solver_order": 3, "use_karras_sigmas": False, "use_exponential_sigmas": True,
                          "use_lu_lambdas": False, "timestep_spacing": "trailing"}
    as_is = make_scheduler("DPMSolverMultistepScheduler", tuned).config
    assert (as_is.algorithm_type, as_is.solver_order, as_is.use_exponential_sigmas) == ("sde-dpmsolver++", 3, True)
    pinned = make_scheduler("DPM++ 2M", tuned).config
    assert (pinned.algorithm_type, pinned.solver_order) == ("dpmsolver++", 2)
    for name in ("Euler", "DPM++ 2M", "Euler Karras", "UniPC Uniform Beta", "Euler a"):
        np.testing.assert_allclose(step_sigmas(built(name, tuned, 20))[:-1],
                                   reference_sigmas(name, training_log_sigmas, 20)[:-1], rtol=2e-7, err_msg=name)


def test_each_call_returns_a_fresh_scheduler(base):
    first, second = make_scheduler("DPM++ 2M", base), make_scheduler("DPM++ 2M", base)
    assert first is not second
    first.set_timesteps(6)
    assert second.num_inference_steps is None


def reference_ipndm(denoise, x, sigmas, max_order=4):
    """k-diffusion's sample_ipndm (ComfyUI's "ipndm" sampler), as written there."""
    buffer_model = []
    x_next = x
    for i in range(len(sigmas) - 1):
        t_cur, t_next = sigmas[i], sigmas[i + 1]
        x_cur = x_next
        denoised = denoise(x_cur, t_cur)
        d_cur = (x_cur - denoised) / t_cur
        order = min(max_order, i + 1)
        if t_next == 0:
            x_next = denoised
        elif order == 1:
            x_next = x_cur + (t_next - t_cur) * d_cur
        elif order == 2:
            x_next = x_cur + (t_next - t_cur) * (3 * d_cur - buffer_model[-1]) / 2
        elif order == 3:
            x_next = x_cur + (t_next - t_cur) * (23 * d_cur - 16 * buffer_model[-1] + 5 * buffer_model[-2]) / 12
        elif order == 4:
            x_next = x_cur + (t_next - t_cur) * (55 * d_cur - 59 * buffer_model[-1] + 37 * buffer_model[-2]
                                                 - 9 * buffer_model[-3]) / 24
        if len(buffer_model) == max_order - 1:
            for k in range(max_order - 2):
                buffer_model[k] = buffer_model[k + 1]
            buffer_model[-1] = d_cur
        else:
            buffer_model.append(d_cur)
    return x_next


def _denoise(x, sigma):
    """A smooth non-linear stand-in for a model's denoised prediction: multistep weights matter for it."""
    return torch.tanh(x) * 0.8 / (1 + 0.05 * sigma)


def _run_on_denoiser(scheduler, x):
    for i, t in enumerate(scheduler.timesteps):
        sigma = scheduler.sigmas[i]
        x = scheduler.step((x - _denoise(x, sigma)) / sigma, t, x).prev_sample  # the epsilon of that prediction
    return x


@pytest.mark.parametrize("name", ["IPNDM Uniform", "IPNDM Uniform Karras"])
def test_ipndm_is_k_diffusions_sample_ipndm(name, base, training_log_sigmas):
    scheduler = built(name, base, 8)
    x0 = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3)) * scheduler.sigmas[0]
    expected = reference_ipndm(_denoise, x0, scheduler.sigmas)
    assert torch.allclose(_run_on_denoiser(scheduler, x0), expected, atol=1e-5)
    scheduler.set_timesteps(8)  # a new pass starts with an empty history
    assert torch.allclose(_run_on_denoiser(scheduler, x0), expected, atol=1e-5)
    euler = built(name.replace("IPNDM Uniform", "Euler"), base, 8)
    assert (_run_on_denoiser(euler, x0) - expected).abs().max() > 1e-3  # the multistep update is not Euler's
    fractional = np.interp(np.log(scheduler.sigmas[:-1].numpy().astype(np.float64)), training_log_sigmas,
                           np.arange(len(training_log_sigmas)))
    np.testing.assert_array_equal(scheduler.timesteps.numpy(), np.round(fractional))  # nearest training timestep


def test_dpmpp_sde_noise_follows_the_seed(base, training_log_sigmas):
    assert make_scheduler("DPM++ SDE Karras", base, seed=7).config.noise_sampler_seed == 7
    assert make_scheduler("DPM++ 2M", base, seed=7).config.get("noise_sampler_seed") is None

    def run(seed):  # an imperfect model, so the Brownian noise shows in the result
        scheduler = make_scheduler("DPM++ SDE", base, seed=seed)
        scheduler.set_timesteps(4)
        x = torch.randn(TARGET.shape, generator=torch.Generator().manual_seed(1)) * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            x = scheduler.step(0.5 * scheduler.scale_model_input(x, t), t, x).prev_sample
        return x

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))


# ---- (d) refusals -------------------------------------------------------------------------------------------------

def test_expected_refusals():
    assert set(REFUSED) == {"DPMSolverMultistepInverse", "EDMDPMSolverMultistepScheduler", "EDMEulerScheduler",
                            "FlowMatchEulerDiscreteScheduler", "IPNDMScheduler"}
    # the premise of the IPNDM refusal: no beta schedule, spacing or sigma options to bind it to SDXL's schedule
    assert set(inspect.signature(diffusers.IPNDMScheduler.__init__).parameters) == {
        "self", "num_train_timesteps", "trained_betas"}


@pytest.mark.parametrize("name", REFUSED)
def test_refusal_message_names_the_scheduler(name, base):
    for call in (lambda: check_scheduler(name), lambda: make_scheduler(name, base)):
        with pytest.raises(UnsupportedScheduler) as info:
            call()
        message = str(info.value)
        assert repr(name) in message and SCHEDULERS[name].reason in message
        assert info.value.name == name


@pytest.mark.parametrize("name", ["Euler A", "dpm++ 2m", "", "DPM++ 2S a", "DPMSolverMultistepInverseScheduler"])
def test_unknown_names_are_refused_with_the_name(name, base):
    with pytest.raises(UnsupportedScheduler, match=re.escape(repr(name))):
        make_scheduler(name, base)
    with pytest.raises(UnsupportedScheduler, match="not one of the format's scheduler names"):
        check_scheduler(name)


def test_markdown_table_comes_from_the_table():
    text = scheduler_table_markdown()
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| name ")]
    assert [row.split(" | ")[0][2:] for row in rows] == list(SCHEDULER_NAMES)
    for row, name in zip(rows, SCHEDULER_NAMES):
        entry = SCHEDULERS[name]
        if isinstance(entry, Refused):
            assert "| refused |" in row and entry.reason in row
        else:
            assert f"| {entry.cls or 'the checkpoint' + chr(39) + 's own'} |" in row
    assert "| Karras, rho 7 (ComfyUI karras) |" in rows[SCHEDULER_NAMES.index("Euler Karras")]
    assert "| normal (k-diffusion get_sigmas; ComfyUI normal) |" in rows[SCHEDULER_NAMES.index("DPM++ 2M")]
    assert "`algorithm_type='sde-dpmsolver++'`" in rows[SCHEDULER_NAMES.index("DPM++ 2M SDE")]
    assert f"{len(ACCEPTED)} of the format's 75" in text


@pytest.fixture(scope="module")
def tiny_model(tiny_checkpoint):
    from sdxlkit.loading.loader import ModelSpec, load_sdxl

    return load_sdxl(ModelSpec(tiny_checkpoint))


@pytest.mark.parametrize("name", [n for n in SCHEDULER_NAMES if not isinstance(SCHEDULERS[n], Refused)])
def test_every_accepted_name_runs_a_whole_generation(name, tiny_model):
    import torch

    from sdxlkit.generate import Generation, generate

    run = Generation(prompt="a small house", negative_prompt=None, width=64, height=64, steps=4, cfg=4.0, scheduler=name, seed=1)
    ((first, _),) = generate(tiny_model, run)
    ((again, _),) = generate(tiny_model, run)
    assert first.shape == (1, 3, 64, 64) and torch.isfinite(first).all()
    assert torch.equal(first, again)  # stochastic samplers too: their noise follows the seed


def test_readme_carries_the_generated_table():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert scheduler_table_markdown() in readme
