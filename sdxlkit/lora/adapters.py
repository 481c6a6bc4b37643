"""Which LoRAs are active on a loaded SDXL model: adapters stay resident and are switched by weight, never fused.

The base weights are never modified (no fuse/unfuse), so switching sets any number of times cannot drift, and a run
without LoRAs (or with all weights 0) disables the adapter layers and is bit-identical to the base model.
"""

from __future__ import annotations

import contextlib
import warnings
from collections import OrderedDict
from pathlib import Path

from ..errors import ModelLoadError
from . import files as lora_files
from .files import LoraFile, LoraFileCache

RESIDENT_ADAPTERS = 8  # adapters kept in the model between runs; the least recently used beyond this are deleted


class ResidentLoras:
    """The adapters loaded into one model: file key -> adapter name, least recently used first."""

    def __init__(self):
        self.names: OrderedDict[tuple, str] = OrderedDict()
        self.enabled = False
        self._counter = 0

    def new_name(self) -> str:
        self._counter += 1
        return f"sdxlkit_{self._counter}"


def _pipeline(components):
    """A pipeline object over the components, only for diffusers' LoRA methods (they act on the shared modules)."""
    from diffusers import StableDiffusionXLPipeline

    return StableDiffusionXLPipeline(**components.modules(), scheduler=None, add_watermarker=False)


def _injected_layers(components, adapter: str) -> int:
    return sum(1 for model in (components.unet, components.text_encoder, components.text_encoder_2)
               for module in model.modules() if adapter in getattr(module, "lora_A", {}))


@contextlib.contextmanager
def _quiet_loading():
    """transformers prints a table of the adapter keys it "misses" and PEFT warns that a model holds several
    adapters: both are how resident adapters work, not problems."""
    from transformers.utils import logging as transformers_logging

    level = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Already found a `peft_config`")
            warnings.filterwarnings("ignore", message=r"Adapter .* was active which is now deleted")
            yield
    finally:
        transformers_logging.set_verbosity(level)


def _load(pipe, components, lora: LoraFile, adapter: str) -> None:
    common = dict(network_alphas=lora.network_alphas, adapter_name=adapter, metadata=lora.metadata,
                  low_cpu_mem_usage=False)
    try:
        with _quiet_loading():
            _load_into_models(pipe, components, lora, common)
    except Exception as exc:
        _delete(pipe, adapter)
        raise ModelLoadError(f"{lora.name}: does not fit this SDXL model ({str(exc).splitlines()[0][:300]}). "
                             "Is it a LoRA for SDXL?") from None
    found, expected = _injected_layers(components, adapter), lora.layer_count()
    if found != expected:
        _delete(pipe, adapter)
        raise ModelLoadError(f"{lora.name}: {expected - found} of its {expected} layers have no counterpart in this "
                             "SDXL model; is it a LoRA for another architecture?")


def _load_into_models(pipe, components, lora: LoraFile, common: dict) -> None:
    pipe.load_lora_into_unet(dict(lora.state_dict), unet=components.unet, **common)
    for encoder, prefix in ((components.text_encoder, "text_encoder"), (components.text_encoder_2, "text_encoder_2")):
        pipe.load_lora_into_text_encoder(dict(lora.state_dict), text_encoder=encoder, prefix=prefix, **common)


def _delete(pipe, adapter: str) -> None:
    adapters = {a for names in pipe.get_list_adapters().values() for a in names}
    if adapter in adapters:
        with _quiet_loading():
            pipe.delete_adapters([adapter])


def _wanted(loras: list[tuple[Path, float]], files: LoraFileCache) -> OrderedDict[tuple, tuple[Path, float]]:
    """File key -> (path, summed weight), zero weights dropped (a LoRA at 0 is the base model)."""
    wanted: OrderedDict[tuple, tuple[Path, float]] = OrderedDict()
    for path, weight in loras:
        key = files.key(path)
        previous = wanted.get(key, (path, 0.0))[1]
        wanted[key] = (Path(path), previous + float(weight))
    return OrderedDict((k, v) for k, v in wanted.items() if v[1] != 0.0)


def apply_loras(components, loras: list[tuple[Path, float]], files: LoraFileCache | None = None) -> None:
    """Make exactly `loras` (path, weight) active on `components` (UNet and both text encoders), in place."""
    import torch

    # Adapter tensors made under inference mode (ComfyUI runs nodes in it) could not be re-flagged by PEFT later.
    with torch.inference_mode(False), torch.no_grad():
        _apply(components, loras, files or lora_files.LORA_FILES)


def _apply(components, loras: list[tuple[Path, float]], files: LoraFileCache) -> None:
    if components.lora_state is None:
        components.lora_state = ResidentLoras()
    resident: ResidentLoras = components.lora_state
    wanted = _wanted(loras, files)
    if not wanted and not resident.enabled:
        return
    pipe = _pipeline(components)
    if not wanted:
        pipe.disable_lora()
        resident.enabled = False
        return
    for key, (path, _) in wanted.items():
        if key not in resident.names:
            adapter = resident.new_name()
            _load(pipe, components, files.get(path, components.unet.config), adapter)
            resident.names[key] = adapter
        resident.names.move_to_end(key)
    for key in [k for k in resident.names if k not in wanted][:max(0, len(resident.names) - RESIDENT_ADAPTERS)]:
        with _quiet_loading():
            pipe.delete_adapters([resident.names.pop(key)])
    pipe.enable_lora()
    pipe.set_adapters([resident.names[k] for k in wanted], [weight for _, weight in wanted.values()])
    resident.enabled = True
