"""Stand-in for ComfyUI's folder_paths: folders under a root the tests set with set_root()."""

import os
from pathlib import Path

models_dir = ""
_output = ""
_extra: dict[str, list[str]] = {}  # folders added as extra_model_paths.yaml adds them
folder_names_and_paths = {}
supported_pt_extensions = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}


def set_root(root):
    global models_dir, _output
    models_dir = str(Path(root) / "models")
    _output = str(Path(root) / "output")
    _extra.clear()
    folder_names_and_paths.clear()  # kinds packs registered under the old root


def get_folder_paths(kind):
    registered = folder_names_and_paths.get(kind, ([str(Path(models_dir) / kind)], set()))[0]
    return [*registered, *_extra.get(kind, [])]


def add_model_folder_path(kind, path, is_default=False):
    _extra.setdefault(kind, []).append(str(path))


def get_filename_list(kind):
    names = set()
    for folder in map(Path, get_folder_paths(kind)):
        if folder.is_dir():
            names.update(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return sorted(names)


def get_full_path(kind, name):
    for folder in get_folder_paths(kind):
        if (Path(folder) / name).is_file():
            return str(Path(folder) / name)
    return None


def get_full_path_or_raise(kind, name):
    path = get_full_path(kind, name)
    if path is None:
        raise FileNotFoundError(f"Model in folder '{kind}' with filename '{name}' not found.")
    return path


def get_input_directory():
    return str(Path(_output).parent / "input")


def get_output_directory():
    return _output


def get_save_image_path(prefix, output_dir, width=0, height=0):
    folder = Path(output_dir) / os.path.dirname(prefix)
    folder.mkdir(parents=True, exist_ok=True)
    name = os.path.basename(prefix)
    counter = len(list(folder.glob(f"{name}_*"))) + 1
    return str(folder), name, counter, os.path.dirname(prefix), prefix
