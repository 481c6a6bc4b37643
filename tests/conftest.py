import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_TMP = Path(tempfile.mkdtemp(prefix="sdxlkit-tests-"))

# Offline and side-effect free before any heavy library is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_CONFIG_DIR", str(_TMP / "yolo"))
os.environ.setdefault("MPLCONFIGDIR", str(_TMP / "mpl"))

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
