"""Task images <-> files of ComfyUI's input folder, read by LoadImage / LoadImageMask nodes.

An image means what its reader makes of it. The engine reads a seed or guide image as RGB (transparency composited
on white) and a mask as its alpha channel, or its luminance without one (sdxlkit.images.to_rgb / to_mask);
ComfyUI's LoadImage drops the alpha (convert("RGB")) and LoadImageMask takes one channel of the RGBA image ("alpha"
inverted), both after applying the EXIF orientation. So:

- task -> graph: the image the engine would read is written to the input folder as a PNG named by its content hash
  (RGB for images, 8-bit grey for masks, read back with LoadImageMask channel "red"), so converting again reuses
  the file. A task path that already is a file in the input folder is referenced as is when ComfyUI reads it
  exactly as the engine does (a plain RGB image, a grey mask); otherwise the normalised copy is written.
- a task reference that graph -> task would not write back as the same text (a path, a JPEG data URI...) is kept
  in the load node's properties ("taskImage": {"image": file name, "ref": reference}; {"image": file name,
  "dataURI": true} where it was that PNG data URI) and written back while the node still reads that file;
- graph -> task: the file is read as the node reads it, and written as a PNG data URI (`images="data_uri"`), or as
  an absolute file path (`images="file"`): the file itself where the engine reads it the same way, else the
  normalised copy written beside it. Absolute paths keep the task runnable from any folder.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

from PIL import Image, ImageOps, ImageSequence

from ..images import data_uri, load_image, to_mask, to_rgb
from ..results import write_atomic
from .mapping import ConvertOptions, GraphConversionError, ImageFile

MASK_CHANNEL = "red"  # the channel a written mask is read from
ANNOTATION = " [input]"  # ComfyUI's suffix for a file of the input folder


def _input_dir(options: ConvertOptions, what: str) -> Path:
    if options.input_dir is None:
        raise GraphConversionError(f"{what} needs ComfyUI's input folder (input_dir, CLI --input-dir)")
    return Path(os.path.abspath(options.input_dir))


def _same(a: Image.Image, b: Image.Image) -> bool:
    return a.mode == b.mode and a.size == b.size and a.tobytes() == b.tobytes()


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def _store(image: Image.Image, folder: Path, names: dict | None = None) -> str:
    """The PNG of `image` in `folder`, named by its content hash (or by `names`, content hash -> file name)."""
    data = png_bytes(image)
    digest = hashlib.sha256(data).hexdigest()
    name = (names or {}).get(digest, f"sdxlkit_{digest[:24]}.png")
    if not (folder / name).is_file():
        write_atomic(folder / name, data)
    return name


def comfy_view(path: Path, channel: str | None) -> Image.Image:
    """The first image of a file as ComfyUI's LoadImage (channel None: RGB) or LoadImageMask (channel) reads it."""
    with Image.open(path) as file:
        frame = ImageOps.exif_transpose(next(ImageSequence.Iterator(file)))
        if channel is None:
            if frame.mode == "I":
                frame = frame.point(lambda v: v * (1 / 255))
            return frame.convert("RGB")
        if frame.getbands() != ("R", "G", "B", "A"):
            if frame.mode == "I":
                frame = frame.point(lambda v: v * (1 / 255))
            frame = frame.convert("RGBA")
        mask = frame.getchannel(channel[0].upper())
        return ImageOps.invert(mask) if channel == "alpha" else mask


def _engine_view(image: Image.Image, mask: bool) -> Image.Image:
    return to_mask(image) if mask else to_rgb(image)


def _local_path(ref: str, base_dir: Path | None) -> Path | None:
    """The file a task's image reference names, as sdxlkit.images.load_image finds it; None for other references."""
    if ref.startswith(("data:", "http://", "https://")) or len(ref) >= 4096:
        return None
    path = Path(ref.removeprefix("file://")).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        return path if path.is_file() else None
    except OSError:  # bare base64 text too long for a file name
        return None


def graph_image(ref: str, field: str, options: ConvertOptions, *, mask: bool = False) -> tuple[str, bool]:
    """task -> graph: the input-folder file name a load node uses for a task's image reference, and whether
    graph -> task must keep `ref` itself to give it back (the PNG data URI it writes would be another text)."""
    folder = _input_dir(options, field)
    target = _engine_view(load_image(ref, field, base_dir=options.base_dir), mask)
    keep = ref != data_uri(png_bytes(target), "PNG")
    path = _local_path(ref, options.base_dir)
    if path is not None:
        try:
            name = Path(os.path.abspath(path)).relative_to(folder).as_posix()
        except ValueError:
            name = None
        if name is not None and _same(comfy_view(path, MASK_CHANNEL if mask else None), target):
            return name, keep
    return _store(target, folder, options.image_names), keep


def _file_path(image: ImageFile, options: ConvertOptions, where: str) -> Path:
    folder = _input_dir(options, where)
    name = image.name.removesuffix(ANNOTATION)
    if name.endswith("]") and " [" in name:
        raise GraphConversionError(f"{where}: {image.name!r} is not in ComfyUI's input folder")
    path = Path(os.path.abspath(folder / name))
    # links are followed before checking, as the task route does: a link in the input folder to a file outside it
    # is not a file of the input folder
    if not path.resolve().is_relative_to(folder.resolve()) or not path.is_file():
        raise GraphConversionError(f"{where}: image {image.name!r} is not a file in ComfyUI's input folder")
    return path


def task_image_ref(image: ImageFile, options: ConvertOptions, where: str) -> str:
    """graph -> task: the reference a task gets for the image a load node reads (the imported task's own
    reference where the node kept it and still reads the same file)."""
    path = _file_path(image, options, where)
    if image.task_ref is not None:
        return image.task_ref
    if image.require_alpha:
        with Image.open(path) as file:
            if "A" not in file.getbands() and "transparency" not in file.info:
                raise GraphConversionError(f"{where}: {image.name} has no alpha channel, so LoadImage's mask is empty; "
                                           "paint a mask in the mask editor or use LoadImageMask")
    view = comfy_view(path, image.channel)
    if options.images == "data_uri" or image.data_uri:
        return data_uri(png_bytes(view), "PNG")
    with Image.open(path) as file:
        file.load()
        if _same(_engine_view(file, image.channel is not None), view):
            return str(path)
    return str(path.parent / _store(view, path.parent))
