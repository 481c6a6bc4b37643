"""Model references <-> the names ComfyUI's loaders list, through folder_paths: every folder ComfyUI searches for a
kind counts (extra_model_paths.yaml, --base-directory), not only models/<kind>. Ids mapped in
models/sdxlkit_models.json (and the built-in defaults) still name their files. Used by the conversion routes,
the task route's checks and the nodes, so a graph and the task it runs name models the same way.

A model that is not installed still converts, as ComfyUI loads a workflow whose model is missing: the widget holds
the file name a mapped id stands for (else the reference itself), the frontend marks it, and running it fails
with ComfyUI's own "value not in list"; back to a task, such a name gives its mapped id (else itself)."""

from __future__ import annotations

import os
from pathlib import Path

from ..sdxlkit.errors import ModelNotFound
from ..sdxlkit.graph.mapping import GraphConversionError
from ..sdxlkit.graph.references import DIFFUSERS_PREFIX
from ..sdxlkit.registry import WEIGHT_SUFFIXES, ModelsDir, mapped_file
from . import host


def _folders(kind: str) -> list[str]:
    import folder_paths

    try:
        return list(folder_paths.get_folder_paths(kind))
    except KeyError:  # a kind ComfyUI has no folders for
        return []


class ComfyModelNames:
    def __init__(self):
        self.models = ModelsDir(host.models_root())

    def _mapped(self, ref: str) -> Path | None:
        rel = self.models.mapping().get(ref)
        return None if rel is None else mapped_file(self.models.root / rel)

    def _name_of(self, path: Path, kind: str) -> str | None:
        """The name ComfyUI lists for a file or diffusers folder, if it is in one of the kind's folders."""
        path = Path(os.path.abspath(path))
        if kind == "checkpoints":
            for name, folder in host.diffusers_folders().items():
                if Path(os.path.abspath(folder)) == path:
                    return DIFFUSERS_PREFIX + Path(name).as_posix()
        for base in _folders(kind):
            try:
                name = path.relative_to(os.path.abspath(base)).as_posix()
            except ValueError:
                continue
            if name in host.file_list(kind):
                return name
        return None

    def file_name_for(self, ref: str, kind: str) -> str:
        try:
            return self.installed_name(ref, kind)
        except GraphConversionError:
            rel = self.models.mapping().get(ref, "")
            return rel.removeprefix(f"{kind}/") if rel.startswith(f"{kind}/") else ref

    def installed_name(self, ref: str, kind: str) -> str:
        """The name ComfyUI lists for an installed model; an error naming the folders searched if there is none."""
        mapped = self._mapped(ref)
        if mapped is not None and mapped.exists() and (name := self._name_of(mapped, kind)):
            return name
        listed = set(host.file_list(kind))
        for name in (ref, *(ref + suffix for suffix in WEIGHT_SUFFIXES)):
            if name in listed:
                return name
        if kind == "checkpoints" and ref in host.diffusers_folders():
            return DIFFUSERS_PREFIX + ref
        if Path(ref).is_absolute() and (name := self._name_of(Path(ref), kind)):
            return name
        raise GraphConversionError(
            f"{kind} model {ref!r} is not among the files ComfyUI lists for {kind} (folders: "
            f"{', '.join(_folders(kind)) or 'none'}); put it there, add its folder to extra_model_paths.yaml, or map "
            f"the id in {self.models.root / 'sdxlkit_models.json'}")

    def _path(self, name: str, kind: str) -> Path | None:
        import folder_paths

        if kind == "checkpoints" and name.startswith(DIFFUSERS_PREFIX):
            return host.diffusers_folders().get(name.removeprefix(DIFFUSERS_PREFIX))
        found = folder_paths.get_full_path(kind, name)
        return None if found is None else Path(found)

    def reference_for(self, name: str, kind: str) -> str:
        path = self._path(name, kind)
        if path is None:
            return next((model_id for model_id, rel in self.models.mapping().items() if rel == f"{kind}/{name}"), name)
        return self.reference_for_path(path, name.removeprefix(DIFFUSERS_PREFIX))

    def reference_for_path(self, path: Path, name: str) -> str:
        """The mapped id of a file if there is one, else its name as ComfyUI lists it."""
        for model_id, rel in self.models.mapping().items():
            mapped = self.models.root / rel
            if mapped.exists() and mapped.resolve() == Path(path).resolve():
                return model_id
        return name

    def resolve(self, ref: str, kind: str) -> Path:
        """The file for a task reference (the engine's resolver inside ComfyUI)."""
        try:
            name = self.installed_name(ref, kind)
        except GraphConversionError as exc:
            raise ModelNotFound(str(exc)) from None
        return self._path(name, kind)
