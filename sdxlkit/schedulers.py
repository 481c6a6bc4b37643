"""The 75 scheduler names of the imageInference format, each mapped to one scheduler class or refused.

``SCHEDULERS`` is the single source of truth: ``make_scheduler`` builds from it, ``check_scheduler`` validates with
it, and the README's table is generated from it (``scheduler_table_markdown``). A name whose meaning cannot be
reproduced faithfully on an epsilon-prediction SDXL model with diffusers is refused with its reason
(``UnsupportedScheduler``), never replaced by another scheduler.

How the names read:

* A diffusers class name ("DDPMScheduler", "DPMSolverMultistepScheduler", ...) is that class built on the
  checkpoint's scheduler config exactly as it is, with no setting changed, so its timesteps follow the config's
  ``timestep_spacing`` (SDXL: "leading"). "Default" rebuilds the checkpoint's own class unchanged.
* A friendly name ("Euler", "DPM++ 2M SDE Karras", "UniPC 3M Uniform", ...) is A1111's sampler of that name, with
  the sigma schedule its words name, computed by :mod:`sdxlkit.sigma_schedules` over the model's full sigma range
  (whatever the checkpoint's spacing or sigma flags say):
  - no schedule word, or "Uniform": A1111's automatic schedule for these samplers (its "Uniform" schedule type),
    k-diffusion's ``get_sigmas`` = ComfyUI's "normal" scheduler;
  - "Karras" / "Exponential": k-diffusion's Karras (rho 7) / exponential schedule = ComfyUI "karras" /
    "exponential"; "Uniform Karras" etc. are the same as "Karras" etc. (a named schedule replaces the uniform one);
  - "Beta": A1111's "Beta" schedule type (linear in sigma; ComfyUI's "beta" differs, see sigma_schedules).
  "DDIM" is A1111's DDIM: timesteps 1, 1 + 1000 // steps, ... (``leading`` spacing, ``steps_offset=1``), the same
  as diffusers' DDIM on SDXL's config and ComfyUI's "ddim_uniform" scheduler.
* "2M" / "3M" = multistep solver order 2 / 3; "SDE" = the stochastic variant ("sde-dpmsolver++" for DPM-Solver++
  multistep; "DPM++ SDE" itself is A1111's DPM++ SDE, diffusers' DPMSolverSDEScheduler with a Brownian-tree noise
  sampler from torchsde).
* "DPM++" alone is DPM-Solver++ as diffusers implements it by default: DPMSolverMultistepScheduler with
  ``algorithm_type="dpmsolver++"``, ``solver_order=2`` (the same sampler as "DPM++ 2M"). Reasons: the format's
  DPM++ family has exactly the shape of its UniPC family ("UniPC" / "UniPC 2M" / "UniPC 3M" / "UniPC Karras" /
  "UniPC Uniform ..." next to "DPM++" / "DPM++ 2M" / "DPM++ 3M" / "DPM++ Karras" / "DPM++ Uniform ..."), where the
  bare name is the multistep class with its default order. Single-step DPM-Solver++ stays available under its
  class name "DPMSolverSinglestepScheduler".
* "IPNDM Uniform ..." is ComfyUI's "ipndm" sampler (A1111 has none), run by sdxlkit's own class
  (:mod:`sdxlkit.ipndm_scheduler`); the class name "IPNDMScheduler" means diffusers' class, which cannot sample SDXL.

Timestep given to the UNet for a pinned sigma: diffusers' rule per class, kept: Euler, Euler a, Heun, LMS and
DPM++ SDE pass the fractional timestep (log-sigma interpolation, as k-diffusion / A1111); DPM++ multistep, UniPC
and IPNDM round it to the nearest training timestep (as ComfyUI does for every sampler).

Initial noise (txt2img): ``noise * sqrt(1 + sigma_0²)``, ComfyUI's rule at full denoise (SDXL's "SGM noise
multiplier"; A1111 by default multiplies by ``sigma_0``, 0.23 % less at SDXL's sigma_max 14.61). The multistep
solvers (DPM++, UniPC, DDIM) work in the variance-preserving form where this is their unit-variance start; the
k-diffusion ports (Euler, Euler a, Heun, LMS, DPM++ SDE) get it from diffusers under ``timestep_spacing="leading"``
(under "linspace"/"trailing" diffusers uses ``sigma_0``), which is all the spacing changes once the sigmas are
pinned.

Stochastic samplers draw their noise from the pipeline's ``generator``, except DPMSolverSDEScheduler, whose
Brownian tree is seeded by its ``noise_sampler_seed`` config: pass ``seed=`` to ``make_scheduler`` so that "DPM++
SDE ..." images repeat for a given seed (without it diffusers seeds the tree from torch's global RNG).
"""

