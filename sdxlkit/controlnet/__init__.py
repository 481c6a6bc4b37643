"""ControlNet guidance for SDXL with A1111's control modes, step windows (sampling.window) and summed multi-ControlNet."""

from .part import Control, ControlNetPart
from .loading import CONTROLNETS, ControlNetCache, load_controlnet
from .scales import CONTROL_MODES, residual_scales

__all__ = ["Control", "ControlNetPart", "CONTROLNETS", "ControlNetCache", "load_controlnet", "CONTROL_MODES",
           "residual_scales"]
