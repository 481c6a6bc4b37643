"""Where model references point: canonical ids (civitai:101055@128078) and local names, resolved to files.

A models folder has one subfolder per kind, named as in ComfyUI (checkpoints, vae, loras, controlnet, ipadapter,
upscale_models, ...). The file `sdxlkit_models.json` in it maps ids to paths relative to the folder, e.g.
    {"civitai:101055@128078": "checkpoints/sd_xl_base_1.0_0.9vae.safetensors"}
and overrides the built-in defaults below. Later features use the same registry for their kinds.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelNotFound, SdxlKitError

MAPPING_FILE = "sdxlkit_models.json"
DEFAULT_IDS = {
    "civitai:101055@128078": "checkpoints/sd_xl_base_1.0_0.9vae.safetensors",
    "civitai:101055@128080": "checkpoints/sd_xl_refiner_1.0.safetensors",  # stabilityai/stable-diffusion-xl-refiner-1.0
    "runware:101055@128080": "checkpoints/sd_xl_refiner_1.0.safetensors",
    "runware:20@1": "controlnet/controlnet-canny-sdxl-1.0.safetensors",  # diffusers/controlnet-canny-sdxl-1.0
    # h94/IP-Adapter sdxl_models, under the names cubiq's README gives them
    "runware:55@1": "ipadapter/ip-adapter_sdxl.safetensors",
    "runware:55@2": "ipadapter/ip-adapter-plus_sdxl_vit-h.safetensors",
    "runware:55@3": "ipadapter/ip-adapter-plus-face_sdxl_vit-h.safetensors",
    "runware:55@4": "ipadapter/ip-adapter_sdxl_vit-h.safetensors",
    # hiresFix.model: the upscaler files under their usual names (a mapped .pth may also be there as .safetensors)
    "runware:504@1": "upscale_models/RealESRGAN_x4plus.pth",
    "runware:realesrgan@anime-6b": "upscale_models/RealESRGAN_x4plus_anime_6B.pth",
    "runware:esrgan@animesharp": "upscale_models/4x-AnimeSharp.pth",
    "runware:esrgan@ultrasharp": "upscale_models/4x-UltraSharp.pth",
}
# The face detailer's detector (the task has no field for it): this file of ultralytics/bbox (Impact Pack's folder),
# or what sdxlkit_models.json maps this name to.
FACE_DETECTOR = ("face_yolov8m.pt", "ultralytics_bbox")
# The CLIP vision encoder (a file name in clip_vision/, resolvable like any reference) each IP-Adapter id needs.
VIT_BIGG, VIT_H = "CLIP-ViT-bigG-14-laion2B-39B-b160k.safetensors", "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"
IMAGE_ENCODERS = {"runware:55@1": VIT_BIGG, "runware:55@2": VIT_H, "runware:55@3": VIT_H, "runware:55@4": VIT_H}
WEIGHT_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
# Folders searched for each kind of model reference: checkpoints may also be diffusers folders (ComfyUI's models/diffusers).
FOLDERS = {"checkpoints": ("checkpoints", "diffusers"), "ultralytics_bbox": ("ultralytics/bbox",)}
# A canonical id such as civitai:101055@128078 or runware:20@1 (a name, never a path).
MODEL_ID = re.compile(r"[A-Za-z][\w.-]*:[^/\\]+")


def mapped_file(path: Path) -> Path | None:
    """The file a mapping names, or the same name with another weight suffix (a .pth converted to .safetensors)."""
    return next((p for p in (path, *(path.with_suffix(s) for s in WEIGHT_SUFFIXES)) if p.exists()), None)


@dataclass(frozen=True)
class ModelsDir:
    root: Path

    def mapping(self) -> dict[str, str]:
        mapping = dict(DEFAULT_IDS)
        path = self.root / MAPPING_FILE
        if path.is_file():
            try:
                user = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise SdxlKitError(f"{path}: not valid JSON ({exc})") from None
            if not isinstance(user, dict) or not all(isinstance(v, str) for v in user.values()):
                raise SdxlKitError(f"{path}: must be a JSON object mapping model ids to relative file paths")
            mapping.update(user)
        return mapping

    def resolve(self, ref: str, kind: str = "checkpoints") -> Path:
        """A file or diffusers folder for `ref`: a mapped id, an absolute path, or a name inside root/kind."""
        mapping = self.mapping()
        mapping_file = self.root / MAPPING_FILE
        if ref in mapping:
            path = self.root / mapping[ref]
            if (found := mapped_file(path)) is not None:
                return found
            source = mapping_file if ref not in DEFAULT_IDS or mapping[ref] != DEFAULT_IDS[ref] else "the built-in mapping"
            raise ModelNotFound(f"model {ref!r} is mapped by {source} to {path}, which does not exist; put the file "
                                f"there, or map the id to another file in {mapping_file}")
        candidate = Path(ref).expanduser()
        if candidate.is_absolute():
            if candidate.exists():
                return candidate
            raise ModelNotFound(f"model file {candidate} does not exist")
        if MODEL_ID.fullmatch(ref):
            raise ModelNotFound(f"model id {ref!r} is not mapped to a file; map it in {mapping_file} like "
                                f'{{"{ref}": "{kind}/<file name>"}}, or name a file in {self.root / kind} instead')
        folders = [self.root / f for f in FOLDERS.get(kind, (kind,))]
        for folder in folders:
            for name in (ref, *(ref + s for s in WEIGHT_SUFFIXES)):
                path = folder / name
                if path.exists():
                    return path
        raise ModelNotFound(f"model {ref!r} not found in {' or '.join(map(str, folders))}; put the file there "
                            f"(the models folder is {self.root})")

    def reference_for(self, path: Path, kind: str = "checkpoints") -> str:
        """The reference to write into a task for a local file: its mapped id if there is one, else its name."""
        path = Path(os.path.abspath(path))
        for model_id, rel in self.mapping().items():
            if (self.root / rel).exists() and (self.root / rel).resolve() == path.resolve():
                return model_id
        for folder in FOLDERS.get(kind, (kind,)):
            try:
                return str(path.relative_to(os.path.abspath(self.root / folder)))
            except ValueError:
                continue
        return str(path)