from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .errors import MissingDependency, UnsupportedScheduler

SCHEMA = Path(__file__).resolve().parent / "spec" / "imageInference.schema.json"


@dataclass(frozen=True)
class Mapped:
    """A diffusers scheduler class (None: the checkpoint's own), the config settings the name implies, and the
    sigma schedule it pins (a key of ``sigma_schedules.SCHEDULES``; None: the class computes its own)."""

    cls: str | None
    overrides: dict = field(default_factory=dict)
    note: str = ""
    sigmas: str | None = None


@dataclass(frozen=True)
class Refused:
    """A name with no faithful diffusers equivalent for SDXL, and why."""

    reason: str


# ---- building blocks for the table --------------------------------------------------------------------------------

# The pinned schedule is installed through the class's Karras hook (see pin_sigma_schedule), so that flag is on and
# the other schedule flags are off; "leading" only selects the sqrt(1 + sigma_0²) initial noise (module docstring).
_PINNED = {"use_karras_sigmas": True, "use_exponential_sigmas": False, "use_beta_sigmas": False}
_K_SPACE = {"timestep_spacing": "leading"}


def _dpmpp(order: int, sde: bool = False) -> dict:
    """DPM-Solver++ multistep. ``use_lu_lambdas`` is another sigma schedule of this class, so it is pinned off too."""
    return {"algorithm_type": "sde-dpmsolver++" if sde else "dpmsolver++", "solver_order": order,
            "use_lu_lambdas": False}


DPM = "DPMSolverMultistepScheduler"
SDE = "DPMSolverSDEScheduler"
UNIPC = "UniPCMultistepScheduler"
EULER = "EulerDiscreteScheduler"
EULER_A = "EulerAncestralDiscreteScheduler"
HEUN = "HeunDiscreteScheduler"
LMS = "LMSDiscreteScheduler"
IPNDM = "IPNDMSigmaScheduler"  # sdxlkit's own (ipndm_scheduler.py): diffusers' IPNDMScheduler cannot take SDXL's sigmas
OWN_CLASSES = {IPNDM: "sdxlkit.ipndm_scheduler"}  # class name -> module, for the classes diffusers lacks
K_SPACE_CLASSES = (EULER, EULER_A, HEUN, LMS, SDE, IPNDM)

_AS_IS = "the class on the checkpoint's scheduler config, unchanged"
_DPMPP_NOTE = "DPM-Solver++ multistep, diffusers' default form (same sampler as DPM++ 2M); see module docstring"
_SDE_NOTE = "A1111's DPM++ SDE (k-diffusion port, Brownian-tree noise via torchsde; seeded by make_scheduler(seed=))"
_LCM_NOTE = "needs an LCM-distilled model or LCM-LoRA; a plain SDXL checkpoint gives poor images with it"
_TCD_NOTE = "needs a TCD-distilled model or TCD-LoRA; a plain SDXL checkpoint gives poor images with it"

_IPNDM = ("diffusers' IPNDMScheduler ignores the checkpoint's noise schedule: it accepts only num_train_timesteps and "
          "trained_betas, builds its own sin^2 (v-diffusion) schedule and passes fractional timesteps in [0, 1) to the "
          "model, while SDXL's epsilon-prediction UNet expects timesteps 0-999 on its scaled-linear beta schedule; "
          "the \"IPNDM Uniform ...\" names run ComfyUI's ipndm instead")
_IPNDM_NOTE = ("ComfyUI's ipndm (k-diffusion sample_ipndm: Adams-Bashforth up to order 4 on Euler's derivative; "
               "nearest training timestep)")
_EDM = ("{cls} implements the EDM parameterisation (continuous Karras sigmas 0.002-80, c_noise = ln(sigma)/4 passed as "
        "the timestep) for EDM-trained models such as Playground v2.5; SDXL's epsilon-prediction UNet expects discrete "
        "timesteps 0-999 on its scaled-linear beta schedule")


