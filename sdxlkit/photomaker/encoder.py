"""PhotoMaker V1's ID encoder (TencentARC photomaker/model.py, PhotoMakerIDEncoder): CLIP ViT-L/14 vision ->
pooled embedding -> `visual_projection` (to the first text encoder's width) and `visual_projection_2` (to the
second's), concatenated; the FuseModule MLPs fuse it with the class word's text embedding, one photo per class-token
copy. Built from the shipped ViT-L/14 config; the widths a file's tensors show (a smaller test model) take
precedence, heads are width / 64 as in ViT-L/14."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelLoadError
from ..loading.lru import LruCache, file_key
from .files import read_photomaker

CONFIG = Path(__file__).resolve().parent.parent / "data" / "photomaker" / "clip_vit_l14_vision.json"
HEAD_WIDTH = 64
_LAYER = re.compile(r"vision_model\.encoder\.layers\.(\d+)\.")


class MLP(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int, use_residual: bool = True):
        super().__init__()
        self.layernorm = nn.LayerNorm(in_dim)
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, out_dim)
        self.use_residual = use_residual
        self.act_fn = nn.GELU()

    def forward(self, x):
        y = self.fc2(self.act_fn(self.fc1(self.layernorm(x))))
        return y + x if self.use_residual else y


class FuseModule(nn.Module):
    def __init__(self, embed_dim: int):
        super().__init__()
        self.mlp1 = MLP(embed_dim * 2, embed_dim, embed_dim, use_residual=False)
        self.mlp2 = MLP(embed_dim, embed_dim, embed_dim, use_residual=True)
        self.layer_norm = nn.LayerNorm(embed_dim)

    def forward(self, prompt_embeds, id_embeds):
        stacked = self.mlp1(torch.cat([prompt_embeds, id_embeds], dim=-1)) + prompt_embeds
        return self.layer_norm(self.mlp2(stacked))


class IdEncoder(nn.Module):
    def __init__(self, config, text_width_2: int):
        from transformers import CLIPVisionModelWithProjection

        super().__init__()
        clip = CLIPVisionModelWithProjection(config)
        self.vision_model, self.visual_projection = clip.vision_model, clip.visual_projection
        self.visual_projection_2 = nn.Linear(config.hidden_size, text_width_2, bias=False)
        self.fuse_module = FuseModule(config.projection_dim + text_width_2)

    def id_embeds(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[photos, 3, 224, 224] -> [photos, D1 + D2]."""
        shared = self.vision_model(pixel_values)[1]  # pooled (post-LayerNorm CLS)
        return torch.cat([self.visual_projection(shared), self.visual_projection_2(shared)], dim=-1)

    def forward(self, pixel_values: torch.Tensor, prompt_embeds: torch.Tensor, class_mask: torch.Tensor) -> torch.Tensor:
        """prompt_embeds [1, L, D1 + D2] with the class-token copies (class_mask [L], one per photo, in photo
        order) replaced by the fusion of their text embedding and the photo's embedding."""
        id_embeds = self.id_embeds(pixel_values.to(self.visual_projection.weight.dtype)).to(prompt_embeds.dtype)
        out = prompt_embeds.clone()
        out[0, class_mask] = self.fuse_module(prompt_embeds[0, class_mask], id_embeds).to(out.dtype)
        return out


def shipped_config() -> dict:
    return json.loads(CONFIG.read_text(encoding="utf-8"))


def vision_config(state: dict, path: Path):
    """The shipped ViT-L/14 config with the widths, depth and resolution this file's tensors have."""
    from transformers import CLIPVisionConfig

    try:
        hidden = state["vision_model.embeddings.class_embedding"].shape[0]
        patch = state["vision_model.embeddings.patch_embedding.weight"].shape[-1]
        positions = state["vision_model.embeddings.position_embedding.weight"].shape[0]
        values = shipped_config() | {
            "hidden_size": hidden, "num_attention_heads": max(1, hidden // HEAD_WIDTH), "patch_size": patch,
            "image_size": patch * round((positions - 1) ** 0.5),
            "intermediate_size": state["vision_model.encoder.layers.0.mlp.fc1.weight"].shape[0],
            "num_hidden_layers": 1 + max(int(m.group(1)) for k in state if (m := _LAYER.match(k))),
            "projection_dim": state["visual_projection.weight"].shape[0]}
        return CLIPVisionConfig(**values), state["visual_projection_2.weight"].shape[0]
    except (KeyError, ValueError, IndexError) as exc:
        raise ModelLoadError(f"{path.name}: its id_encoder is not PhotoMaker V1's CLIP ViT-L/14 ID encoder "
                             f"(no {exc})") from None


def build_encoder(path: Path, text_widths: tuple[int, int], dtype=torch.float32, device="cpu") -> IdEncoder:
    from accelerate import init_empty_weights

    path = Path(path)
    state = {k: v for k, v in read_photomaker(path).id_encoder.items() if not k.endswith("position_ids")}
    config, width_2 = vision_config(state, path)
    if (config.projection_dim, width_2) != tuple(text_widths):
        raise ModelLoadError(f"{path.name}: its ID embeddings are {config.projection_dim}+{width_2} wide, the text "
                             f"encoders {text_widths[0]}+{text_widths[1]}; is it a PhotoMaker for SDXL?")
    with init_empty_weights():
        encoder = IdEncoder(config, width_2)
    expected = encoder.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or reshaped:
        raise ModelLoadError(f"{path.name}: its id_encoder does not fit PhotoMaker V1's ID encoder ("
                             f"missing {missing[:3]}, unexpected {unexpected[:3]}, other shape {reshaped[:3]})")
    encoder.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True, assign=True)
    return encoder.to(device).eval().requires_grad_(False)


class IdEncoderCache(LruCache):
    """ID encoders by (file, dtype, device): switching photos reuses the loaded encoder."""

    def __init__(self, capacity: int = 2):
        super().__init__(capacity)

    def get(self, path: Path, text_widths: tuple[int, int], dtype, device) -> IdEncoder:
        key = (*file_key(path, "PhotoMaker file"), str(dtype), str(device))
        return self.get_or_make(key, lambda: build_encoder(path, text_widths, dtype, device))


ID_ENCODERS = IdEncoderCache()


def pixel_values(images) -> torch.Tensor:
    """The reference's preprocessing: transformers' CLIPImageProcessor() (shortest side to 224 bicubic, center crop
    224, CLIP mean/std)."""
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor()([image.convert("RGB") for image in images], return_tensors="pt").pixel_values
