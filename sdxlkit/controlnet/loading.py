"""SDXL ControlNet models from models/controlnet: diffusers folders, single files with diffusers keys, single files
in the original (ldm, "control_model.*") layout, and Control-LoRAs (made over the UNet they run with). The
architecture is read off the weights; what weights cannot tell (attention heads, time-embedding width) comes from the
SDXL UNet the ControlNet must match."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ModelLoadError
from ..loading.lru import LruCache, file_key
from ..loading.state_dicts import read_state_dict
from ..loading.streaming import stream_weights
from .control_lora import MARKER as CONTROL_LORA_MARKER
from .control_lora import control_lora_weights, is_control_lora

_UNION_MARKERS = ("task_embedding", "control_type_proj", "control_add_embedding", "transformer_layes")
_LDM_MARKERS = ("input_hint_block.", "control_model.input_hint_block.")


def _count(sd: dict, prefix: str) -> int:
    return len({k[len(prefix):].split(".", 1)[0] for k in sd if k.startswith(prefix)})


def _refuse_unsupported(path: Path, keys: list[str]) -> None:
    if any(marker in k for k in keys for marker in _UNION_MARKERS):
        raise ModelLoadError(f"{path.name}: a ControlNet-Union (multi-type) model; these are not supported. "
                             "Use a single-type SDXL ControlNet (canny, depth, openpose, ...).")


def _from_ldm_layout(path: Path, sd: dict) -> dict:
    from diffusers.loaders.single_file_utils import convert_controlnet_checkpoint

    prefix = "control_model." if any(k.startswith("control_model.") for k in sd) else ""
    layers_per_block = 2  # SDXL; the input-block numbering of the ldm layout depends on it
    sd = {k.removeprefix(prefix): v for k, v in sd.items()}
    try:
        converted = convert_controlnet_checkpoint(sd, {"layers_per_block": layers_per_block})
    except Exception as exc:
        raise ModelLoadError(f"{path.name}: cannot convert this ControlNet from the original layout ({exc})") from None
    for ldm, diffusers in (("label_emb.0.0.", "add_embedding.linear_1."), ("label_emb.0.2.", "add_embedding.linear_2.")):
        for name in ("weight", "bias"):  # SDXL's size/crop conditioning, which diffusers' converter leaves out
            if ldm + name in sd:
                converted[diffusers + name] = sd[ldm + name]
    return converted


def infer_config(sd: dict, unet_config) -> dict:
    """ControlNetModel config for a diffusers-key state dict. Raises KeyError when a key it needs is missing."""
    blocks = _count(sd, "down_blocks.")
    channels = [sd[f"down_blocks.{i}.resnets.0.conv1.weight"].shape[0] for i in range(blocks)]
    has_attention = [f"down_blocks.{i}.attentions.0.proj_in.weight" in sd for i in range(blocks)]
    depth = [max(1, _count(sd, f"down_blocks.{i}.attentions.0.transformer_blocks.")) for i in range(blocks)]
    embedding = [sd["controlnet_cond_embedding.conv_in.weight"].shape[0]]
    embedding += [sd[f"controlnet_cond_embedding.blocks.{i}.weight"].shape[0]
                  for i in range(1, _count(sd, "controlnet_cond_embedding.blocks."), 2)]
    cross = next(v.shape[1] for k, v in sd.items() if k.endswith("attn2.to_k.weight"))
    same_blocks = list(unet_config.block_out_channels) == channels
    heads = unet_config.attention_head_dim if same_blocks else [max(1, c // 64) for c in channels]
    config = {
        "in_channels": sd["conv_in.weight"].shape[1],
        "conditioning_channels": sd["controlnet_cond_embedding.conv_in.weight"].shape[1],
        "block_out_channels": channels,
        "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in has_attention],
        "mid_block_type": "UNetMidBlock2DCrossAttn" if "mid_block.attentions.0.proj_in.weight" in sd else None,
        "layers_per_block": _count(sd, "down_blocks.0.resnets."),
        "transformer_layers_per_block": depth,
        "attention_head_dim": heads,
        "cross_attention_dim": cross,
        "use_linear_projection": sd[next(k for k in sd if k.endswith("proj_in.weight"))].ndim == 2,
        "conditioning_embedding_out_channels": embedding,
        "norm_num_groups": unet_config.norm_num_groups,
        "flip_sin_to_cos": unet_config.flip_sin_to_cos,
        "freq_shift": unet_config.freq_shift,
        "upcast_attention": unet_config.upcast_attention,
    }
    if "add_embedding.linear_1.weight" in sd:
        config.update(addition_embed_type="text_time", addition_time_embed_dim=unet_config.addition_time_embed_dim,
                      projection_class_embeddings_input_dim=sd["add_embedding.linear_1.weight"].shape[1])
    return config


def _read(path: Path, unet) -> tuple[dict, dict | None]:
    """(state dict with diffusers keys, config or None)."""
    if path.is_dir():
        weights = [path / n for n in ("diffusion_pytorch_model.safetensors", "model.safetensors") if (path / n).is_file()]
        if not weights or not (path / "config.json").is_file():
            raise ModelLoadError(f"{path.name}: a ControlNet folder needs config.json and diffusion_pytorch_model.safetensors")
        sd, _ = read_state_dict(weights[0])
        return sd, json.loads((path / "config.json").read_text(encoding="utf-8"))
    sd, _ = read_state_dict(path)
    _refuse_unsupported(path, sorted(sd))
    if CONTROL_LORA_MARKER in sd:
        if not is_control_lora(path):
            raise ModelLoadError(f"{path.name}: a Control-LoRA outside a .safetensors file; convert it to one")
        sd = control_lora_weights(path.name, sd, unet)
    if any(k.startswith(_LDM_MARKERS) for k in sd):
        sd = _from_ldm_layout(path, sd)
    return sd, None


def load_controlnet(path: Path, unet, dtype, device):
    """The ControlNet in `path` for `unet` (whose weights a Control-LoRA is made over)."""
    from diffusers import ControlNetModel

    path, unet_config = Path(path), unet.config
    sd, config = _read(path, unet)
    _refuse_unsupported(path, sorted(sd))
    if "controlnet_cond_embedding.conv_in.weight" not in sd or "controlnet_mid_block.weight" not in sd:
        raise ModelLoadError(f"{path.name}: not a ControlNet (no controlnet_cond_embedding / controlnet_mid_block "
                             f"weights; found e.g. {', '.join(sorted(sd)[:3])})")
    try:
        config = config or infer_config(sd, unet_config)
        model = ControlNetModel.from_config(config)
    except (KeyError, StopIteration, ValueError, TypeError) as exc:
        raise ModelLoadError(f"{path.name}: cannot work out this ControlNet's architecture ({exc})") from None
    if config.get("cross_attention_dim") != unet_config.cross_attention_dim:
        raise ModelLoadError(f"{path.name}: a ControlNet for another model (text width {config.get('cross_attention_dim')}, "
                             f"this SDXL model has {unet_config.cross_attention_dim}); use an SDXL ControlNet")
    try:
        missing, unexpected = model.load_state_dict(sd, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise ModelLoadError(f"{path.name}: weights do not fit the ControlNet architecture they describe "
                             f"({str(exc).splitlines()[-1].strip()[:200]})") from None
    if missing or unexpected:
        odd = (missing or unexpected)[:3]
        raise ModelLoadError(f"{path.name}: weights do not match a ControlNet of this architecture "
                             f"({len(missing)} missing, {len(unexpected)} unexpected, e.g. {', '.join(odd)})")
    model = model.to(device=device)
    if dtype != model.dtype:
        model = model.to(dtype=dtype)
    return model.eval().requires_grad_(False)


class ControlNetCache(LruCache):
    """Loaded ControlNets by (file, dtype, device); the least recently used beyond `capacity` is dropped. A
    Control-LoRA is also keyed by the model and LoRA set it was made over."""

    def __init__(self, capacity: int = 3):
        super().__init__(capacity)

    def get(self, path: Path, components):
        """For `components`' UNet, dtype and device; with lowvram kept on the CPU and streamed onto the device
        layer by layer as it runs."""
        path, streamed = Path(path), components.residency.streams
        key = (*file_key(path, "ControlNet"), str(components.dtype), str(components.device),
               components.unet.config.cross_attention_dim, streamed)
        if is_control_lora(path):
            key += (components.source, components.lora_state.merged if components.lora_state is not None else ())
        return self.get_or_make(key, lambda: self._load(path, components, streamed))

    @staticmethod
    def _load(path: Path, components, streamed: bool):
        if not streamed:
            return load_controlnet(path, components.unet, components.dtype, components.device)
        model = load_controlnet(path, components.unet, components.dtype, "cpu")
        stream_weights(model, components.device)
        return model


CONTROLNETS = ControlNetCache()