def _name_schedule(name: str) -> str:
    """The sigma schedule a friendly name's words say (see the module docstring)."""
    for word in ("Karras", "Exponential", "Beta"):
        if name.endswith(" " + word):
            return word.lower()
    return "normal"


def _friendly(table: dict[str, tuple]) -> dict[str, Mapped]:
    """Friendly names from ``name: (class, overrides[, note])``; the name's words fix the schedule."""
    return {name: Mapped(cls, overrides | (_K_SPACE if cls in K_SPACE_CLASSES else {}), "".join(note),
                         _name_schedule(name))
            for name, (cls, overrides, *note) in table.items()}


_FRIENDLY = {
    "DPM++": (DPM, _dpmpp(2), _DPMPP_NOTE),
    "DPM++ 2M": (DPM, _dpmpp(2), "A1111's DPM++ 2M"),
    "DPM++ 2M Beta": (DPM, _dpmpp(2)),
    "DPM++ 2M Exponential": (DPM, _dpmpp(2)),
    "DPM++ 2M Karras": (DPM, _dpmpp(2), "A1111's DPM++ 2M Karras"),
    "DPM++ 2M SDE": (DPM, _dpmpp(2, sde=True), "A1111's DPM++ 2M SDE (per-step Gaussian noise)"),
    "DPM++ 2M SDE Beta": (DPM, _dpmpp(2, sde=True)),
    "DPM++ 2M SDE Exponential": (DPM, _dpmpp(2, sde=True)),
    "DPM++ 2M SDE Karras": (DPM, _dpmpp(2, sde=True), "A1111's DPM++ 2M SDE Karras"),
    "DPM++ 2M SDE Uniform": (DPM, _dpmpp(2, sde=True)),
    "DPM++ 2M Uniform": (DPM, _dpmpp(2)),
    "DPM++ 3M": (DPM, _dpmpp(3), "third-order multistep"),
    "DPM++ 3M Beta": (DPM, _dpmpp(3)),
    "DPM++ 3M Exponential": (DPM, _dpmpp(3)),
    "DPM++ 3M Karras": (DPM, _dpmpp(3)),
    "DPM++ 3M SDE Uniform": (DPM, _dpmpp(3, sde=True), "A1111's DPM++ 3M SDE"),
    "DPM++ 3M Uniform": (DPM, _dpmpp(3)),
    "DPM++ Beta": (DPM, _dpmpp(2), _DPMPP_NOTE),
    "DPM++ Exponential": (DPM, _dpmpp(2), _DPMPP_NOTE),
    "DPM++ Karras": (DPM, _dpmpp(2), _DPMPP_NOTE),
    "DPM++ SDE": (SDE, {}, _SDE_NOTE),
    "DPM++ SDE Beta": (SDE, {}, _SDE_NOTE),
    "DPM++ SDE Exponential": (SDE, {}, _SDE_NOTE),
    "DPM++ SDE Karras": (SDE, {}, "A1111's DPM++ SDE Karras"),
    "DPM++ Uniform": (DPM, _dpmpp(2), _DPMPP_NOTE),
    "DPM++ Uniform Beta": (DPM, _dpmpp(2), _DPMPP_NOTE),
    "DPM++ Uniform Exponential": (DPM, _dpmpp(2), _DPMPP_NOTE),
    "DPM++ Uniform Karras": (DPM, _dpmpp(2), _DPMPP_NOTE),
    "Euler": (EULER, {}, "A1111's Euler"),
    "Euler a": (EULER_A, {}, "A1111's Euler a (noise from the pipeline's generator)"),
    "Euler Beta": (EULER, {}),
    "Euler Exponential": (EULER, {}),
    "Euler Karras": (EULER, {}, "A1111's Euler Karras"),
    "Heun": (HEUN, {}, "A1111's Heun (two model evaluations per step)"),
    "Heun Karras": (HEUN, {}),
    "IPNDM Uniform": (IPNDM, {}, _IPNDM_NOTE),
    "IPNDM Uniform Beta": (IPNDM, {}, _IPNDM_NOTE),
    "IPNDM Uniform Exponential": (IPNDM, {}, _IPNDM_NOTE),
    "IPNDM Uniform Karras": (IPNDM, {}, _IPNDM_NOTE),
    "LMS": (LMS, {}, "A1111's LMS"),
    "LMS Karras": (LMS, {}, "A1111's LMS Karras"),
    "UniPC": (UNIPC, {"solver_order": 2}, "UniPC with diffusers' default order 2 (bh2)"),
    "UniPC 2M": (UNIPC, {"solver_order": 2}),
    "UniPC 2M Karras": (UNIPC, {"solver_order": 2}),
    "UniPC 2M Uniform": (UNIPC, {"solver_order": 2}),
    "UniPC 3M": (UNIPC, {"solver_order": 3}),
    "UniPC 3M Karras": (UNIPC, {"solver_order": 3}),
    "UniPC 3M Uniform": (UNIPC, {"solver_order": 3}),
    "UniPC Karras": (UNIPC, {"solver_order": 2}),
    "UniPC Uniform": (UNIPC, {"solver_order": 2}),
    "UniPC Uniform Beta": (UNIPC, {"solver_order": 2}),
    "UniPC Uniform Exponential": (UNIPC, {"solver_order": 2}),
    "UniPC Uniform Karras": (UNIPC, {"solver_order": 2}),
}

