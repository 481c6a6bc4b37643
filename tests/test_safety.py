"""The NSFW check: NSFWContent in results, the safety checker in its real layout, refusal without it."""

import pytest
from PIL import Image

from sdxlkit import safety
from sdxlkit.runner import RunOptions, prepare, run_prepared
from sdxlkit.safety import SafetyChecker, SafetyModelMissing, find_safety_checker, wants_check
from sdxlkit.task.model import parse_tasks
from sdxlkit.tiny_safety import write_tiny_safety_checker

UUID = "0b7e4cd6-5b8e-4f57-9d5c-2f4c6f3d1a11"


def task(**fields):
    return parse_tasks({"taskType": "imageInference", "taskUUID": UUID, "model": "tiny-sdxl", "positivePrompt": "a cat",
                        "width": 128, "height": 128, "steps": 1, "outputType": "base64Data"} | fields)[0]


@pytest.fixture
def models(tmp_path, tiny_checkpoint):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / tiny_checkpoint.name).symlink_to(tiny_checkpoint)
    return tmp_path


@pytest.mark.parametrize("value, checks", [
    (None, False), ({}, False), ({"checkContent": True}, True), ({"mode": "fast"}, True), ({"mode": "none"}, False),
    ({"checkContent": True, "mode": "none"}, False), ({"checkContent": False, "mode": "fast"}, True),
])
def test_mode_overrides_check_content(value, checks):
    assert wants_check(value) is checks


def test_a_check_without_the_model_is_refused_before_anything_loads(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "tiny-sdxl.safetensors").write_bytes(b"never read")
    with pytest.raises(SafetyModelMissing) as err:
        prepare(task(safety={"checkContent": True}), RunOptions(models_dir=tmp_path, device="cpu"))
    assert str(tmp_path / "safety_checker" / "stable-diffusion-safety-checker") in str(err.value)
    assert "model.safetensors" in str(err.value)
    prepare(task(safety={"checkContent": True, "mode": "none"}), RunOptions(models_dir=tmp_path, device="cpu"))


def test_the_checker_is_found_in_the_folder_or_its_one_subfolder(tmp_path):
    folder = write_tiny_safety_checker(tmp_path / "safety_checker" / "sc", verdict=False)
    assert find_safety_checker(tmp_path) == folder
    write_tiny_safety_checker(tmp_path / "safety_checker" / "other", verdict=False)
    with pytest.raises(SafetyModelMissing, match="several safety checkers"):
        find_safety_checker(tmp_path)


@pytest.mark.parametrize("verdict", [True, False])
def test_the_real_checker_flags_by_its_concept_thresholds(tmp_path, verdict):
    checker = SafetyChecker(write_tiny_safety_checker(tmp_path / "sc", verdict=verdict))
    images = [Image.new("RGB", (96, 64), (255, 0, 0)), Image.new("RGB", (64, 64))]
    assert checker.check(images) == [verdict, verdict]
    assert images[0].getpixel((0, 0)) == (255, 0, 0)  # the images are not blacked out


@pytest.mark.parametrize("verdict", [True, False])
def test_results_carry_nsfw_content_from_the_checker_in_the_models_folder(models, verdict):
    write_tiny_safety_checker(models / "safety_checker" / "stable-diffusion-safety-checker", verdict=verdict)
    options = RunOptions(models_dir=models, device="cpu")
    (result,) = run_prepared(prepare(task(safety={"checkContent": True}), options), options)
    assert result["NSFWContent"] is verdict


def test_each_result_gets_its_own_flag_from_a_stub_classifier(models, monkeypatch):
    seen = []

    class Stub:
        def check(self, images):
            flags = [(len(seen) + i) % 2 == 0 for i in range(len(images))]  # by the image's index in the run
            seen.extend(images)
            return flags

    (models / "safety_checker").mkdir()
    (models / "safety_checker" / "model.safetensors").write_bytes(b"")  # found, never loaded: the stub stands in
    monkeypatch.setattr(safety.SAFETY_CHECKERS, "get", lambda folder, device: Stub())
    options = RunOptions(models_dir=models, device="cpu")
    results = run_prepared(prepare(task(safety={"mode": "fast"}, numberResults=3), options), options)
    assert [r["NSFWContent"] for r in results] == [True, False, True] and len(seen) == 3
    (plain,) = run_prepared(prepare(task(), options), options)
    assert "NSFWContent" not in plain
