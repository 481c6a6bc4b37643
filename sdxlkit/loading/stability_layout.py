"""Diffusers-format SDXL state dicts -> one state dict in Stability's original single-file key layout.

This is the inverse of diffusers' single-file converters (convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint,
convert_ldm_clip_checkpoint, convert_open_clip_checkpoint): feeding our output to them gives back the input exactly.
Block numbering is derived from the keys present, so any block_out_channels / layers_per_block / transformer depth works.
"""

from __future__ import annotations

import torch

from ..errors import SdxlKitError
from .single_file import CLIP_G_PREFIX, CLIP_L_PREFIX, REFINER_CLIP_G_PREFIX, UNET_PREFIX, VAE_PREFIX

# Renames of the first names inside one module: (diffusers module prefix, ldm module prefix, {old: new}).
_UNET_RESNET = {"norm1.": "in_layers.0.", "conv1.": "in_layers.2.", "norm2.": "out_layers.0.",
                "conv2.": "out_layers.3.", "time_emb_proj.": "emb_layers.1.", "conv_shortcut.": "skip_connection."}
_VAE_RESNET = {"conv_shortcut.": "nin_shortcut."}
_VAE_ATTENTION = {"group_norm.": "norm.", "to_q.": "q.", "to_k.": "k.", "to_v.": "v.", "to_out.0.": "proj_out."}


def _count(sd: dict, prefix: str) -> int:
    """How many numbered children `prefix` has, e.g. _count(sd, "down_blocks.") == 3."""
    return len({k[len(prefix):].split(".", 1)[0] for k in sd if k.startswith(prefix)})


def _has(sd: dict, prefix: str) -> bool:
    return any(k.startswith(prefix) for k in sd)


def stability_key(key: str, modules: list[tuple[str, str, dict]]) -> str | None:
    """The key's name in Stability's layout, or None when no module of the list holds it."""
    for old, new, inner in modules:
        if key.startswith(old):
            rest = key[len(old):]
            for a, b in inner.items():
                if rest.startswith(a):
                    rest = b + rest[len(a):]
                    break
            return new + rest
    return None


def _rename(sd: dict, modules: list[tuple[str, str, dict]], out_prefix: str, what: str) -> dict[str, torch.Tensor]:
    renamed = {key: stability_key(key, modules) for key in sd}
    unmapped = [key for key, new in renamed.items() if new is None]
    if unmapped:
        raise SdxlKitError(f"cannot write the {what} in Stability's layout: {len(unmapped)} keys have no SDXL "
                           f"counterpart ({', '.join(unmapped[:3])}). Is it an SDXL base {what}?")
    return {out_prefix + new: sd[key] for key, new in renamed.items()}


def unet_modules(sd: dict) -> list[tuple[str, str, dict]]:
    modules = [("time_embedding.linear_1.", "time_embed.0.", {}), ("time_embedding.linear_2.", "time_embed.2.", {}),
               ("add_embedding.linear_1.", "label_emb.0.0.", {}), ("add_embedding.linear_2.", "label_emb.0.2.", {}),
               ("conv_in.", "input_blocks.0.0.", {}), ("conv_norm_out.", "out.0.", {}), ("conv_out.", "out.2.", {})]
    # LDM numbers the input/output blocks consecutively: one per resnet (with its attention), one per resampler.
    index = 1
    for b in range(_count(sd, "down_blocks.")):
        d = f"down_blocks.{b}."
        for j in range(_count(sd, d + "resnets.")):
            modules += [(f"{d}resnets.{j}.", f"input_blocks.{index}.0.", _UNET_RESNET),
                        (f"{d}attentions.{j}.", f"input_blocks.{index}.1.", {})]
            index += 1
        if _has(sd, d + "downsamplers."):
            modules.append((f"{d}downsamplers.0.conv.", f"input_blocks.{index}.0.op.", {}))
            index += 1
    for j in range(_count(sd, "mid_block.resnets.")):
        modules += [(f"mid_block.resnets.{j}.", f"middle_block.{2 * j}.", _UNET_RESNET),
                    (f"mid_block.attentions.{j}.", f"middle_block.{2 * j + 1}.", {})]
    index = 0
    for b in range(_count(sd, "up_blocks.")):
        u = f"up_blocks.{b}."
        for j in range(_count(sd, u + "resnets.")):
            modules += [(f"{u}resnets.{j}.", f"output_blocks.{index}.0.", _UNET_RESNET),
                        (f"{u}attentions.{j}.", f"output_blocks.{index}.1.", {})]
            index += 1
        if _has(sd, u + "upsamplers."):
            # the upsampler joins the block's last layer, after its attention if it has one
            slot = 2 if _has(sd, f"{u}attentions.{j}.") else 1
            modules.append((f"{u}upsamplers.0.conv.", f"output_blocks.{index - 1}.{slot}.conv.", {}))
    return modules