SCHEDULERS: dict[str, Mapped | Refused] = _friendly(_FRIENDLY) | {
    "DDIM": Mapped("DDIMScheduler", {"timestep_spacing": "leading", "steps_offset": 1},
                   "A1111's DDIM (= ComfyUI ddim_uniform); eta comes from the pipeline (0: deterministic)"),
    "DDIMScheduler": Mapped("DDIMScheduler", {}, _AS_IS),
    "DDPMScheduler": Mapped("DDPMScheduler", {}, _AS_IS),
    "DEISMultistepScheduler": Mapped("DEISMultistepScheduler", {}, _AS_IS),
    "Default": Mapped(None, {}, "the checkpoint's own scheduler class and config, unchanged"),
    "DPMSolverMultistepInverse": Refused(
        "DPMSolverMultistepInverseScheduler runs the diffusion backwards (its timesteps go from clean image to noise, "
        "for DDIM-style inversion of an existing image); it cannot generate an image from noise"),
    "DPMSolverMultistepScheduler": Mapped(DPM, {}, _AS_IS),
    "DPMSolverSinglestepScheduler": Mapped("DPMSolverSinglestepScheduler", {}, _AS_IS + " (single-step DPM-Solver++)"),
    "EDMDPMSolverMultistepScheduler": Refused(_EDM.format(cls="EDMDPMSolverMultistepScheduler")),
    "EDMEulerScheduler": Refused(_EDM.format(cls="EDMEulerScheduler")),
    "EulerAncestralDiscreteScheduler": Mapped(EULER_A, {}, _AS_IS),
    "EulerDiscreteScheduler": Mapped(EULER, {}, _AS_IS),
    "FlowMatchEulerDiscreteScheduler": Refused(
        "FlowMatchEulerDiscreteScheduler integrates a rectified-flow (flow-matching) model that predicts velocity on "
        "sigmas in [0, 1] (SD3, FLUX); SDXL is a diffusion model with epsilon prediction and a scaled-linear beta "
        "schedule"),
    "HeunDiscreteScheduler": Mapped(HEUN, {}, _AS_IS),
    "IPNDMScheduler": Refused(_IPNDM),
    "KDPM2AncestralDiscreteScheduler": Mapped("KDPM2AncestralDiscreteScheduler", {}, _AS_IS + " (A1111's DPM2 a)"),
    "KDPM2DiscreteScheduler": Mapped("KDPM2DiscreteScheduler", {}, _AS_IS + " (A1111's DPM2)"),
    "LCM": Mapped("LCMScheduler", {}, _LCM_NOTE),
    "LCMScheduler": Mapped("LCMScheduler", {}, _LCM_NOTE),
    "LMSDiscreteScheduler": Mapped(LMS, {}, _AS_IS),
    "PNDMScheduler": Mapped("PNDMScheduler", {}, _AS_IS),
    "TCDScheduler": Mapped("TCDScheduler", {}, _TCD_NOTE),
}


@lru_cache(maxsize=1)
def scheduler_names() -> tuple[str, ...]:
    """The schema's scheduler enum, in its order."""
    return tuple(json.loads(SCHEMA.read_text(encoding="utf-8"))["properties"]["scheduler"]["enum"])


SCHEDULER_NAMES: tuple[str, ...] = scheduler_names()


