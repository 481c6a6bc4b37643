"""Model references: a task's `model`-style reference <-> the file name a node's combo widget holds.

`ConvertOptions.model_names`, where given, does both directions instead (inside ComfyUI: nodes/model_names.py,
through folder_paths). Without a models folder both directions copy the text as it is. With one (`ConvertOptions.models_dir`), a task
reference is resolved by `ModelsDir.resolve` and written as the file's name inside its kind's folder (checkpoints
that are diffusers folders as `diffusers/<folder>`, as the Loader lists them); a file name is turned back into
`ModelsDir.reference_for` (the mapped id where there is one, e.g. civitai:101055@128078, else the file name).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..registry import FOLDERS, ModelsDir
from .mapping import ConvertOptions, GraphConversionError

DIFFUSERS_PREFIX = "diffusers/"  # how SDXLKit_Loader lists diffusers folders among checkpoints


def file_name_for(ref: str, kind: str, options: ConvertOptions) -> str:
    """The widget value (file name) for a task reference."""
    if options.model_names is not None:
        return options.model_names.file_name_for(ref, kind)
    if options.models_dir is None:
        return ref
    root = Path(options.models_dir)
    path = Path(os.path.abspath(ModelsDir(root).resolve(ref, kind)))
    for folder in FOLDERS.get(kind, (kind,)):
        try:
            name = path.relative_to(os.path.abspath(root / folder)).as_posix()
        except ValueError:
            continue
        return DIFFUSERS_PREFIX + name if folder == "diffusers" else name
    raise GraphConversionError(
        f"{kind} model {ref!r} is {path}, outside {root / kind}: ComfyUI's loaders list only files in that folder; "
        "move the file there, or convert without a models folder to copy the reference as it is")


def reference_for(name: str, kind: str, options: ConvertOptions) -> str:
    """The task reference for a widget value (file name)."""
    if options.model_names is not None:
        return options.model_names.reference_for(name, kind)
    if options.models_dir is None:
        return name
    root = Path(options.models_dir)
    if kind == "checkpoints" and name.startswith(DIFFUSERS_PREFIX):
        path = root / "diffusers" / name.removeprefix(DIFFUSERS_PREFIX)
    else:
        path = root / kind / name
    if not path.exists():
        raise GraphConversionError(
            f"{kind} file {name!r} is not in {path.parent}; pass the models folder the graph was made with, "
            "or convert without one to copy the name as it is")
    return ModelsDir(root).reference_for(path, kind)
