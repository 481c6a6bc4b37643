"""Face detailer: Impact's geometry (padding, crop with context, scale, feathered paste) checked pixel-exactly with
a stub detector, per-face seeds and exactly `steps` evaluations, the safe YOLO loader and the task path."""

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sdxlkit.faces import Box, FaceDetailer, detail_faces
from sdxlkit.faces import detailer as detailer_module
from sdxlkit.faces.detailer import crop_box, face_box, pass_size
from sdxlkit.faces.yolo import load_detector, safe_load
from sdxlkit.generate import Generation, _to_tensor
from sdxlkit.loading.loader import ModelSpec, load_sdxl
from sdxlkit.sampling import UNetPart

PROMPT = "portrait of two people"


@pytest.fixture(scope="module")
def components(tiny_checkpoint):
    return load_sdxl(ModelSpec(tiny_checkpoint))


class StubDetector:
    def __init__(self, boxes):
        self.boxes, self.calls = boxes, []

    def detect(self, image, confidence):
        self.calls.append((image.size, confidence))
        return list(self.boxes)


def settings(**overrides):
    base = dict(detector=None, confidence=0.5, padding=4, blur=2, inpaint_size=64, steps=3, cfg=4.0, strength=0.5)
    return FaceDetailer(**(base | overrides))


def picture(size=(160, 128), seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def pixels(base64_png: str) -> np.ndarray:
    import base64
    import io

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(base64_png))).convert("RGB"))


def gen(**overrides):
    base = dict(prompt=PROMPT, negative_prompt=None, width=160, height=128, steps=4, cfg=5.0, scheduler="Default",
                seed=40, faces=settings())
    return Generation(**(base | overrides))


def test_geometry_follows_impact():
    size = (160, 128)
    face = face_box(Box(20.3, 30.0, 39.6, 50.0, 0.9), 4, size)
    assert face == (16, 26, 44, 54)                          # floor/ceil, then padding on each side
    assert face_box(Box(2, 1, 30, 127.5, 0.9), 5, size) == (0, 0, 35, 128)  # kept inside the image
    assert crop_box(face, size) == (0, 0, 84, 84)            # 3 x 28 about the centre (30, 40), shifted inside
    assert crop_box((100, 40, 120, 60), size) == (80, 20, 140, 80)
    assert crop_box((0, 0, 100, 100), size) == (0, 0, 160, 128)  # never larger than the image
    assert pass_size((0, 0, 84, 84), 1024) == (1024, 1024)
    assert pass_size((80, 20, 140, 50), 512) == (512, 256)
    assert pass_size((0, 0, 100, 30), 64) == (64, 16)        # 19.2 -> nearest multiple of 8


def test_faces_are_repainted_one_by_one_and_nothing_else_changes(components, monkeypatch):
    passes, steps = [], []

    class Recorder(UNetPart):
        def __call__(self, call, forward):
            steps.append((call.step, call.total, *call.sample.shape[-2:]))
            return forward(call)

    real_denoise, real_parts = detailer_module.denoise, detailer_module.unet_parts
    monkeypatch.setattr(detailer_module, "denoise", lambda c, p, s=None: passes.append(p) or real_denoise(c, p, s))
    monkeypatch.setattr(detailer_module, "unet_parts", lambda *a, **k: [*real_parts(*a, **k), Recorder()])
    source = picture()
    image = _to_tensor(source)
    boxes = [Box(20, 30, 40, 50, 0.95), Box(110, 60, 130, 84, 0.9)]
    stub = StubDetector(boxes)
    out = detail_faces(components, gen(), image, 40, detector=stub)
    assert stub.calls == [((160, 128), 0.5)]
    assert [p.seeds for p in passes] == [[40], [41]]                  # seed + face index
    assert [(p.kind, p.strength, p.cfg) for p in passes] == [("inpaint", 0.5, 4.0)] * 2
    assert [(p.width, p.height) for p in passes] == [(64, 64), (56, 64)]  # crops 84x84 and 84x96 -> longer side 64
    assert steps == [(i, 3, 8, 8) for i in range(3)] + [(i, 3, 8, 7) for i in range(3)]  # exactly 3 evaluations per face
    # outside each padded box grown by the feather's reach, every pixel is the input's, exactly
    changed = (out - image).abs().amax(dim=1)[0] > 0
    reach = 2  # Impact's feather: a kernel of 2 x blur + 1 reaches `blur` pixels
    allowed = torch.zeros(128, 160, dtype=torch.bool)
    for b in boxes:
        x0, y0, x1, y1 = face_box(b, 4, (160, 128))
        allowed[max(y0 - reach, 0):y1 + reach, max(x0 - reach, 0):x1 + reach] = True
    assert not changed[~allowed].any()
    for b in boxes:  # and the faces themselves were repainted
        x0, y0, x1, y1 = face_box(b, 4, (160, 128))
        assert (out - image)[..., y0 + 6:y1 - 6, x0 + 6:x1 - 6].abs().mean() > 0.02


