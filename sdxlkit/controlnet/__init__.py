"""ControlNet guidance for SDXL with A1111's control modes, step windows and summed multi-ControlNet."""

from .part import Control, ControlNetPart
from .loading import CONTROLNETS, ControlNetCache, load_controlnet
from .scales import CONTROL_MODES, StepWindow, residual_scales, step_window

__all__ = ["Control", "ControlNetPart", "CONTROLNETS", "ControlNetCache", "load_controlnet", "CONTROL_MODES",
           "StepWindow", "residual_scales", "step_window"]
