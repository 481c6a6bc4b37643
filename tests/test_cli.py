import base64
import io
import json

import pytest
from PIL import Image

from sdxlkit.cli import main
from sdxlkit.metadata import read_texts

UUID = "1e4a0b2c-3d4e-4f60-8a7b-9c0d1e2f3a4b"


def write_task(tmp_path, **fields):
    task = {"taskType": "imageInference", "taskUUID": UUID, "model": "tiny-sdxl", "positivePrompt": "a small boat",
            "width": 128, "height": 128, "steps": 3, "seed": 5} | fields
    path = tmp_path / "task.json"
    path.write_text(json.dumps(task))
    return path


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_run_writes_images_and_prints_api_results(tmp_path, tiny_checkpoint, capsys):
    task = write_task(tmp_path, numberResults=2, outputFormat="PNG", includeCost=True)
    code, out, err = run_cli(capsys, "run", task, "--models", tiny_checkpoint.parent.parent, "--out", tmp_path / "out")
    assert code == 0, err
    data = json.loads(out)["data"]
    assert [r["seed"] for r in data] == [5, 6]
    assert all(r["taskType"] == "imageInference" and r["taskUUID"] == UUID and r["cost"] == 0 for r in data)
    paths = [r["imageURL"].removeprefix("file://") for r in data]
    image = Image.open(paths[1])
    assert image.size == (128, 128) and image.format == "PNG"
    embedded = json.loads(read_texts(open(paths[1], "rb").read())["sdxlkit_task"])
    assert embedded["seed"] == 6 and "numberResults" not in embedded
    assert not list((tmp_path / "out").glob(".tmp-*"))


@pytest.mark.parametrize("output_type,field", [("base64Data", "imageBase64Data"), ("dataURI", "imageDataURI")])
def test_inline_output_types(tmp_path, tiny_checkpoint, capsys, output_type, field):
    task = write_task(tmp_path, outputType=output_type, outputFormat="WEBP", outputQuality=80)
    code, out, err = run_cli(capsys, "run", task, "--models", tiny_checkpoint.parent.parent, "--out", tmp_path / "out")
    assert code == 0, err
    (result,) = json.loads(out)["data"]
    assert set(result) == {"taskType", "taskUUID", "imageUUID", "seed", field}
    payload = result[field].split(",", 1)[1] if output_type == "dataURI" else result[field]
    assert Image.open(io.BytesIO(base64.b64decode(payload))).format == "WEBP"
    assert not (tmp_path / "out").exists()


def test_img2img_from_a_relative_file_path(tmp_path, tiny_checkpoint, capsys):
    Image.new("RGB", (128, 128), (200, 30, 30)).save(tmp_path / "seed.png")
    task = write_task(tmp_path, inputs={"seedImage": "seed.png"}, strength=0.7, outputType="base64Data")
    code, out, err = run_cli(capsys, "run", task, "--models", tiny_checkpoint.parent.parent)
    assert code == 0, err


def test_invalid_task_names_fields_and_exits_2(tmp_path, capsys):
    task = write_task(tmp_path, width=100, steps=99, extra=1)
    code, out, err = run_cli(capsys, "validate", task)
    assert code == 2 and out == ""
    assert "$.width" in err and "128..2048" in err and "$.steps" in err and "unknown field 'extra'" in err


def test_not_yet_supported_fields_are_refused_before_loading(tmp_path, capsys):
    task = write_task(tmp_path, ttl=60, hiresFix=True)
    code, out, err = run_cli(capsys, "run", task, "--models", tmp_path / "no-models-here")
    assert code == 1 and "not supported yet: hiresFix, ttl" in err


def test_missing_model_says_where_it_looked(tmp_path, capsys):
    task = write_task(tmp_path, model="civitai:101055@128078")
    code, out, err = run_cli(capsys, "run", task, "--models", tmp_path / "models")
    assert code == 1 and "sdxlkit_models.json" in err and "checkpoints" in err