def check_scheduler(name: str) -> Mapped:
    """The table entry of an accepted name; UnsupportedScheduler for refused and unknown names."""
    entry = SCHEDULERS.get(name) if isinstance(name, str) else None
    if entry is None:
        raise UnsupportedScheduler(name, "it is not one of the format's scheduler names "
                                         "(see the 'scheduler' enum of the imageInference schema)")
    if isinstance(entry, Refused):
        raise UnsupportedScheduler(name, entry.reason)
    return entry


def accepted(name: str) -> bool:
    """Whether `name` is a scheduler name sdxlkit runs (check_scheduler says why not)."""
    return isinstance(SCHEDULERS.get(name) if isinstance(name, str) else None, Mapped)


def _requirement(cls_name: str) -> str | None:
    """The optional package a scheduler needs beyond torch and diffusers, if any."""
    if cls_name == SDE:
        return "torchsde"
    if cls_name == LMS:
        return "scipy"
    return None


def pin_sigma_schedule(scheduler, schedule: str) -> None:
    """Make ``scheduler.set_timesteps(n)`` produce ``sigma_schedules.SCHEDULES[schedule]`` for ``n`` steps.

    Every pinned class except Euler a builds its Karras sigmas through ``_convert_to_karras`` inside
    ``set_timesteps`` (with ``use_karras_sigmas`` on) and then derives the timesteps, interleaves the second-order
    steps (Heun, DPM++ SDE) and appends the final 0 itself, so replacing that hook on the instance is all it takes.
    Euler a has no Karras option: its sigmas and (fractional) timesteps are set after its own ``set_timesteps``.
    """
    import numpy as np

    from .sigma_schedules import SCHEDULES, model_sigmas, timestep_at

    compute = SCHEDULES[schedule]

    model = model_sigmas(scheduler.config, scheduler.alphas_cumprod)

    def sigmas(n: int):
        return compute(model, n)

    if hasattr(scheduler, "_convert_to_karras"):
        scheduler._convert_to_karras = lambda in_sigmas, num_inference_steps=None: sigmas(
            num_inference_steps or scheduler.num_inference_steps)
        return
    import torch

    own_set_timesteps = scheduler.set_timesteps

    def set_timesteps(num_inference_steps: int, device=None):
        own_set_timesteps(num_inference_steps, device)
        pinned = sigmas(num_inference_steps)
        timesteps = timestep_at(model, pinned)
        scheduler.timesteps = torch.from_numpy(timesteps.astype(np.float32)).to(device)
        scheduler.sigmas = torch.from_numpy(np.append(pinned, 0.0).astype(np.float32))

    scheduler.set_timesteps = set_timesteps


def batchable(name: str) -> bool:
    """Whether images of several seeds can share a pass: every scheduler but the Brownian-tree SDE ones draws each
    image's noise from that image's own generator."""
    return check_scheduler(name).cls != SDE


def scheduler_class(cls_name: str):
    """The scheduler class of that name: sdxlkit's own, else diffusers' (None when neither has it)."""
    if cls_name in OWN_CLASSES:
        return getattr(importlib.import_module(OWN_CLASSES[cls_name]), cls_name)
    import diffusers

    return getattr(diffusers, cls_name, None)


def make_scheduler(name: str, base_config: dict, *, seed: int | None = None):
    """A fresh diffusers scheduler for ``name``: ``Class.from_config(base_config, **overrides)``, with the name's
    sigma schedule pinned (:func:`pin_sigma_schedule`).

    ``base_config`` is the checkpoint's scheduler config (a dict with ``_class_name``). ``seed`` seeds the
    Brownian-tree noise of DPMSolverSDEScheduler ("DPM++ SDE ..."); other schedulers take their noise from the
    pipeline's generator and ignore it.
    """
    entry = check_scheduler(name)
    cls_name = entry.cls if entry.cls is not None else base_config.get("_class_name")
    if not cls_name:
        raise UnsupportedScheduler(name, "the checkpoint's scheduler config names no scheduler class")
    overrides = dict(entry.overrides)
    if seed is not None and cls_name == SDE:
        overrides["noise_sampler_seed"] = int(seed)
    cls = scheduler_class(cls_name)
    if cls is None:
        import diffusers

        raise UnsupportedScheduler(name, f"diffusers {diffusers.__version__} has no scheduler class {cls_name!r}")
    if entry.sigmas is not None and hasattr(cls, "_convert_to_karras"):
        overrides |= _PINNED
    if entry.sigmas == "beta" and importlib.util.find_spec("scipy") is None:
        raise MissingDependency("scipy", f"scheduler {name!r}")
    try:
        scheduler = cls.from_config(dict(base_config), **overrides)
    except ImportError as exc:
        package = _requirement(cls_name)
        if package is None:
            raise
        raise MissingDependency(package, f"scheduler {name!r}") from exc
    if entry.sigmas is not None:
        pin_sigma_schedule(scheduler, entry.sigmas)
    return scheduler


