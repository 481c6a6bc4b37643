import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_TMP = Path(tempfile.mkdtemp(prefix="sdxlkit-tests-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)

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

import importlib.util  # noqa: E402

import pytest  # noqa: E402

FAKES = ROOT / "tests" / "fakes"
PACK_NAME = "sdxlkit_pack"


@pytest.fixture(scope="session")
def pack():
    """The repo loaded as ComfyUI loads a custom node folder (a package named by its path), over fake ComfyUI modules."""
    if str(FAKES) not in sys.path:
        sys.path.insert(0, str(FAKES))
    if PACK_NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(PACK_NAME, ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[PACK_NAME] = module
        spec.loader.exec_module(module)
    return sys.modules[PACK_NAME]


@pytest.fixture(scope="session")
def tiny_components():
    from sdxlkit.tiny import build_tiny_components

    return build_tiny_components("tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_components):
    """The tiny model written as a single-file checkpoint in Stability's layout, in a models/checkpoints folder."""
    from sdxlkit.tiny import write_single_file

    root = tmp_path_factory.mktemp("models")
    path = root / "checkpoints" / "tiny-sdxl.safetensors"
    path.parent.mkdir(parents=True)
    write_single_file(tiny_components, path)
    return path
