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


@pytest.fixture(scope="session")
def adapter_models(tmp_path_factory, tiny_components, tiny_checkpoint):
    """A models folder as ComfyUI lays it out: the tiny checkpoint, random LoRAs (kohya and diffusers files of the
    same LoRA, and two more) and a random ControlNet built from the tiny UNet in its three file layouts."""
    from types import SimpleNamespace

    from sdxlkit.tiny_controlnet import build_tiny_controlnet, write_controlnet
    from sdxlkit.tiny_lora import diffusers_state_dict, kohya_state_dict, random_lora, write_lora

    root = tmp_path_factory.mktemp("adapter-models")
    (root / "checkpoints").mkdir()
    (root / "checkpoints" / tiny_checkpoint.name).symlink_to(tiny_checkpoint)
    layers = {name: random_lora(tiny_components, seed) for name, seed in (("style", 1), ("detail", 2), ("light", 3))}
    loras = {f"{name}_kohya": write_lora(kohya_state_dict(lora, tiny_components), root / "loras" / f"{name}_kohya.safetensors")
             for name, lora in layers.items()}
    loras["style_diffusers"] = write_lora(diffusers_state_dict(layers["style"]), root / "loras" / "style_diffusers.safetensors")
    controlnet = build_tiny_controlnet(tiny_components["unet"], seed=7)
    controlnets = {layout: write_controlnet(controlnet, root / "controlnet" / f"canny_{layout}{'' if layout == 'folder' else '.safetensors'}", layout)
                   for layout in ("file", "folder", "ldm")}
    return SimpleNamespace(root=root, checkpoint=root / "checkpoints" / tiny_checkpoint.name, layers=layers, loras=loras,
                           controlnet=controlnet, controlnets=controlnets)


@pytest.fixture(scope="session")
def ip_models(tmp_path_factory, tiny_components, tiny_checkpoint):
    """A models folder with random IP-Adapters for the tiny UNet under the names runware:55@1 (base, ViT-bigG) and
    55@2 (Plus, ViT-H) map to, and tiny CLIP vision encoders under cubiq's encoder file names."""
    from types import SimpleNamespace

    from sdxlkit.registry import DEFAULT_IDS, IMAGE_ENCODERS
    from sdxlkit.tiny_ipadapter import build_clip_vision, random_ip_adapter, write_clip_vision, write_ip_adapter

    root = tmp_path_factory.mktemp("ip-models")
    (root / "checkpoints").mkdir()
    (root / "checkpoints" / tiny_checkpoint.name).symlink_to(tiny_checkpoint)
    encoders = {IMAGE_ENCODERS["runware:55@1"]: build_clip_vision("tiny", seed=11),
                IMAGE_ENCODERS["runware:55@2"]: build_clip_vision("tiny", seed=12)}
    for name, model in encoders.items():
        write_clip_vision(model, root / "clip_vision" / name)
    unet = tiny_components["unet"]
    adapters = {"runware:55@1": random_ip_adapter(unet, encoders[IMAGE_ENCODERS["runware:55@1"]], plus=False, seed=21),
                "runware:55@2": random_ip_adapter(unet, encoders[IMAGE_ENCODERS["runware:55@2"]], plus=True, seed=22)}
    for model_id, sd in adapters.items():
        write_ip_adapter(sd, root / DEFAULT_IDS[model_id])
    return SimpleNamespace(root=root, checkpoint=root / "checkpoints" / tiny_checkpoint.name, adapters=adapters,
                           path={i: root / DEFAULT_IDS[i] for i in adapters},
                           encoder={i: root / "clip_vision" / IMAGE_ENCODERS[i] for i in adapters})


@pytest.fixture(scope="session")
def image_prompt_cases(tmp_path_factory, tiny_components, ip_models) -> list[dict]:
    """Generation fields of an IP-Adapter Plus run and of a PhotoMaker run (strength 50), on one random photo."""
    import numpy as np
    from PIL import Image

    from sdxlkit.ipadapter import IPAdapterRequest
    from sdxlkit.photomaker.request import PhotoMakerRequest
    from sdxlkit.tiny_photomaker import tiny_photomaker, write_photomaker

    photo = Image.fromarray((np.random.RandomState(3).rand(96, 80, 3) * 255).astype(np.uint8))
    plus = IPAdapterRequest(ip_models.path["runware:55@2"], ip_models.encoder["runware:55@2"], [photo])
    photomaker = write_photomaker(tiny_photomaker(tiny_components, seed=11)[0],
                                  tmp_path_factory.mktemp("photomaker") / "photomaker-v1.bin")
    return [{"ip_adapters": [plus]},
            {"prompt": "a photo of a man img", "photomaker": PhotoMakerRequest(photomaker, [photo], strength=50)}]


@pytest.fixture(scope="session")
def tiny_upscaler(tmp_path_factory):
    """A tiny random ESRGAN x4 saved as RealESRGAN releases its models (.pth with params_ema)."""
    from sdxlkit.tiny_upscaler import tiny_esrgan_state_dict, write_upscaler

    return write_upscaler(tiny_esrgan_state_dict(seed=3), tmp_path_factory.mktemp("upscale") / "RealESRGAN_x4plus.pth")


@pytest.fixture(scope="session")
def tiny_yolo(tmp_path_factory):
    """A tiny random one-class YOLOv8 detector saved by ultralytics as a real .pt file."""
    from sdxlkit.tiny_yolo import write_tiny_yolo

    return write_tiny_yolo(tmp_path_factory.mktemp("yolo") / "ultralytics" / "bbox" / "face_yolov8m.pt")


@pytest.fixture(scope="session")
def tiny_refiner():
    from sdxlkit.tiny import build_tiny_refiner

    return build_tiny_refiner("tiny", seed=1)


@pytest.fixture(scope="session")
def refiner_models(tmp_path_factory, tiny_checkpoint, tiny_refiner):
    """A models folder with the tiny base and the tiny refiner, the refiner as a single file in Stability's layout
    under the name the built-in id civitai:101055@128080 maps to, and as a diffusers folder."""
    from types import SimpleNamespace

    from sdxlkit.tiny import write_diffusers_folder, write_single_file

    root = tmp_path_factory.mktemp("refiner-models")
    (root / "checkpoints").mkdir()
    (root / "checkpoints" / tiny_checkpoint.name).symlink_to(tiny_checkpoint)
    single = write_single_file(tiny_refiner, root / "checkpoints" / "sd_xl_refiner_1.0.safetensors")
    folder = write_diffusers_folder(tiny_refiner, root / "diffusers" / "tiny-refiner")
    return SimpleNamespace(root=root, checkpoint=root / "checkpoints" / tiny_checkpoint.name, single=single, folder=folder)


@pytest.fixture(scope="session")
def embedding_files(tmp_path_factory, tiny_components):
    """models/embeddings with SDXL textual inversions of 2 and 1 vectors and an SD 1.x one."""
    from types import SimpleNamespace

    from sdxlkit.tiny_embeddings import random_embedding, sd15_embedding, write_embedding

    folder = tmp_path_factory.mktemp("embedding-models") / "embeddings"
    vectors = {"myStyle": random_embedding(tiny_components, 2, seed=5), "badHands": random_embedding(tiny_components, 1, seed=6)}
    paths = {name: write_embedding(v, folder / f"{name}.safetensors") for name, v in vectors.items()}
    paths["oldStyle"] = write_embedding(sd15_embedding(3, seed=7), folder / "oldStyle.safetensors")
    return SimpleNamespace(folder=folder, root=folder.parent, vectors=vectors, paths=paths)