def _vae_modules(sd: dict) -> list[tuple[str, str, dict]]:
    modules = [(f"{name}.", f"{name}.", {}) for name in ("quant_conv", "post_quant_conv", "encoder.conv_in",
                                                         "encoder.conv_out", "decoder.conv_in", "decoder.conv_out")]
    modules += [("encoder.conv_norm_out.", "encoder.norm_out.", {}), ("decoder.conv_norm_out.", "decoder.norm_out.", {})]
    for side, blocks, level, sampler, ldm_sampler in (("encoder", "down_blocks", "down", "downsamplers", "downsample"),
                                                      ("decoder", "up_blocks", "up", "upsamplers", "upsample")):
        n = _count(sd, f"{side}.{blocks}.")
        for i in range(n):
            # LDM numbers decoder levels from the full-resolution end, diffusers in the order they run
            ldm = f"{side}.{level}.{i if side == 'encoder' else n - 1 - i}."
            d = f"{side}.{blocks}.{i}."
            modules += [(f"{d}resnets.{j}.", f"{ldm}block.{j}.", _VAE_RESNET) for j in range(_count(sd, d + "resnets."))]
            modules.append((f"{d}{sampler}.0.conv.", f"{ldm}{ldm_sampler}.conv.", {}))
        modules += [(f"{side}.mid_block.resnets.{j}.", f"{side}.mid.block_{j + 1}.", _VAE_RESNET)
                    for j in range(_count(sd, f"{side}.mid_block.resnets."))]
        modules.append((f"{side}.mid_block.attentions.0.", f"{side}.mid.attn_1.", _VAE_ATTENTION))
    return modules


def _open_clip(sd: dict, prefix: str) -> dict[str, torch.Tensor]:
    sd = {k.removeprefix("text_model."): v for k, v in sd.items() if not k.endswith("position_ids")}
    out = {
        "token_embedding.weight": sd.pop("embeddings.token_embedding.weight"),
        "positional_embedding": sd.pop("embeddings.position_embedding.weight"),
        "ln_final.weight": sd.pop("final_layer_norm.weight"),
        "ln_final.bias": sd.pop("final_layer_norm.bias"),
        "text_projection": sd.pop("text_projection.weight").T.contiguous(),
    }
    for n in range(_count(sd, "encoder.layers.")):
        src, dst = f"encoder.layers.{n}.", f"transformer.resblocks.{n}."
        for kind in ("weight", "bias"):
            out[f"{dst}attn.in_proj_{kind}"] = torch.cat([sd.pop(f"{src}self_attn.{x}_proj.{kind}") for x in "qkv"])
            for old, new in (("self_attn.out_proj", "attn.out_proj"), ("layer_norm1", "ln_1"),
                             ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")):
                out[f"{dst}{new}.{kind}"] = sd.pop(f"{src}{old}.{kind}")
    if sd:
        raise SdxlKitError(f"cannot write text_encoder_2 in Stability's layout: unexpected keys {sorted(sd)[:3]}")
    return {prefix + k: v for k, v in out.items()}


def _unet_and_vae(unet_sd: dict, vae_sd: dict) -> dict[str, torch.Tensor]:
    vae = _rename(vae_sd, _vae_modules(vae_sd), VAE_PREFIX, "VAE")
    for key, value in vae.items():
        if ".mid.attn_1." in key and value.ndim == 2:  # LDM's VAE attention uses 1x1 convolutions
            vae[key] = value[:, :, None, None]
    return {**_rename(unet_sd, unet_modules(unet_sd), UNET_PREFIX, "UNet"), **vae}


def diffusers_to_stability(unet_sd: dict, vae_sd: dict, text_encoder_sd: dict,
                           text_encoder_2_sd: dict) -> dict[str, torch.Tensor]:
    """One state dict with Stability's SDXL key names. Tensors are shared with the inputs where no reshaping is needed."""
    # transformers >= 5 dropped the "text_model." prefix of CLIPTextModel; the file always has it
    clip_l = {f"{CLIP_L_PREFIX}text_model.{k.removeprefix('text_model.')}": v for k, v in text_encoder_sd.items()}
    return {**_unet_and_vae(unet_sd, vae_sd), **clip_l, **_open_clip(text_encoder_2_sd, CLIP_G_PREFIX)}


def refiner_to_stability(unet_sd: dict, vae_sd: dict, text_encoder_2_sd: dict) -> dict[str, torch.Tensor]:
    """The SDXL refiner's single-file layout: OpenCLIP bigG alone, as conditioner.embedders.0."""
    return {**_unet_and_vae(unet_sd, vae_sd), **_open_clip(text_encoder_2_sd, REFINER_CLIP_G_PREFIX)}
