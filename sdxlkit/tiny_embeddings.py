"""Random SDXL textual inversions for tests, in the file layout civitai ships: one .safetensors with `clip_l`
[vectors, CLIP-L width] and `clip_g` [vectors, bigG width]; and an SD 1.x one (`emb_params` [vectors, 768])."""

from __future__ import annotations

from pathlib import Path

import torch


def random_embedding(components: dict, vectors: int, seed: int) -> dict[str, torch.Tensor]:
    """Vectors of the size of the token embeddings of `components`' text encoders, at their scale."""
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for key, name in (("clip_l", "text_encoder"), ("clip_g", "text_encoder_2")):
        width = components[name].get_input_embeddings().embedding_dim
        out[key] = torch.randn(vectors, width, generator=generator) * 0.1
    return out


def sd15_embedding(vectors: int, seed: int) -> dict[str, torch.Tensor]:
    return {"emb_params": torch.randn(vectors, 768, generator=torch.Generator().manual_seed(seed))}


def write_embedding(tensors: dict[str, torch.Tensor], path) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path
