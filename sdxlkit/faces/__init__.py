"""Face detailer: detect faces with a YOLO model, repaint each one at a higher resolution, paste it back."""

from .detailer import FaceDetailer, detail_faces
from .yolo import DETECTORS, Box, load_detector

__all__ = ["DETECTORS", "Box", "FaceDetailer", "detail_faces", "load_detector"]
