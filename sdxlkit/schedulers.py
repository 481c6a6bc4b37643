"""The 75 scheduler names of the imageInference format, each mapped to one diffusers scheduler configuration.

One table is the single source of truth (the README's table is generated from it). A name that cannot be reproduced
faithfully on an epsilon-prediction SDXL model is refused with its reason, never replaced by another scheduler.

Words in the names: "Karras" / "Exponential" / "Beta" = that sigma schedule (use_*_sigmas); "Uniform" = timesteps
spaced uniformly over the whole training range (A1111's "Uniform" schedule type, diffusers timestep_spacing
"linspace"; a following Karras/Exponential/Beta then sets the sigmas); "2M"/"3M" = multistep solver order 2/3;
"SDE" = the stochastic variant. "DPM++" alone is DPM-Solver++ in its single-step form (A1111's "DPM++ 2S" without
ancestral noise): the multistep form has its own names ("DPM++ 2M"), and the single-step solver already spaces its
timesteps uniformly, so "DPM++ Uniform ..." equals "DPM++ ...".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .errors import UnsupportedScheduler

SCHEMA = Path(__file__).resolve().parent / "spec" / "imageInference.schema.json"


@dataclass(frozen=True)
class Mapped:
    cls: str
    overrides: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Refused:
    reason: str


KARRAS = {"use_karras_sigmas": True}
EXPONENTIAL = {"use_exponential_sigmas": True}
BETA = {"use_beta_sigmas": True}
UNIFORM = {"timestep_spacing": "linspace"}
DPMPP_2M = {"algorithm_type": "dpmsolver++", "solver_order": 2}
DPMPP_2M_SDE = {"algorithm_type": "sde-dpmsolver++", "solver_order": 2}
DPMPP_3M = {"algorithm_type": "dpmsolver++", "solver_order": 3}
DPMPP_3M_SDE = {"algorithm_type": "sde-dpmsolver++", "solver_order": 3}
DPMPP_2S = {"algorithm_type": "dpmsolver++", "solver_order": 2}
UNIPC_2M = {"solver_order": 2}
UNIPC_3M = {"solver_order": 3}
IPNDM_REASON = ("diffusers' IPNDMScheduler runs its own trigonometric noise schedule (made for v-diffusion audio "
                "models) and has no Karras/Exponential/Beta or spacing options, so it cannot sample SDXL's "
                "scaled-linear epsilon schedule faithfully")

SCHEDULERS: dict[str, Mapped | Refused] = {
    "Default": Mapped("(the checkpoint's own)"),
    "DDIM": Mapped("DDIMScheduler"),
    "DDIMScheduler": Mapped("DDIMScheduler"),
    "DDPMScheduler": Mapped("DDPMScheduler"),
    "DEISMultistepScheduler": Mapped("DEISMultistepScheduler"),
    "DPM++": Mapped("DPMSolverSinglestepScheduler", DPMPP_2S),
    "DPM++ Karras": Mapped("DPMSolverSinglestepScheduler", DPMPP_2S | KARRAS),
    "DPM++ Exponential": Mapped("DPMSolverSinglestepScheduler", DPMPP_2S | EXPONENTIAL),
    "DPM++ Beta": Mapped("DPMSolverSinglestepScheduler", DPMPP_2S | BETA),
    "DPM++ Uniform": Mapped("DPMSolverSinglestepScheduler", DPMPP_2S),
    "DPM++ Uniform Karras": Mapped("DPMSolverSinglestepScheduler", DPMPP_2S | KARRAS),
    "DPM++ Uniform Exponential": Mapped("DPMSolverSinglestepScheduler", DPMPP_2S | EXPONENTIAL),
    "DPM++ Uniform Beta": Mapped("DPMSolverSinglestepScheduler", DPMPP_2S | BETA),
    "DPM++ 2M": Mapped("DPMSolverMultistepScheduler", DPMPP_2M),
    "DPM++ 2M Karras": Mapped("DPMSolverMultistepScheduler", DPMPP_2M | KARRAS),
    "DPM++ 2M Exponential": Mapped("DPMSolverMultistepScheduler", DPMPP_2M | EXPONENTIAL),
    "DPM++ 2M Beta": Mapped("DPMSolverMultistepScheduler", DPMPP_2M | BETA),
    "DPM++ 2M Uniform": Mapped("DPMSolverMultistepScheduler", DPMPP_2M | UNIFORM),
    "DPM++ 2M SDE": Mapped("DPMSolverMultistepScheduler", DPMPP_2M_SDE),
    "DPM++ 2M SDE Karras": Mapped("DPMSolverMultistepScheduler", DPMPP_2M_SDE | KARRAS),
    "DPM++ 2M SDE Exponential": Mapped("DPMSolverMultistepScheduler", DPMPP_2M_SDE | EXPONENTIAL),
    "DPM++ 2M SDE Beta": Mapped("DPMSolverMultistepScheduler", DPMPP_2M_SDE | BETA),
    "DPM++ 2M SDE Uniform": Mapped("DPMSolverMultistepScheduler", DPMPP_2M_SDE | UNIFORM),
    "DPM++ 3M": Mapped("DPMSolverMultistepScheduler", DPMPP_3M),
    "DPM++ 3M Karras": Mapped("DPMSolverMultistepScheduler", DPMPP_3M | KARRAS),
    "DPM++ 3M Exponential": Mapped("DPMSolverMultistepScheduler", DPMPP_3M | EXPONENTIAL),
    "DPM++ 3M Beta": Mapped("DPMSolverMultistepScheduler", DPMPP_3M | BETA),
    "DPM++ 3M Uniform": Mapped("DPMSolverMultistepScheduler", DPMPP_3M | UNIFORM),
    "DPM++ 3M SDE Uniform": Mapped("DPMSolverMultistepScheduler", DPMPP_3M_SDE | UNIFORM),
    "DPM++ SDE": Mapped("DPMSolverSDEScheduler"),
    "DPM++ SDE Karras": Mapped("DPMSolverSDEScheduler", KARRAS),
    "DPM++ SDE Exponential": Mapped("DPMSolverSDEScheduler", EXPONENTIAL),
    "DPM++ SDE Beta": Mapped("DPMSolverSDEScheduler", BETA),
    "DPMSolverMultistepScheduler": Mapped("DPMSolverMultistepScheduler"),
    "DPMSolverSinglestepScheduler": Mapped("DPMSolverSinglestepScheduler"),
    "DPMSolverMultistepInverse": Refused("DPMSolverMultistepInverse runs the diffusion backwards (image to noise, "
                                         "for inversion); it cannot generate an image"),
    "EDMDPMSolverMultistepScheduler": Refused("EDM schedulers expect an EDM-parameterised model (e.g. Playground "
                                              "v2.5); SDXL is an epsilon-prediction model and would get wrong timesteps"),
    "EDMEulerScheduler": Refused("EDM schedulers expect an EDM-parameterised model (e.g. Playground v2.5); SDXL is an "
                                 "epsilon-prediction model and would get wrong timesteps"),
    "FlowMatchEulerDiscreteScheduler": Refused("flow-matching schedulers are for flow models (SD3, FLUX); SDXL is a "
                                               "diffusion model with epsilon prediction"),
    "Euler": Mapped("EulerDiscreteScheduler"),
    "Euler Karras": Mapped("EulerDiscreteScheduler", KARRAS),
    "Euler Exponential": Mapped("EulerDiscreteScheduler", EXPONENTIAL),
    "Euler Beta": Mapped("EulerDiscreteScheduler", BETA),
    "Euler a": Mapped("EulerAncestralDiscreteScheduler"),
    "EulerAncestralDiscreteScheduler": Mapped("EulerAncestralDiscreteScheduler"),
    "EulerDiscreteScheduler": Mapped("EulerDiscreteScheduler"),
    "Heun": Mapped("HeunDiscreteScheduler"),
    "Heun Karras": Mapped("HeunDiscreteScheduler", KARRAS),
    "HeunDiscreteScheduler": Mapped("HeunDiscreteScheduler"),
    "IPNDMScheduler": Refused(IPNDM_REASON),
    "IPNDM Uniform": Refused(IPNDM_REASON),
    "IPNDM Uniform Karras": Refused(IPNDM_REASON),
    "IPNDM Uniform Exponential": Refused(IPNDM_REASON),
    "IPNDM Uniform Beta": Refused(IPNDM_REASON),
    "KDPM2DiscreteScheduler": Mapped("KDPM2DiscreteScheduler"),
    "KDPM2AncestralDiscreteScheduler": Mapped("KDPM2AncestralDiscreteScheduler"),
    "LCM": Mapped("LCMScheduler"),
    "LCMScheduler": Mapped("LCMScheduler"),
    "LMS": Mapped("LMSDiscreteScheduler"),
    "LMS Karras": Mapped("LMSDiscreteScheduler", KARRAS),
    "LMSDiscreteScheduler": Mapped("LMSDiscreteScheduler"),
    "PNDMScheduler": Mapped("PNDMScheduler"),
    "TCDScheduler": Mapped("TCDScheduler"),
    "UniPC": Mapped("UniPCMultistepScheduler"),
    "UniPC Karras": Mapped("UniPCMultistepScheduler", KARRAS),
    "UniPC 2M": Mapped("UniPCMultistepScheduler", UNIPC_2M),
    "UniPC 2M Karras": Mapped("UniPCMultistepScheduler", UNIPC_2M | KARRAS),
    "UniPC 2M Uniform": Mapped("UniPCMultistepScheduler", UNIPC_2M | UNIFORM),
    "UniPC 3M": Mapped("UniPCMultistepScheduler", UNIPC_3M),
    "UniPC 3M Karras": Mapped("UniPCMultistepScheduler", UNIPC_3M | KARRAS),
    "UniPC 3M Uniform": Mapped("UniPCMultistepScheduler", UNIPC_3M | UNIFORM),
    "UniPC Uniform": Mapped("UniPCMultistepScheduler", UNIFORM),
    "UniPC Uniform Karras": Mapped("UniPCMultistepScheduler", UNIFORM | KARRAS),
    "UniPC Uniform Exponential": Mapped("UniPCMultistepScheduler", UNIFORM | EXPONENTIAL),
    "UniPC Uniform Beta": Mapped("UniPCMultistepScheduler", UNIFORM | BETA),
}


@lru_cache(maxsize=1)
def scheduler_names() -> tuple[str, ...]:
    """The schema's enum, in its order."""
    return tuple(json.loads(SCHEMA.read_text())["properties"]["scheduler"]["enum"])


def check_scheduler(name: str) -> Mapped:
    entry = SCHEDULERS.get(name)
    if entry is None:
        raise UnsupportedScheduler(name, "it is not one of the format's scheduler names")
    if isinstance(entry, Refused):
        raise UnsupportedScheduler(name, entry.reason)
    return entry


def make_scheduler(name: str, base_config: dict):
    """A fresh diffusers scheduler for `name`, built on the checkpoint's scheduler config (betas, timesteps)."""
    import diffusers

    entry = check_scheduler(name)
    cls_name = base_config["_class_name"] if name == "Default" else entry.cls
    return getattr(diffusers, cls_name).from_config(base_config, **entry.overrides)


def scheduler_table_markdown() -> str:
    rows = ["| name | diffusers scheduler | settings on top of the checkpoint's config |", "|---|---|---|"]
    for name in scheduler_names():
        entry = SCHEDULERS[name]
        if isinstance(entry, Refused):
            rows.append(f"| {name} | refused | {entry.reason} |")
        else:
            settings = ", ".join(f"`{k}={v!r}`" for k, v in entry.overrides.items()) or "none"
            rows.append(f"| {name} | {entry.cls} | {settings} |")
    return "\n".join(rows)
