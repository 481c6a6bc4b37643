"""Stand-in for ComfyUI's folder_paths: folders under a root the tests set with set_root()."""

import os
from pathlib import Path

models_dir = ""
_output = ""


def set_root(root):
    global models_dir, _output
    models_dir = str(Path(root) / "models")
    _output = str(Path(root) / "output")


def get_filename_list(kind):
    folder = Path(models_dir) / kind
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def get_folder_paths(kind):
    return [str(Path(models_dir) / kind)]


def get_full_path_or_raise(kind, name):
    path = Path(models_dir) / kind / name
    if not path.exists():
        raise FileNotFoundError(f"Model in folder '{kind}' with filename '{name}' not found.")
    return str(path)


def get_output_directory():
    return _output


def get_save_image_path(prefix, output_dir, width=0, height=0):
    folder = Path(output_dir) / os.path.dirname(prefix)
    folder.mkdir(parents=True, exist_ok=True)
    name = os.path.basename(prefix)
    counter = len(list(folder.glob(f"{name}_*"))) + 1
    return str(folder), name, counter, os.path.dirname(prefix), prefix