SCHEDULE_LABELS = {
    "normal": "normal (k-diffusion get_sigmas; ComfyUI normal)",
    "karras": "Karras, rho 7 (ComfyUI karras)",
    "exponential": "exponential (ComfyUI exponential)",
    "beta": "A1111 Beta, linear in sigma (ComfyUI's beta differs)",
}


def _format_settings(entry: Mapped) -> str:
    shown = {k: v for k, v in entry.overrides.items() if v is not False}
    return ", ".join(f"`{k}={v!r}`" for k, v in shown.items()) or "—"


def _format_sigmas(entry: Mapped) -> str:
    if entry.sigmas is not None:
        return SCHEDULE_LABELS[entry.sigmas]
    if entry.cls == "DDIMScheduler" and entry.overrides:
        return "leading + 1 (ComfyUI ddim_uniform)"
    return "the config's"


def scheduler_table_markdown() -> str:
    """The README table (name | scheduler class | sigmas | settings | notes), generated from ``SCHEDULERS``."""
    accepted = sum(isinstance(SCHEDULERS[n], Mapped) for n in SCHEDULER_NAMES)
    rows = [
        f"{accepted} of the format's {len(SCHEDULER_NAMES)} scheduler names run; the others are refused with the "
        "reason below. Settings are applied on top of the checkpoint's scheduler config. \"sigmas\" is the "
        "schedule: a friendly name pins it over the model's full sigma range whatever the checkpoint's config says "
        "(\"the config's\": the class's own, from the config's `timestep_spacing` and sigma flags).",
        "",
        "| name | scheduler class | sigmas | settings | notes |",
        "|---|---|---|---|---|",
    ]
    for name in SCHEDULER_NAMES:
        entry = SCHEDULERS[name]
        if isinstance(entry, Refused):
            rows.append(f"| {name} | refused | — | — | {entry.reason} |")
        else:
            cls = entry.cls or "the checkpoint's own"
            rows.append(f"| {name} | {cls} | {_format_sigmas(entry)} | {_format_settings(entry)} | "
                        f"{entry.note or '—'} |")
    return "\n".join(rows) + "\n"


def schedule_for(steps: int, strength: float) -> int:
    """The num_inference_steps at which diffusers' img2img/inpaint runs exactly `steps` steps at `strength`
    (it runs int(num_inference_steps * strength)): A1111's and ComfyUI's denoise semantics, about ceil(steps / strength)."""
    if not 0 < strength <= 1:
        raise ValueError(f"strength {strength} runs no step; allowed: 0 < strength <= 1")
    n = max(steps, math.ceil(steps / strength))
    while int(n * strength) < steps:  # float rounding of steps / strength
        n += 1
    while n > steps and int((n - 1) * strength) >= steps:
        n -= 1
    return n


# The longest schedule a scheduler takes: diffusers refuses more steps than the model's 1000 training timesteps
# (LCM and TCD: than their original 50-step schedule), and DEIS returns NaN past them.
TRAINING_TIMESTEPS = 1000
SHORT_SCHEDULES = {"LCMScheduler": 50, "TCDScheduler": 50}


def longest_schedule(name: str) -> int:
    entry = SCHEDULERS.get(name)
    return SHORT_SCHEDULES.get(getattr(entry, "cls", None), TRAINING_TIMESTEPS)


TWO_EVALUATIONS_PER_STEP = {HEUN, SDE, "KDPM2DiscreteScheduler", "KDPM2AncestralDiscreteScheduler"}


def evaluates_twice_per_step(name: str) -> bool:
    """Second-order schedulers: each step evaluates the UNet at two timesteps, listed twice in `timesteps`."""
    return getattr(SCHEDULERS.get(name), "cls", None) in TWO_EVALUATIONS_PER_STEP
