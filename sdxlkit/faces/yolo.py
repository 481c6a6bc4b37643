"""YOLO face detectors (ultralytics .pt files from models/ultralytics/bbox), loaded without running pickled code.

An ultralytics .pt file is a pickle of the whole model. ultralytics itself loads it with weights_only=False, so
this module never hands it a path: the file is read here with torch.load(weights_only=True) and an allowlist of
exactly the classes a detection model is made of (ultralytics' network modules and torch.nn layers). Anything
else in the pickle (a function call, an unknown class) refuses the file. ultralytics is imported only here, lazily,
offline (no downloads, no pip installs at run time, its settings in a writable folder), and never plots.
"""

from __future__ import annotations

import inspect
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import ModelLoadError, SdxlKitError
from ..loading.lru import FileModels

ULTRALYTICS_PIN = "ultralytics==8.4.190"
IMAGE_SIZE = 640  # the detectors' training size; images are letterboxed to it
IOU = 0.7  # NMS threshold of ultralytics' predictor


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float
    confidence: float


def _offline_environment() -> None:
    """Before ultralytics is imported: it reads these once, at import. No downloads and no pip installs whatever the
    environment said; its settings folder stays the user's when that one is writable."""
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    os.environ["ULTRALYTICS_SKIP_REQUIREMENTS_CHECKS"] = "1"
    settings = Path(tempfile.gettempdir()) / "sdxlkit-ultralytics"
    if not os.access(os.environ.get("YOLO_CONFIG_DIR", ""), os.W_OK):
        os.environ["YOLO_CONFIG_DIR"] = str(settings)
    os.environ.setdefault("MPLCONFIGDIR", str(settings / "matplotlib"))


def ultralytics():
    _offline_environment()
    try:
        import ultralytics
        import ultralytics.nn.tasks  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install raising something else
        raise SdxlKitError(f"the face detailer needs the ultralytics package ({exc}); install it with "
                           f"`pip install {ULTRALYTICS_PIN}` into the Python that runs sdxlkit") from None
    return ultralytics


def _module_classes(module) -> list[type]:
    return [obj for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, torch.nn.Module) and obj.__module__.startswith(module.__name__.split(".")[0])]


def allowed_classes() -> list:
    """What a detection checkpoint may contain besides tensors and plain containers."""
    import importlib
    import pkgutil

    ultralytics()
    from ultralytics.nn import modules, tasks
    from ultralytics.utils import IterableSimpleNamespace

    multiarray = (np._core if hasattr(np, "_core") else np.core).multiarray  # numpy 2 renamed core to _core
    allowed: list = [IterableSimpleNamespace, np.dtype, multiarray.scalar, *_module_classes(tasks)]
    allowed += [type(np.dtype(t)) for t in ("float32", "float64", "int64")]
    for info in pkgutil.iter_modules(modules.__path__, modules.__name__ + "."):
        allowed += _module_classes(importlib.import_module(info.name))
    for info in pkgutil.iter_modules(torch.nn.modules.__path__, "torch.nn.modules."):
        allowed += _module_classes(importlib.import_module(info.name))
    return allowed


def safe_load(path: Path) -> torch.nn.Module:
    """The detection model in an ultralytics .pt file, read with weights_only=True and the allowlist."""
    path = Path(path)
    if path.suffix != ".pt":
        raise ModelLoadError(f"{path.name}: face detectors are ultralytics .pt files; got {path.suffix!r}")
    allowed = allowed_classes()
    try:
        with torch.serialization.safe_globals(allowed):
            checkpoint = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadError(f"{path.name}: refused; it is not a plain ultralytics detection model (reading it "
                             f"with weights_only=True failed: {str(exc).splitlines()[0]})") from None
    model = None
    if isinstance(checkpoint, dict):  # ultralytics keeps the averaged weights in "ema" when training saved them
        model = checkpoint["ema"] if checkpoint.get("ema") is not None else checkpoint.get("model")
    from ultralytics.nn.tasks import DetectionModel

    if not isinstance(model, DetectionModel) or type(model).__name__ != "DetectionModel":
        kind = type(model).__name__ if model is not None else type(checkpoint).__name__
        raise ModelLoadError(f"{path.name}: holds a {kind}, not an ultralytics bbox DetectionModel "
                             "(use a file from models/ultralytics/bbox such as face_yolov8m.pt)")
    return model.float().eval()


class YoloDetector:
    """Boxes of one class-agnostic detection model, in the input image's pixel coordinates."""

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "cpu"):
        self.model = model.to(device)
        self.device = torch.device(device)

    @torch.inference_mode()
    def detect(self, image: Image.Image, confidence: float) -> list[Box]:
        from ultralytics.data.augment import LetterBox
        from ultralytics.utils.nms import non_max_suppression
        from ultralytics.utils.ops import scale_boxes

        pixels = np.asarray(image.convert("RGB"))
        boxed = LetterBox((IMAGE_SIZE, IMAGE_SIZE), auto=False, stride=int(self.model.stride.max()))(image=pixels)
        batch = torch.from_numpy(np.ascontiguousarray(boxed)).permute(2, 0, 1)[None].float().div(255).to(self.device)
        predictions = self.model(batch)
        found = non_max_suppression(predictions[0] if isinstance(predictions, (list, tuple)) else predictions,
                                    confidence, IOU)[0].cpu()
        found[:, :4] = scale_boxes(batch.shape[2:], found[:, :4], pixels.shape[:2])
        return [Box(*(float(v) for v in row[:4]), float(row[4])) for row in found]


def load_detector(path: Path, device: str | torch.device = "cpu") -> YoloDetector:
    return YoloDetector(safe_load(path), device)


DETECTORS = FileModels("face detector", load_detector)