def test_the_second_face_is_painted_on_the_image_the_first_left(components):
    image = _to_tensor(picture(seed=1))
    overlapping = [Box(40, 40, 60, 60, 0.9), Box(50, 50, 70, 70, 0.8)]
    both = detail_faces(components, gen(), image, 7, detector=StubDetector(overlapping))
    first = detail_faces(components, gen(), image, 7, detector=StubDetector(overlapping[:1]))
    second_alone = detail_faces(components, gen(), first, 8, detector=StubDetector(overlapping[1:]))
    assert torch.equal(both, second_alone)


def test_no_face_leaves_the_image_unchanged_and_says_so(components, caplog):
    image = _to_tensor(picture())
    with caplog.at_level(logging.INFO, logger="sdxlkit.faces.detailer"):
        out = detail_faces(components, gen(), image, 3, detector=StubDetector([]))
    assert out is image
    assert "no face found" in caplog.text and "unchanged" in caplog.text


def test_tiny_yolo_is_a_real_ultralytics_file_loaded_safely(tiny_yolo):
    from ultralytics.nn.tasks import DetectionModel

    model = safe_load(tiny_yolo)
    assert type(model) is DetectionModel and model.names == {0: "face"}
    detector = load_detector(tiny_yolo)
    image = picture((96, 80), seed=4)
    boxes = detector.detect(image, 0.0)
    assert boxes and all(0 <= b.x0 <= b.x1 <= 96 and 0 <= b.y0 <= b.y1 <= 80 for b in boxes)
    assert detector.detect(image, 0.99) == []  # random weights are never that sure


class _Payload:
    def __reduce__(self):
        import os

        return os.system, ("touch " + str(MARKER),)


MARKER = None


def test_a_pickle_with_code_in_it_is_refused_and_never_runs(tmp_path):
    global MARKER
    MARKER = tmp_path / "pwned"
    path = tmp_path / "face_yolov8m.pt"
    torch.save({"model": _Payload()}, path)
    with pytest.raises(Exception, match="face_yolov8m.pt: refused") as error:
        safe_load(path)
    assert "weights_only" in str(error.value) and not MARKER.exists()
    torch.load(path, weights_only=False)  # the payload is real: an unsafe load runs it
    assert MARKER.exists()


def test_files_that_are_not_detection_models_are_refused(tmp_path):
    plain = tmp_path / "weights.pt"
    torch.save({"model": {"conv.weight": torch.zeros(1)}}, plain)
    with pytest.raises(Exception, match="weights.pt: holds a dict, not an ultralytics bbox DetectionModel"):
        safe_load(plain)
    other = tmp_path / "face.onnx"
    other.write_bytes(b"x")
    with pytest.raises(Exception, match="face.onnx"):
        safe_load(other)


def test_face_task_without_faces_gives_the_plain_image(tmp_path, tiny_checkpoint, tiny_yolo):
    from sdxlkit.runner import RunOptions, prepare, run_prepared
    from sdxlkit.task.model import parse_tasks

    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    (models / "checkpoints" / tiny_checkpoint.name).symlink_to(tiny_checkpoint)
    (models / "ultralytics" / "bbox").mkdir(parents=True)
    (models / "ultralytics" / "bbox" / "face_yolov8m.pt").symlink_to(tiny_yolo)
    task = {"taskType": "imageInference", "taskUUID": "b5a6f0e1-7b3c-4d2e-9f10-1a2b3c4d5e6f", "model": tiny_checkpoint.name,
            "positivePrompt": PROMPT, "width": 128, "height": 128, "steps": 2, "seed": 9, "outputType": "base64Data",
            "outputFormat": "PNG"}
    options = RunOptions(models_dir=models, device="cpu")
    with_faces = prepare(parse_tasks(task | {"ultralytics": {"confidence": 0.99, "maskPadding": 8}})[0], options)
    faces = with_faces.generation.faces
    assert faces.detector.name == "face_yolov8m.pt" and (faces.padding, faces.blur, faces.inpaint_size) == (8, 5, 1024)
    assert (faces.steps, faces.cfg, faces.strength, faces.prompt) == (20, 8.0, 0.3, None)
    plain = prepare(parse_tasks(task)[0], options)
    a, b = (pixels(run_prepared(p, options)[0]["imageBase64Data"]) for p in (with_faces, plain))
    assert np.array_equal(a, b)  # random weights find no face at 0.99: the image is unchanged
    with pytest.raises(Exception, match=r"\$\.ultralytics\.inpaintSize"):
        parse_tasks(task | {"ultralytics": {"inpaintSize": 100}})


