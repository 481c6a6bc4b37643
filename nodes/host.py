"""What nodes need from the running ComfyUI: model folders, the device, progress and interrupts."""

from __future__ import annotations

import os
from pathlib import Path


def full_path(kind: str, name: str) -> Path:
    import folder_paths

    return Path(folder_paths.get_full_path_or_raise(kind, name))


def file_list(kind: str) -> list[str]:
    import folder_paths

    return folder_paths.get_filename_list(kind)


def ensure_model_folder(kind: str) -> None:
    """Register models/<kind> (the registry's folder for it: ultralytics/bbox for ultralytics_bbox) for a kind ComfyUI
    has no key for (ipadapter), with its weight file extensions, as cubiq's IPAdapter_plus and Impact Pack do; a
    folder another pack registered is kept."""
    import folder_paths

    from ..sdxlkit.registry import FOLDERS

    if kind not in folder_paths.folder_names_and_paths:
        folder = os.path.join(folder_paths.models_dir, *FOLDERS.get(kind, (kind,))[0].split("/"))
        folder_paths.folder_names_and_paths[kind] = ([folder],
                                                     set(folder_paths.supported_pt_extensions))


def diffusers_folders() -> dict[str, Path]:
    """SDXL models saved as diffusers folders under ComfyUI's diffusers paths (folder_paths lists files only)."""
    import folder_paths

    found = {}
    for base in folder_paths.get_folder_paths("diffusers"):
        for root, _, files in os.walk(base, followlinks=True):
            if "model_index.json" in files:
                found[os.path.relpath(root, base)] = Path(root)
    return found


def models_root() -> Path:
    import folder_paths

    return Path(folder_paths.models_dir)


def torch_device() -> str:
    import comfy.model_management

    return str(comfy.model_management.get_torch_device())


def free_memory_for(spec) -> None:
    """Before the pack loads a model onto the GPU, ComfyUI's memory manager (which does not see the pack's models)
    unloads its own until the model's weights (its files' size; under lowvram the largest part brought in whole,
    the text encoders) and one image's working memory fit."""
    import comfy.model_management

    device = comfy.model_management.get_torch_device()
    if getattr(device, "type", "cpu") != "cuda":
        return
    from ..sdxlkit.loading.residency import working_bytes

    path = Path(spec.checkpoint)
    weights = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
    if spec.memory == "lowvram":
        weights *= 0.25  # the text encoders' share of an SDXL checkpoint (the UNet streams in layer by layer)
    comfy.model_management.free_memory(weights + working_bytes(1024, 1024, 2), device)


def progress_callback():
    """on_step(done, total) for the engine: moves ComfyUI's progress bar and raises if the user interrupted."""
    import comfy.model_management
    import comfy.utils

    bar = None

    def on_step(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = comfy.utils.ProgressBar(total)
        bar.update_absolute(done, total)
        comfy.model_management.throw_exception_if_processing_interrupted()

    return on_step


def release_models_with_comfy(release) -> None:
    """Make ComfyUI's "free memory" (POST /free {"unload_models": true}, the Manager's unload button) also release
    the engine's cached models: ComfyUI only frees models it manages and offers packs no hook, so its
    unload_all_models is wrapped once."""
    import comfy.model_management as mm

    original = mm.unload_all_models
    if getattr(original, "sdxlkit_release", False):
        return

    def unload_all_models(*args, **kwargs):
        release()
        return original(*args, **kwargs)

    unload_all_models.sdxlkit_release = True
    mm.unload_all_models = unload_all_models


_routes_added = False


def add_routes(*registrars) -> None:
    """Give each registrar ComfyUI's route table, once (there is no server when the nodes are imported in tests)."""
    global _routes_added
    try:
        import server
    except ImportError:
        return
    instance = getattr(server.PromptServer, "instance", None)
    if instance is None or _routes_added:
        return
    for register in registrars:
        register(instance.routes)
    _routes_added = True
