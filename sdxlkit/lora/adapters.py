"""Which LoRAs are applied to a loaded SDXL model, switched without reading files again and without drift.

Each LoRA file is loaded once into the model as a PEFT adapter and stays resident (disabled: its layers never run).
Applying a set writes original + weighted low-rank products into the base weights of the layers it touches, as
ComfyUI patches weights, so sampling costs the same as without LoRAs. The original weight of every layer a set ever
touched is kept beside it (same device: restoring is a local copy; on a GPU this costs the memory of the touched
layers, for SDXL's attention projections 37% of the UNet): switching never subtracts, so the base model
comes back bit for bit however many times sets change, and a run without LoRAs (or with all weights 0) is exactly
the base model.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import ModelLoadError
from . import files as lora_files
from .files import EmbeddedLora, LoraFile, LoraFileCache
from .kohya_names import kohya_layers
from .patch_files import PatchFile

LoraSource = Path | EmbeddedLora  # a LoRA file, or a LoRA inside another model file

RESIDENT_ADAPTERS = 8  # adapters kept in the model between runs; the least recently used beyond this are deleted


@dataclass(frozen=True)
class LayerChange:
    """One adapter's change to one parameter ("weight" or "bias") of one layer: `add(merged, weight)` applies it,
    at that LoRA weight, to the float32 parameter being merged, in place."""

    layer: object
    param: str
    add: Callable


class ResidentLoras:
    """The adapters loaded into one model (file key -> adapter name, least recently used first), the set merged
    into its parameters now, the parameters it changed, and the original of every parameter any set ever changed."""

    def __init__(self):
        self.names: OrderedDict[tuple, str] = OrderedDict()
        self.merged: tuple = ()
        self.changed: list[tuple] = []  # (layer, parameter name) holding merged values now
        self.originals: dict[tuple, object] = {}  # (id(layer), parameter name) -> original, beside it on its device
        self.layers: dict[str, list[LayerChange]] = {}  # adapter name -> its changes
        self.peft: set[str] = set()  # adapters loaded into the model by PEFT (the others are weight patches)
        self._counter = 0

    def new_name(self) -> str:
        self._counter += 1
        return f"sdxlkit_{self._counter}"


_PEFT_PARTS = (".lora_A.", ".lora_B.", ".lora_magnitude_vector.", ".lora_embedding_A.", ".lora_embedding_B.")


def base_state_dict(model) -> dict:
    """The model's parameters under their own names, as they are now (LoRAs merged): PEFT's adapter weights left
    out and its `base_layer` wrapping undone."""
    return {k.replace(".base_layer.", "."): v for k, v in model.state_dict().items()
            if not any(part in k for part in _PEFT_PARTS)}


def _pipeline(components):
    """A pipeline object over the components, only for diffusers' LoRA methods (they act on the shared modules)."""
    from diffusers import StableDiffusionXLPipeline

    return StableDiffusionXLPipeline(**components.modules(), scheduler=None, add_watermarker=False)


def _injected_layers(components, adapter: str) -> list:
    return [module for model in (components.unet, components.text_encoder, components.text_encoder_2)
            for module in model.modules() if adapter in getattr(module, "lora_A", {})]


@contextlib.contextmanager
def _quiet_loading():
    """transformers prints a progress bar and a table of the adapter keys it "misses", and PEFT warns that a model
    holds several adapters: all of it is how resident adapters work, not a problem to report."""
    from transformers.utils import logging as transformers_logging

    level, bars = transformers_logging.get_verbosity(), transformers_logging.is_progress_bar_enabled()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Already found a `peft_config`")
            warnings.filterwarnings("ignore", message=r"Adapter .* was active which is now deleted")
            yield
    finally:
        transformers_logging.set_verbosity(level)
        if bars:
            transformers_logging.enable_progress_bar()