def test_face_prompts_fall_back_to_the_task_prompts(components, monkeypatch):
    seen = []
    monkeypatch.setattr(detailer_module, "prompt_embeds", lambda c, g, p, n, cfg, photomaker: seen.append((p, n, cfg)) or
                        __import__("sdxlkit.generate", fromlist=["x"]).prompt_embeds(c, g, p, n, cfg, photomaker))
    image = _to_tensor(picture())
    box = [Box(60, 50, 80, 70, 0.9)]
    detail_faces(components, gen(negative_prompt="blurry"), image, 1, detector=StubDetector(box))
    detail_faces(components, gen(faces=replace(settings(), prompt="a smiling face", negative_prompt="")), image, 1,
                 detector=StubDetector(box))
    assert seen == [(PROMPT, "blurry", 4.0), ("a smiling face", "", 4.0)]


def test_ultralytics_is_imported_offline_whatever_the_environment_says(tmp_path):
    """In a fresh interpreter (ultralytics reads its environment once, at import): no DNS probe, no pip installs, a
    writable settings folder even when the configured one is not."""
    import os
    import subprocess
    import sys

    code = ("import socket\n"
            "def refuse(*a, **k): raise AssertionError('network use')\n"
            "socket.getaddrinfo = socket.create_connection = refuse\n"
            "from sdxlkit.faces.yolo import ultralytics\n"
            "ultralytics()\n"
            "from ultralytics.utils import AUTOINSTALL, ONLINE, USER_CONFIG_DIR\n"
            "print('RESULT', ONLINE, AUTOINSTALL, USER_CONFIG_DIR)\n")
    env = os.environ | {"YOLO_OFFLINE": "0", "YOLO_AUTOINSTALL": "true", "YOLO_CONFIG_DIR": "/proc/not-writable",
                        "TMPDIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    (line,) = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    online, autoinstall, config = line.split()[1:]
    assert (online, autoinstall) == ("False", "False") and Path(config).is_relative_to(tmp_path / "sdxlkit-ultralytics")


def _impact_reference(mask: torch.Tensor, feather: int) -> torch.Tensor:
    """Impact Pack's tensor_gaussian_blur_mask, from its definition: kernel 2 x feather + 1 (or about half the
    shorter side, odd, when that does not fit; no blur under 3), a normalised Gaussian of sigma 10 applied along
    each axis, reflect padding (torchvision's GaussianBlur)."""
    kernel = feather * 2 + 1
    shortest = min(mask.shape[-2:])
    if shortest <= kernel:
        kernel = int(shortest / 2) + (1 if int(shortest / 2) % 2 == 0 else 0)
        if kernel < 3:
            return mask
    half = kernel // 2
    x = torch.arange(-half, half + 1, dtype=torch.float32)
    g = torch.exp(-(x**2) / (2 * 10.0**2))
    g = g / g.sum()
    padded = torch.nn.functional.pad(mask, (half, half, half, half), mode="reflect")
    rows = torch.nn.functional.conv2d(padded, g.view(1, 1, 1, -1))
    return torch.nn.functional.conv2d(rows, g.view(1, 1, -1, 1))


@pytest.mark.parametrize("feather, size", [(5, (60, 80)), (20, (90, 70)), (100, (120, 96)), (40, (20, 30)), (3, (4, 40))])
def test_the_paste_mask_is_feathered_as_impacts_tensor_gaussian_blur_mask(feather, size):
    from sdxlkit.masking import impact_feathered

    mask = torch.zeros(1, 1, *size)
    mask[..., size[0] // 4: 3 * size[0] // 4, size[1] // 4: 3 * size[1] // 4] = 1
    got = impact_feathered(mask, feather)
    assert torch.allclose(got, _impact_reference(mask, feather), atol=1e-6)
    if feather >= 20 and min(size) > 60:  # a wide feather still repaints the face: sigma stays 10
        assert got[..., size[0] // 2, size[1] // 2].item() > 0.9
