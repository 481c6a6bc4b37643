"""A tiny random one-class ("face") YOLOv8 detector, built by ultralytics from its own yolov8.yaml with a small
width and saved by ultralytics as a real .pt file (a pickled DetectionModel), offline."""

from __future__ import annotations

import tempfile
from pathlib import Path


def write_tiny_yolo(path: Path, seed: int = 0) -> Path:
    import torch
    import yaml

    from .faces.yolo import ultralytics

    package = Path(ultralytics().__file__).parent
    config = yaml.safe_load((package / "cfg" / "models" / "v8" / "yolov8.yaml").read_text())
    config |= {"nc": 1, "scales": {"n": [0.33, 0.0625, 64]}, "scale": "n"}
    path.parent.mkdir(parents=True, exist_ok=True)
    from ultralytics import YOLO

    with tempfile.TemporaryDirectory() as folder:
        config_file = Path(folder) / "tiny-face.yaml"  # ultralytics reads a scale letter off the name: none here
        config_file.write_text(yaml.safe_dump(config))
        torch.manual_seed(seed)
        model = YOLO(str(config_file))
    model.model.names = {0: "face"}
    model.save(str(path))
    return path