def _load(pipe, components, lora: LoraFile, adapter: str) -> list[LayerChange]:
    """Load the file into PEFT as adapter `adapter`; returns its changes (the layers that hold it)."""
    common = dict(network_alphas=lora.network_alphas, adapter_name=adapter, metadata=lora.metadata,
                  low_cpu_mem_usage=True)
    try:
        with _quiet_loading():
            _load_into_models(pipe, components, lora, common)
    except Exception as exc:
        _delete(pipe, adapter)
        raise ModelLoadError(f"{lora.name}: does not fit this SDXL model ({str(exc).splitlines()[0][:300]}). "
                             "Is it a LoRA for SDXL?") from None
    layers, expected = _injected_layers(components, adapter), lora.layer_count()
    if len(layers) != expected:
        _delete(pipe, adapter)
        raise ModelLoadError(f"{lora.name}: {expected - len(layers)} of its {expected} layers have no counterpart in "
                             "this SDXL model; is it a LoRA for another architecture?")
    pipe.disable_lora()  # a loaded adapter is active; adapters only hold weights, the merged base layers do the work
    return [LayerChange(module.base_layer, "weight", functools.partial(_add_product, module, adapter))
            for module in layers]


def _bind(components, lora: PatchFile) -> list[LayerChange]:
    """The file's weight patches on the layers they name; refused whole when a layer is missing or a shape differs."""
    table = kohya_layers(components)
    missing = [layer for layer in lora.patches if layer not in table]
    if missing:
        raise ModelLoadError(f"{lora.name}: {len(missing)} of its {len(lora.patches)} layers have no counterpart in "
                             f"this SDXL model (e.g. {missing[0]}); is it a LyCORIS file for another architecture?")
    changes = []
    for layer, patches in lora.patches.items():
        module = table[layer][1]
        if hasattr(module, "get_base_layer"):  # a layer PEFT wrapped for a LoRA: patch the layer itself
            module = module.get_base_layer()
        for param, patch in patches.items():
            target = getattr(module, param, None)
            try:
                size = patch.shape_numel()
            except RuntimeError as exc:  # factors whose shapes do not fit each other
                raise ModelLoadError(f"{lora.name}: layer {layer}: its factors do not fit each other "
                                     f"({str(exc).splitlines()[0][:200]})") from None
            if target is None or target.numel() != size:
                have = "none" if target is None else f"{tuple(target.shape)}"
                raise ModelLoadError(f"{lora.name}: layer {layer} changes a {param} of {size} values; the model's "
                                     f"is {have}. Is it a LyCORIS file for SDXL?")
            changes.append(LayerChange(module, param, patch.apply))
    return changes


def _load_into_models(pipe, components, lora: LoraFile, common: dict) -> None:
    pipe.load_lora_into_unet(dict(lora.state_dict), unet=components.unet, **common)
    for encoder, prefix in ((components.text_encoder, "text_encoder"), (components.text_encoder_2, "text_encoder_2")):
        if any(k.startswith(prefix + ".") for k in lora.state_dict):  # UNet-only LoRAs (PhotoMaker's): no warning
            pipe.load_lora_into_text_encoder(dict(lora.state_dict), text_encoder=encoder, prefix=prefix, **common)


def _delete(pipe, adapter: str) -> None:
    adapters = {a for names in pipe.get_list_adapters().values() for a in names}
    if adapter in adapters:
        with _quiet_loading():
            pipe.delete_adapters([adapter])


def _wanted(loras: list[tuple[LoraSource, float]], files: LoraFileCache) -> OrderedDict[tuple, tuple[LoraSource, float]]:
    """File key -> (source, summed weight), zero weights dropped (a LoRA at 0 is the base model)."""
    wanted: OrderedDict[tuple, tuple[LoraSource, float]] = OrderedDict()
    for source, weight in loras:
        key = files.key(source)
        previous = wanted.get(key, (source, 0.0))[1]
        wanted[key] = (source if isinstance(source, EmbeddedLora) else Path(source), previous + float(weight))
    return OrderedDict((k, v) for k, v in wanted.items() if v[1] != 0.0)


