"""kohya/LyCORIS layer names of a loaded SDXL model: `lora_unet_<path>` in diffusers' or in Stability's block
naming (SDXL trainers write the latter), `lora_te1_`/`lora_te2_` + the CLIP path, each with "." written as "_"."""

from __future__ import annotations

from ..loading.stability_layout import stability_key, unet_modules

ENCODER_PREFIXES = (("text_encoder", "lora_te1_"), ("text_encoder_2", "lora_te2_"))


def _kohya(prefix: str, path: str) -> str:
    return prefix + path.replace(".", "_")


def kohya_layers(components) -> dict[str, tuple[str, object]]:
    """kohya name -> (component, module), for every module of the UNet and both text encoders with a weight."""
    table: dict[str, tuple[str, object]] = {}
    unet = components.unet
    blocks = unet_modules(dict(unet.state_dict()))
    for path, module in unet.named_modules():
        if getattr(module, "weight", None) is None:
            continue
        table[_kohya("lora_unet_", path)] = ("unet", module)
        stability = stability_key(path + ".", blocks)
        if stability is not None:
            table[_kohya("lora_unet_", stability.removesuffix("."))] = ("unet", module)
    for component, prefix in ENCODER_PREFIXES:
        for path, module in getattr(components, component).named_modules():
            if getattr(module, "weight", None) is not None:
                # transformers 5 dropped the "text_model." prefix of CLIPTextModel; files have it on the transformer's
                # layers, and not on bigG's text_projection, which sits beside the transformer
                for name in {path, "text_model." + path.removeprefix("text_model.")}:
                    table[_kohya(prefix, name)] = (component, module)
    return table
