"""SDXL textual-inversion files: one .safetensors with `clip_l` [n, 768] and `clip_g` [n, 1280] (as civitai and
A1111 ship them). SD 1.x/2.x embeddings (one vector set, `emb_params` or `string_to_param`) are refused by name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError
from ..loading.lru import LruCache, file_key
from ..loading.state_dicts import read_state_dict

MAX_VECTORS = 75  # one prompt chunk: an embedding is never split across chunks
_OLD_KEYS = ("emb_params", "string_to_param")
_OLD_WIDTHS = {768: "SD 1.x", 1024: "SD 2.x"}


@dataclass(frozen=True)
class TextualInversion:
    """The vectors of one embedding file; `name` (the file name without extension) is the token of prompts."""

    name: str
    clip_l: Any  # torch.Tensor [n, D_l]
    clip_g: Any  # torch.Tensor [n, D_g]

    @property
    def vectors(self) -> int:
        return self.clip_l.shape[0]


def _old_format(path: Path, tensors: dict) -> ModelLoadError:
    widths = sorted({v.shape[-1] for k, v in tensors.items() if getattr(v, "ndim", 0) >= 1})
    model = next((_OLD_WIDTHS[w] for w in widths if w in _OLD_WIDTHS), "SD 1.x/2.x")
    return ModelLoadError(f"embedding {path.name}: this is an {model} textual inversion ({', '.join(sorted(tensors))[:80]}; "
                          f"vectors {widths[0] if widths else '?'} wide), not an SDXL one: SDXL embeddings have "
                          "'clip_l' and 'clip_g' tensors for its two text encoders")


def load_textual_inversion(path: Path) -> TextualInversion:
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ModelLoadError(f"embedding {path.name}: SDXL textual inversions are .safetensors files (clip_l + clip_g); "
                             f"{path.suffix or 'a file without extension'} is not read")
    tensors, _ = read_state_dict(path)
    if not {"clip_l", "clip_g"} <= set(tensors):
        if any(k.startswith(_OLD_KEYS) for k in tensors) or len(tensors) == 1:
            raise _old_format(path, tensors)
        raise ModelLoadError(f"embedding {path.name}: no 'clip_l' and 'clip_g' tensors (has {', '.join(sorted(tensors)[:5])}); "
                             "expected an SDXL textual inversion")
    clip_l, clip_g = (tensors[k].float() for k in ("clip_l", "clip_g"))
    if clip_l.ndim != 2 or clip_g.ndim != 2 or clip_l.shape[0] != clip_g.shape[0]:
        raise ModelLoadError(f"embedding {path.name}: clip_l {tuple(clip_l.shape)} and clip_g {tuple(clip_g.shape)} "
                             "must be [vectors, width] with the same number of vectors")
    if not 1 <= clip_l.shape[0] <= MAX_VECTORS:
        raise ModelLoadError(f"embedding {path.name}: {clip_l.shape[0]} vectors; allowed 1..{MAX_VECTORS} (one prompt chunk)")
    return TextualInversion(path.stem, clip_l, clip_g)


class EmbeddingFiles(LruCache):
    """Parsed embedding files, by (path, size, mtime)."""

    def get(self, path: Path) -> TextualInversion:
        return self.get_or_make(file_key(path, "embedding"), lambda: load_textual_inversion(path))


EMBEDDING_FILES = EmbeddingFiles(capacity=64)