def test_url_images_are_off_by_default(tmp_path, tiny_checkpoint, capsys):
    task = write_task(tmp_path, inputs={"seedImage": "https://example.invalid/a.png"})
    code, out, err = run_cli(capsys, "run", task, "--models", tiny_checkpoint.parent.parent)
    assert code == 1 and "inputs.seedImage" in err and "--allow-urls" in err


def test_outpaint_size_mismatch_is_refused(tmp_path, tiny_checkpoint, capsys):
    Image.new("RGB", (128, 128)).save(tmp_path / "seed.png")
    task = write_task(tmp_path, inputs={"seedImage": "seed.png"}, outpaint={"left": 64}, width=256)
    code, out, err = run_cli(capsys, "run", task, "--models", tiny_checkpoint.parent.parent)
    assert code == 1 and "192x128" in err and "256x128" in err


def test_validate_accepts_a_valid_array(tmp_path, capsys):
    task = write_task(tmp_path)
    code, out, _ = run_cli(capsys, "validate", task)
    assert code == 0 and "1 valid" in out


def test_demo_runs_end_to_end(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SDXLKIT_CACHE", str(tmp_path / "cache"))
    code, out, err = run_cli(capsys, "demo", "--size", "128", "--steps", "2", "--out", tmp_path / "out")
    assert code == 0, err
    assert "RANDOM weights" in err
    (result,) = json.loads(out)["data"]
    assert Image.open(result["imageURL"].removeprefix("file://")).size == (128, 128)


def test_unreadable_or_malformed_task_files_are_clear_errors(tmp_path, capsys):
    code, _, err = run_cli(capsys, "validate", tmp_path / "missing.json")
    assert code == 1 and "cannot read the task file" in err
    broken = tmp_path / "broken.json"
    broken.write_text('{"taskType": ')
    code, _, err = run_cli(capsys, "validate", broken)
    assert code == 2 and "is not valid JSON" in err


def test_lora_and_controlnet_run_from_a_task_file(tmp_path, adapter_models, capsys):
    guide = tmp_path / "edges.png"
    Image.effect_noise((96, 96), 80).convert("RGB").save(guide)

    def run(**fields):
        task = write_task(tmp_path, outputType="base64Data", outputFormat="PNG", **fields)
        code, out, err = run_cli(capsys, "run", task, "--models", adapter_models.root, "--device", "cpu")
        assert code == 0, err
        return Image.open(io.BytesIO(base64.b64decode(json.loads(out)["data"][0]["imageBase64Data"])))

    def differ(a, b):
        return a.tobytes() != b.tobytes()

    base = run()
    with_lora = run(lora=[{"model": "style_kohya", "weight": 1.5}, {"model": "detail_kohya", "weight": -1}])
    with_control = run(controlNet=[{"model": "canny_ldm", "guideImage": "edges.png", "controlMode": "controlnet",
                                    "endStepPercentage": 70}])
    assert differ(base, with_lora) and differ(base, with_control) and differ(with_lora, with_control)
    assert not differ(base, run(lora=[{"model": "style_kohya", "weight": 0}]))


def test_run_an_image_reruns_the_task_it_carries(tmp_path, tiny_checkpoint, capsys):
    task = write_task(tmp_path, outputFormat="PNG", seed=42)
    code, out, err = run_cli(capsys, "run", task, "--models", tiny_checkpoint.parent.parent, "--out", tmp_path / "out")
    assert code == 0, err
    first = json.loads(out)["data"][0]
    image_path = first["imageURL"].removeprefix("file://")
    code, out, err = run_cli(capsys, "run", image_path, "--models", tiny_checkpoint.parent.parent, "--out", tmp_path / "again")
    assert code == 0, err
    again = json.loads(out)["data"][0]
    assert again["seed"] == 42 and again["taskUUID"] == UUID
    a, b = Image.open(image_path), Image.open(again["imageURL"].removeprefix("file://"))
    assert a.tobytes() == b.tobytes()
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    code, out, err = run_cli(capsys, "run", plain, "--models", tiny_checkpoint.parent.parent)
    assert code == 1 and "plain.png: carries no sdxlkit task" in err