def apply_loras(components, loras: list[tuple[LoraSource, float]], files: LoraFileCache | None = None) -> None:
    """Make exactly `loras` (path or EmbeddedLora, weight) active on `components` (UNet and both text encoders), in place."""
    import torch

    # Always in inference mode, as ComfyUI runs nodes: weights made or changed in it cannot be touched outside it.
    with torch.inference_mode():
        _apply(components, loras, files or lora_files.LORA_FILES)


def _original(resident: ResidentLoras, layer, param: str):
    if (id(layer), param) not in resident.originals:
        resident.originals[id(layer), param] = getattr(layer, param).detach().clone()
    return resident.originals[id(layer), param]


def _add_product(module, name: str, merged, weight: float) -> None:
    """merged += weight x scaling x (B @ A), in place; one fused matmul for linear layers."""
    import torch

    a, b = module.lora_A[name].weight, module.lora_B[name].weight
    if a.dim() == 2 and not getattr(module, "fan_in_fan_out", False):
        merged.addmm_(b.to(torch.float32), a.to(torch.float32), alpha=weight * module.scaling[name])
    else:  # convolutions (LoCon): PEFT knows their shapes
        merged.add_(module.get_delta_weight(name).to(torch.float32), alpha=weight)


def _merge(resident: ResidentLoras, adapters: list[tuple[str, float]]) -> None:
    """Every parameter an adapter of the set touches gets its original with each adapter's change applied in order
    (a LoRA adds weight x scaling x (B @ A)), computed in float32 and cast once, as ComfyUI does; every parameter the
    previous set changed and this one does not gets its original back. Only copies of originals are written:
    nothing is ever subtracted."""
    import torch

    touched: dict[tuple, tuple] = {}
    for name, weight in adapters:
        for change in resident.layers[name]:
            entry = touched.setdefault((id(change.layer), change.param), (change.layer, change.param, []))
            entry[2].append((change, weight))
    changed = []
    for layer, param, present in touched.values():
        merged = _original(resident, layer, param).to(torch.float32, copy=True)
        for change, weight in present:
            change.add(merged, weight)
        getattr(layer, param).copy_(merged)
        changed.append((layer, param))
    kept = {(id(layer), param) for layer, param in changed}
    for layer, param in resident.changed:
        if (id(layer), param) not in kept:
            getattr(layer, param).copy_(resident.originals[id(layer), param])
    resident.changed = changed


def _evict(components, resident: ResidentLoras, wanted, pipe) -> None:
    """Drop the least recently used adapters outside `wanted` beyond RESIDENT_ADAPTERS."""
    stale = [k for k in resident.names if k not in wanted][:max(0, len(resident.names) - RESIDENT_ADAPTERS)]
    for key in stale:
        adapter = resident.names.pop(key)
        resident.layers.pop(adapter)
        if adapter in resident.peft:
            resident.peft.discard(adapter)
            pipe = pipe or _pipeline(components)
            _delete(pipe, adapter)


def _apply(components, loras: list[tuple[LoraSource, float]], files: LoraFileCache) -> None:
    if components.lora_state is None:
        components.lora_state = ResidentLoras()
    resident: ResidentLoras = components.lora_state
    wanted = _wanted(loras, files)
    if tuple(wanted.items()) == resident.merged:
        return
    pipe = None
    for key, (path, _) in wanted.items():
        if key not in resident.names:
            adapter, lora = resident.new_name(), files.get(path, components.unet.config)
            if isinstance(lora, PatchFile):
                resident.layers[adapter] = _bind(components, lora)
            else:
                pipe = pipe or _pipeline(components)
                resident.layers[adapter] = _load(pipe, components, lora, adapter)
                resident.peft.add(adapter)
            resident.names[key] = adapter
        resident.names.move_to_end(key)
    _evict(components, resident, wanted, pipe)
    _merge(resident, [(resident.names[k], weight) for k, (_, weight) in wanted.items()])
    resident.merged = tuple(wanted.items())
