"""The 75 scheduler names of the imageInference format, each mapped to one diffusers scheduler or refused.

``SCHEDULERS`` is the single source of truth: ``make_scheduler`` builds from it, ``check_scheduler`` validates with
it, and the README's table is generated from it (``scheduler_table_markdown``). A name whose meaning cannot be
reproduced faithfully on an epsilon-prediction SDXL model with diffusers is refused with its reason
(``UnsupportedScheduler``), never replaced by another scheduler.

How the names read:

* A diffusers class name ("DDPMScheduler", "DPMSolverMultistepScheduler", ...) is that class built on the
  checkpoint's scheduler config exactly as it is, with no setting changed. "Default" rebuilds the checkpoint's own
  class (``base_config["_class_name"]``) unchanged.
* A friendly name ("Euler", "DPM++ 2M SDE Karras", "UniPC 3M Uniform", ...) fixes every setting its words imply and
  keeps the checkpoint's config for the rest (betas, training timesteps, prediction type, steps_offset, and the
  timestep spacing unless the name says "Uniform"). Its sigma schedule is always pinned: "Karras" / "Exponential" /
  "Beta" switch on that flag (``use_karras_sigmas`` / ``use_exponential_sigmas`` / ``use_beta_sigmas``) and switch
  off the others, a name without one switches them all off, so a checkpoint config that ships with, say,
  ``use_karras_sigmas=True`` cannot turn "Euler" into "Euler Karras" (or make diffusers reject two flags at once).
* "2M" / "3M" = multistep solver order 2 / 3; "SDE" = the stochastic variant ("sde-dpmsolver++" for DPM-Solver++
  multistep; "DPM++ SDE" itself is A1111's DPM++ SDE, diffusers' DPMSolverSDEScheduler with a Brownian-tree noise
  sampler from torchsde).
* "Uniform" = A1111's "Uniform" schedule type: timesteps spaced uniformly over the whole training range, diffusers
  ``timestep_spacing="linspace"`` (SDXL's own config says "leading"). A following Karras / Exponential / Beta sets
  the sigmas as well. DPMSolverMultistep and UniPC take the Karras/Exponential/Beta endpoints from the full training
  range whatever the spacing, so there "Uniform Karras" equals "Karras"; Euler, Heun, LMS and DPM++ SDE take them from
  the spaced timesteps, so their Karras/Exponential/Beta names also set linspace spacing: every such curve runs from
  the model's sigma_max to its sigma_min, as in A1111.
* "DPM++" alone is DPM-Solver++ as diffusers implements it by default: DPMSolverMultistepScheduler with
  ``algorithm_type="dpmsolver++"``, ``solver_order=2`` (the same sampler as "DPM++ 2M"). Reasons: the format's
  DPM++ family has exactly the shape of its UniPC family ("UniPC" / "UniPC 2M" / "UniPC 3M" / "UniPC Karras" /
  "UniPC Uniform ..." next to "DPM++" / "DPM++ 2M" / "DPM++ 3M" / "DPM++ Karras" / "DPM++ Uniform ..."), where the
  bare name is the multistep class with its default order; and the alternative, single-step DPM-Solver++
  (DPMSolverSinglestepScheduler), has no ``timestep_spacing`` option at all (it always spaces uniformly), so
  "DPM++ Uniform" could not differ from "DPM++" — the "Uniform" names only make sense for the multistep solver.
  Single-step DPM-Solver++ stays available under its class name "DPMSolverSinglestepScheduler".

Stochastic samplers draw their noise from the pipeline's ``generator``, except DPMSolverSDEScheduler, whose
Brownian tree is seeded by its ``noise_sampler_seed`` config: pass ``seed=`` to ``make_scheduler`` so that "DPM++
SDE ..." images repeat for a given seed (without it diffusers seeds the tree from torch's global RNG).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .errors import MissingDependency, UnsupportedScheduler

SCHEMA = Path(__file__).resolve().parent / "spec" / "imageInference.schema.json"


@dataclass(frozen=True)
class Mapped:
    """A diffusers scheduler class (None: the checkpoint's own) and the config settings the name implies."""

    cls: str | None
    overrides: dict = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class Refused:
    """A name with no faithful diffusers equivalent for SDXL, and why."""

    reason: str


# ---- building blocks for the table --------------------------------------------------------------------------------

def _sigmas(kind: str | None = None) -> dict:
    """Pin the sigma schedule: one of karras / exponential / beta on, the others off (None: all off)."""
    return {"use_karras_sigmas": kind == "karras", "use_exponential_sigmas": kind == "exponential",
            "use_beta_sigmas": kind == "beta"}


UNIFORM = {"timestep_spacing": "linspace"}


def _full_range(kind: str) -> dict:
    """Karras/Exponential/Beta on samplers that take the curve's endpoints from the spaced timesteps (Euler, Heun,
    LMS, DPM++ SDE): linspace spacing puts them at the model's sigma_max/sigma_min, as A1111 does."""
    return _sigmas(kind) | UNIFORM


def _dpmpp(order: int, sde: bool = False, sigmas: str | None = None, uniform: bool = False) -> dict:
    """DPM-Solver++ multistep. ``use_lu_lambdas`` is another sigma schedule of this class, so it is pinned off too."""
    return ({"algorithm_type": "sde-dpmsolver++" if sde else "dpmsolver++", "solver_order": order}
            | _sigmas(sigmas) | {"use_lu_lambdas": False} | (UNIFORM if uniform else {}))


def _unipc(order: int = 2, sigmas: str | None = None, uniform: bool = False) -> dict:
    return {"solver_order": order} | _sigmas(sigmas) | (UNIFORM if uniform else {})


DPM = "DPMSolverMultistepScheduler"
SDE = "DPMSolverSDEScheduler"
UNIPC = "UniPCMultistepScheduler"
EULER = "EulerDiscreteScheduler"

_AS_IS = "the class on the checkpoint's scheduler config, unchanged"
_DPMPP_NOTE = "DPM-Solver++ multistep, diffusers' default form (same sampler as DPM++ 2M); see module docstring"
_SDE_NOTE = "A1111's DPM++ SDE (k-diffusion port, Brownian-tree noise via torchsde; seeded by make_scheduler(seed=))"
_FULL = "over the model's full sigma range, as A1111"
_SEE_UNIFORM = "Uniform: timesteps over the whole training range (A1111 Uniform)"
_LCM_NOTE = "needs an LCM-distilled model or LCM-LoRA; a plain SDXL checkpoint gives poor images with it"
_TCD_NOTE = "needs a TCD-distilled model or TCD-LoRA; a plain SDXL checkpoint gives poor images with it"

_IPNDM = ("diffusers' IPNDMScheduler ignores the checkpoint's noise schedule: it accepts only num_train_timesteps and "
          "trained_betas, builds its own sin^2 (v-diffusion) schedule and passes fractional timesteps in [0, 1) to the "
          "model, while SDXL's epsilon-prediction UNet expects timesteps 0-999 on its scaled-linear beta schedule")
_IPNDM_SPACING = "; it has no timestep_spacing option either, so 'Uniform' cannot be applied"
_EDM = ("{cls} implements the EDM parameterisation (continuous Karras sigmas 0.002-80, c_noise = ln(sigma)/4 passed as "
        "the timestep) for EDM-trained models such as Playground v2.5; SDXL's epsilon-prediction UNet expects discrete "
        "timesteps 0-999 on its scaled-linear beta schedule")

SCHEDULERS: dict[str, Mapped | Refused] = {
    "DDIM": Mapped("DDIMScheduler", {}, "A1111's DDIM; eta comes from the pipeline (0: deterministic)"),
    "DDIMScheduler": Mapped("DDIMScheduler", {}, _AS_IS),
    "DDPMScheduler": Mapped("DDPMScheduler", {}, _AS_IS),
    "DEISMultistepScheduler": Mapped("DEISMultistepScheduler", {}, _AS_IS),
    "Default": Mapped(None, {}, "the checkpoint's own scheduler class and config, unchanged"),
    "DPM++": Mapped(DPM, _dpmpp(2), _DPMPP_NOTE),
    "DPM++ 2M": Mapped(DPM, _dpmpp(2), "A1111's DPM++ 2M"),
    "DPM++ 2M Beta": Mapped(DPM, _dpmpp(2, sigmas="beta"), "beta sigmas (alpha = beta = 0.6) over the full range"),
    "DPM++ 2M Exponential": Mapped(DPM, _dpmpp(2, sigmas="exponential"), "exponential sigmas over the full range"),
    "DPM++ 2M Karras": Mapped(DPM, _dpmpp(2, sigmas="karras"), "A1111's DPM++ 2M Karras"),
    "DPM++ 2M SDE": Mapped(DPM, _dpmpp(2, sde=True), "A1111's DPM++ 2M SDE (per-step Gaussian noise)"),
    "DPM++ 2M SDE Beta": Mapped(DPM, _dpmpp(2, sde=True, sigmas="beta"), ""),
    "DPM++ 2M SDE Exponential": Mapped(DPM, _dpmpp(2, sde=True, sigmas="exponential"), ""),
    "DPM++ 2M SDE Karras": Mapped(DPM, _dpmpp(2, sde=True, sigmas="karras"), "A1111's DPM++ 2M SDE Karras"),
    "DPM++ 2M SDE Uniform": Mapped(DPM, _dpmpp(2, sde=True, uniform=True), _SEE_UNIFORM),
    "DPM++ 2M Uniform": Mapped(DPM, _dpmpp(2, uniform=True), _SEE_UNIFORM),
    "DPM++ 3M": Mapped(DPM, _dpmpp(3), "third-order multistep"),
    "DPM++ 3M Beta": Mapped(DPM, _dpmpp(3, sigmas="beta"), ""),
    "DPM++ 3M Exponential": Mapped(DPM, _dpmpp(3, sigmas="exponential"), ""),
    "DPM++ 3M Karras": Mapped(DPM, _dpmpp(3, sigmas="karras"), ""),
    "DPM++ 3M SDE Uniform": Mapped(DPM, _dpmpp(3, sde=True, uniform=True), "A1111's DPM++ 3M SDE; " + _SEE_UNIFORM),
    "DPM++ 3M Uniform": Mapped(DPM, _dpmpp(3, uniform=True), _SEE_UNIFORM),
    "DPM++ Beta": Mapped(DPM, _dpmpp(2, sigmas="beta"), _DPMPP_NOTE),
    "DPM++ Exponential": Mapped(DPM, _dpmpp(2, sigmas="exponential"), _DPMPP_NOTE),
    "DPM++ Karras": Mapped(DPM, _dpmpp(2, sigmas="karras"), _DPMPP_NOTE),
    "DPM++ SDE": Mapped(SDE, _sigmas(), _SDE_NOTE),
    "DPM++ SDE Beta": Mapped(SDE, _full_range("beta"), _SDE_NOTE),
    "DPM++ SDE Exponential": Mapped(SDE, _full_range("exponential"), _SDE_NOTE),
    "DPM++ SDE Karras": Mapped(SDE, _full_range("karras"), "A1111's DPM++ SDE Karras, " + _FULL),
    "DPM++ Uniform": Mapped(DPM, _dpmpp(2, uniform=True), _SEE_UNIFORM),
    "DPM++ Uniform Beta": Mapped(DPM, _dpmpp(2, sigmas="beta", uniform=True), "beta sigmas over the full range"),
    "DPM++ Uniform Exponential": Mapped(DPM, _dpmpp(2, sigmas="exponential", uniform=True),
                                        "exponential sigmas over the full range"),
    "DPM++ Uniform Karras": Mapped(DPM, _dpmpp(2, sigmas="karras", uniform=True), "Karras sigmas over the full range"),
    "DPMSolverMultistepInverse": Refused(
        "DPMSolverMultistepInverseScheduler runs the diffusion backwards (its timesteps go from clean image to noise, "
        "for DDIM-style inversion of an existing image); it cannot generate an image from noise"),
    "DPMSolverMultistepScheduler": Mapped(DPM, {}, _AS_IS),
    "DPMSolverSinglestepScheduler": Mapped("DPMSolverSinglestepScheduler", {}, _AS_IS + " (single-step DPM-Solver++)"),
    "EDMDPMSolverMultistepScheduler": Refused(_EDM.format(cls="EDMDPMSolverMultistepScheduler")),
    "EDMEulerScheduler": Refused(_EDM.format(cls="EDMEulerScheduler")),
    "Euler": Mapped(EULER, _sigmas(), "A1111's Euler"),
    "Euler a": Mapped("EulerAncestralDiscreteScheduler", {}, "A1111's Euler a (noise from the pipeline's generator)"),
    "Euler Beta": Mapped(EULER, _full_range("beta"), "beta sigmas (alpha = beta = 0.6) " + _FULL),
    "Euler Exponential": Mapped(EULER, _full_range("exponential"), "exponential sigmas " + _FULL),
    "Euler Karras": Mapped(EULER, _full_range("karras"), "A1111's Euler Karras, " + _FULL),
    "EulerAncestralDiscreteScheduler": Mapped("EulerAncestralDiscreteScheduler", {}, _AS_IS),
    "EulerDiscreteScheduler": Mapped(EULER, {}, _AS_IS),
    "FlowMatchEulerDiscreteScheduler": Refused(
        "FlowMatchEulerDiscreteScheduler integrates a rectified-flow (flow-matching) model that predicts velocity on "
        "sigmas in [0, 1] (SD3, FLUX); SDXL is a diffusion model with epsilon prediction and a scaled-linear beta "
        "schedule"),
    "Heun": Mapped("HeunDiscreteScheduler", _sigmas(), "A1111's Heun (two model evaluations per step)"),
    "Heun Karras": Mapped("HeunDiscreteScheduler", _full_range("karras"), "Karras sigmas " + _FULL),
    "HeunDiscreteScheduler": Mapped("HeunDiscreteScheduler", {}, _AS_IS),
    "IPNDM Uniform": Refused(_IPNDM + _IPNDM_SPACING),
    "IPNDM Uniform Beta": Refused(_IPNDM + _IPNDM_SPACING + ", and no use_beta_sigmas option"),
    "IPNDM Uniform Exponential": Refused(_IPNDM + _IPNDM_SPACING + ", and no use_exponential_sigmas option"),
    "IPNDM Uniform Karras": Refused(_IPNDM + _IPNDM_SPACING + ", and no use_karras_sigmas option"),
    "IPNDMScheduler": Refused(_IPNDM),
    "KDPM2AncestralDiscreteScheduler": Mapped("KDPM2AncestralDiscreteScheduler", {}, _AS_IS + " (A1111's DPM2 a)"),
    "KDPM2DiscreteScheduler": Mapped("KDPM2DiscreteScheduler", {}, _AS_IS + " (A1111's DPM2)"),
    "LCM": Mapped("LCMScheduler", {}, _LCM_NOTE),
    "LCMScheduler": Mapped("LCMScheduler", {}, _LCM_NOTE),
    "LMS": Mapped("LMSDiscreteScheduler", _sigmas(), "A1111's LMS"),
    "LMS Karras": Mapped("LMSDiscreteScheduler", _full_range("karras"), "A1111's LMS Karras, " + _FULL),
    "LMSDiscreteScheduler": Mapped("LMSDiscreteScheduler", {}, _AS_IS),
    "PNDMScheduler": Mapped("PNDMScheduler", {}, _AS_IS),
    "TCDScheduler": Mapped("TCDScheduler", {}, _TCD_NOTE),
    "UniPC": Mapped(UNIPC, _unipc(), "UniPC with diffusers' default order 2 (bh2)"),
    "UniPC 2M": Mapped(UNIPC, _unipc(2), ""),
    "UniPC 2M Karras": Mapped(UNIPC, _unipc(2, "karras"), "Karras sigmas over the full range"),
    "UniPC 2M Uniform": Mapped(UNIPC, _unipc(2, uniform=True), _SEE_UNIFORM),
    "UniPC 3M": Mapped(UNIPC, _unipc(3), ""),
    "UniPC 3M Karras": Mapped(UNIPC, _unipc(3, "karras"), "Karras sigmas over the full range"),
    "UniPC 3M Uniform": Mapped(UNIPC, _unipc(3, uniform=True), _SEE_UNIFORM),
    "UniPC Karras": Mapped(UNIPC, _unipc(2, "karras"), "Karras sigmas over the full range"),
    "UniPC Uniform": Mapped(UNIPC, _unipc(2, uniform=True), _SEE_UNIFORM),
    "UniPC Uniform Beta": Mapped(UNIPC, _unipc(2, "beta", uniform=True), "beta sigmas over the full range"),
    "UniPC Uniform Exponential": Mapped(UNIPC, _unipc(2, "exponential", uniform=True),
                                        "exponential sigmas over the full range"),
    "UniPC Uniform Karras": Mapped(UNIPC, _unipc(2, "karras", uniform=True), "Karras sigmas over the full range"),
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


def _requirement(cls_name: str, overrides: dict) -> str | None:
    """The optional package a scheduler needs beyond torch and diffusers, if any."""
    if cls_name == SDE:
        return "torchsde"
    if cls_name == "LMSDiscreteScheduler" or overrides.get("use_beta_sigmas"):
        return "scipy"
    return None


def make_scheduler(name: str, base_config: dict, *, seed: int | None = None):
    """A fresh diffusers scheduler for ``name``: ``Class.from_config(base_config, **overrides)``.

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
    import diffusers

    cls = getattr(diffusers, cls_name, None)
    if cls is None:
        raise UnsupportedScheduler(name, f"diffusers {diffusers.__version__} has no scheduler class {cls_name!r}")
    try:
        return cls.from_config(dict(base_config), **overrides)
    except ImportError as exc:
        package = _requirement(cls_name, overrides)
        if package is None:
            raise
        raise MissingDependency(package, f"scheduler {name!r}") from exc


def _format_settings(entry: Mapped) -> str:
    shown = {k: v for k, v in entry.overrides.items() if v is not False}
    return ", ".join(f"`{k}={v!r}`" for k, v in shown.items()) or "—"


def scheduler_table_markdown() -> str:
    """The README table (name | diffusers class | settings | notes), generated from ``SCHEDULERS``."""
    accepted = sum(isinstance(SCHEDULERS[n], Mapped) for n in SCHEDULER_NAMES)
    rows = [
        f"{accepted} of the format's {len(SCHEDULER_NAMES)} scheduler names run; the others are refused with the "
        "reason below. Settings are applied on top of the checkpoint's scheduler config; friendly names also switch "
        "off every sigma flag (`use_karras_sigmas`, `use_exponential_sigmas`, `use_beta_sigmas`, and "
        "`use_lu_lambdas` for DPM-Solver++) that they do not list.",
        "",
        "| name | diffusers class | settings | notes |",
        "|---|---|---|---|",
    ]
    for name in SCHEDULER_NAMES:
        entry = SCHEDULERS[name]
        if isinstance(entry, Refused):
            rows.append(f"| {name} | refused | — | {entry.reason} |")
        else:
            cls = entry.cls or "the checkpoint's own"
            rows.append(f"| {name} | {cls} | {_format_settings(entry)} | {entry.note or '—'} |")
    return "\n".join(rows) + "\n"
