import base64
import io
import json
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

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


def test_a_task_failing_while_it_runs_keeps_the_results_of_the_others(tmp_path, tiny_checkpoint, capsys):
    import torch

    from sdxlkit.tiny_lora import write_lora

    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    (models / "checkpoints" / tiny_checkpoint.name).symlink_to(tiny_checkpoint)
    write_lora({f"lora_unet_not_a_layer.hada_w{i}_{s}": torch.ones(2, 2) for i in (1, 2) for s in "ab"},
               models / "loras" / "elsewhere.safetensors")
    first, failing, last = (str(uuid.uuid4()) for _ in range(3))
    base = json.loads(write_task(tmp_path).read_text())
    tasks = [base | {"taskUUID": first}, base | {"taskUUID": failing, "lora": [{"model": "elsewhere"}]},
             base | {"taskUUID": last, "seed": 9}]
    (tmp_path / "tasks.json").write_text(json.dumps(tasks))
    code, out, err = run_cli(capsys, "run", tmp_path / "tasks.json", "--models", models, "--out", tmp_path / "out")
    assert code == 1
    answer = json.loads(out)
    assert [r["taskUUID"] for r in answer["data"]] == [first, last]
    (error,) = answer["errors"]
    assert error["taskUUID"] == failing and "elsewhere.safetensors: 1 of its 1 layers" in error["message"]
    assert f"error: task {failing}: elsewhere.safetensors" in err
    assert all(Path(r["imageURL"].removeprefix("file://")).is_file() for r in answer["data"])


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


def test_not_yet_supported_fields_are_refused_before_loading(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sdxlkit.task.model.NOT_EXECUTABLE_YET", ("ttl",))
    task = write_task(tmp_path, ttl=60)
    code, out, err = run_cli(capsys, "run", task, "--models", tmp_path / "no-models-here")
    assert code == 2 and "$.ttl: not supported yet" in err


def test_missing_model_says_where_it_looked(tmp_path, capsys):
    task = write_task(tmp_path, model="civitai:101055@128078")
    code, out, err = run_cli(capsys, "run", task, "--models", tmp_path / "models")
    assert code == 1 and "sdxlkit_models.json" in err and "checkpoints" in err


def test_url_images_are_off_by_default(tmp_path, tiny_checkpoint, capsys):
    task = write_task(tmp_path, inputs={"seedImage": "https://example.invalid/a.png"})
    code, out, err = run_cli(capsys, "run", task, "--models", tiny_checkpoint.parent.parent)
    assert code == 2 and "$.inputs.seedImage" in err and "--allow-urls" in err
    code, out, err = run_cli(capsys, "validate", task)  # refused as run refuses it
    assert code == 2 and "$.inputs.seedImage" in err and "--allow-urls" in err
    code, out, err = run_cli(capsys, "validate", task, "--allow-urls")  # accepted, not downloaded
    assert code == 0, err


def test_outpaint_size_mismatch_is_refused(tmp_path, tiny_checkpoint, capsys):
    Image.new("RGB", (128, 128)).save(tmp_path / "seed.png")
    task = write_task(tmp_path, inputs={"seedImage": "seed.png"}, outpaint={"left": 64}, width=256)
    code, out, err = run_cli(capsys, "run", task, "--models", tiny_checkpoint.parent.parent)
    assert code == 2 and "$.outpaint" in err and "192x128" in err and "256x128" in err


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


# --- validate runs every check of run that needs no model file ---

def _same_refusal(capsys, tmp_path, task):
    """validate and run (with no models at all: the checks come first) refuse `task` alike: exit 2, same lines."""
    code_v, out_v, err_v = run_cli(capsys, "validate", task)
    code_r, out_r, err_r = run_cli(capsys, "run", task, "--models", tmp_path / "no-models", "--out", tmp_path / "out")
    assert code_v == code_r == 2 and out_v == out_r == ""
    assert err_v == err_r
    return err_v


@pytest.mark.parametrize("fields,expected", [
    ({"scheduler": "IPNDMScheduler"}, ["$.scheduler: scheduler 'IPNDMScheduler' cannot be used with SDXL here"]),
    ({"lora": [{"model": "style", "transformer": "high"}]}, ["$.lora[0].transformer: got 'high'; SDXL has a single"]),
    ({"inputs": {"seedImage": "missing.png"}}, ["$.inputs.seedImage: not a data URI, base64 image or existing file"]),
    ({"inputs": {"seedImage": "seed.png"}, "outpaint": {"left": 64}, "width": 256},
     ["$.outpaint: inputs.seedImage 128x128 extended by left/right/top/bottom gives 192x128, but width x height is 256x128"]),
    ({"inputs": {"seedImage": "seed.png", "maskImage": "small.png"}},
     ["$.inputs.maskImage: is 64x64 but inputs.seedImage is 128x128"]),
    ({"scheduler": "DPMSolverMultistepInverse", "lora": [{"model": "x", "transformer": "low"}], "ttl": 60},
     ["$.ttl: not supported yet", "$.scheduler: scheduler 'DPMSolverMultistepInverse'", "$.lora[0].transformer: got 'low'"]),
])
def test_validate_refuses_what_run_refuses_with_the_same_lines(tmp_path, capsys, monkeypatch, fields, expected):
    monkeypatch.setattr("sdxlkit.task.model.NOT_EXECUTABLE_YET", ("ttl",))
    Image.new("RGB", (128, 128)).save(tmp_path / "seed.png")
    Image.new("L", (64, 64)).save(tmp_path / "small.png")
    err = _same_refusal(capsys, tmp_path, write_task(tmp_path, **fields))
    assert f"({len(expected)} problem(s))" in err
    for line in expected:
        assert f"  - {line}" in err


def test_problems_of_an_array_name_their_task_and_all_are_listed(tmp_path, capsys):
    first = json.loads(write_task(tmp_path).read_text())
    second = first | {"taskUUID": "2e4a0b2c-3d4e-4f60-8a7b-9c0d1e2f3a4b", "scheduler": "EDMEulerScheduler",
                      "inputs": {"seedImage": "nope.png"}}
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps([first, second]))
    err = _same_refusal(capsys, tmp_path, path)
    assert "(2 problem(s))" in err and "$[1].scheduler:" in err and "$[1].inputs.seedImage:" in err


def test_validate_lists_format_problems_and_run_checks_of_every_task_together(tmp_path, capsys):
    first = json.loads(write_task(tmp_path).read_text()) | {"width": 120}
    second = first | {"taskUUID": "2e4a0b2c-3d4e-4f60-8a7b-9c0d1e2f3a4b", "width": 128, "scheduler": "EDMEulerScheduler",
                      "inputs": {"seedImage": "nope.png"}}
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps([first, second]))
    code, _, err = run_cli(capsys, "validate", path)
    assert code == 2 and "(3 problem(s))" in err
    assert "$[0].width:" in err and "$[1].scheduler:" in err and "$[1].inputs.seedImage:" in err


@pytest.mark.parametrize("text,says", [("[" * 100_000, "nests arrays or objects too deeply"),
                                       ('{"seed": ' + "9" * 5000 + "}", "is not valid JSON")])
def test_json_python_cannot_hold_is_a_one_line_refusal(tmp_path, capsys, text, says):
    path = tmp_path / "task.json"
    path.write_text(text)
    for command in ("validate", "run"):
        code, _, err = run_cli(capsys, command, path)
        assert code == 2 and says in err and "Traceback" not in err


def test_compel_prompts_compel_cannot_parse_are_refused_before_a_model_loads(tmp_path, capsys):
    pytest.importorskip("compel")
    task = write_task(tmp_path, promptWeighting="compel", positivePrompt='("a", "b").blend(1)')
    err = _same_refusal(capsys, tmp_path, task)
    assert "$.positivePrompt: compel cannot parse it: while parsing Blend: mismatched prompts/weights" in err


def test_prompts_their_weighting_cannot_parse_are_refused_before_a_model_loads_face_prompts_too(tmp_path, capsys):
    face = {"confidence": 0.3, "steps": 2}
    task = write_task(tmp_path, promptWeighting="sdEmbeds", positivePrompt="a (lighthouse:1.2.3) at dusk",
                      ultralytics=face | {"negativePrompt": "(ugly:1..2)"})
    err = _same_refusal(capsys, tmp_path, task)
    assert "$.positivePrompt: prompt weight '1.2.3' in ':1.2.3)' is not a number" in err
    assert "$.ultralytics.negativePrompt: prompt weight '1..2'" in err
    pytest.importorskip("compel")
    task = write_task(tmp_path, promptWeighting="compel", ultralytics=face | {"positivePrompt": '("a", "b").blend(0.7)'})
    err = _same_refusal(capsys, tmp_path, task)
    assert "$.ultralytics.positivePrompt: compel cannot parse it" in err


def test_demo_refuses_a_zero_size_or_step_count(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SDXLKIT_CACHE", str(tmp_path / "cache"))
    code, _, err = run_cli(capsys, "demo", "--steps", "0", "--out", tmp_path / "out")
    assert code == 2 and "$.steps: got 0" in err
    assert not (tmp_path / "out").exists()


def test_an_unknown_scheduler_suggests_close_names(tmp_path, capsys):
    code, _, err = run_cli(capsys, "validate", write_task(tmp_path, scheduler="euler a"))
    assert code == 2 and '$.scheduler: got "euler a"; did you mean "Euler a"?' in err
    code, _, err = run_cli(capsys, "validate", write_task(tmp_path, scheduler="DPM++ 2M karas"))
    assert code == 2 and 'did you mean "DPM++ 2M Karras"' in err


# --- model references: the field, the task, advice that fits the reference ---

@pytest.mark.parametrize("ref,says,never", [
    ("/nope/checkpoints/x.safetensors", "model file /nope/checkpoints/x.safetensors does not exist", "sdxlkit_models.json"),
    ("civitai:1@2", "model id 'civitai:1@2' is not mapped to a file; map it in", "not found in"),
    ("mystery", "model 'mystery' not found in", "sdxlkit_models.json"),
])
def test_missing_models_get_advice_for_their_kind_of_reference(tmp_path, adapter_models, capsys, ref, says, never):
    path = tmp_path / "tasks.json"
    task = json.loads(write_task(tmp_path).read_text())
    path.write_text(json.dumps([task, task | {"taskUUID": "2e4a0b2c-3d4e-4f60-8a7b-9c0d1e2f3a4b", "lora": [{"model": ref}]}]))
    code, out, err = run_cli(capsys, "run", path, "--models", adapter_models.root, "--device", "cpu")
    assert code == 1 and out == ""
    assert err.startswith(f"error: $[1].lora[0].model: {says}") and never not in err


# --- ordinary mistakes: one line, a documented exit code ---

def test_unknown_or_absent_devices_are_one_line(tmp_path, tiny_checkpoint, capsys):
    import torch

    task = write_task(tmp_path)
    code, _, err = run_cli(capsys, "run", task, "--models", tiny_checkpoint.parent.parent, "--device", "tpu")
    assert code == 1 and err.startswith("error: device 'tpu' is not a device torch knows") and err.count("\n") == 1
    if not torch.cuda.is_available():
        code, _, err = run_cli(capsys, "run", task, "--models", tiny_checkpoint.parent.parent, "--device", "cuda")
        assert code == 1 and err.startswith("error: device 'cuda' is not available here") and err.count("\n") == 1


def test_out_naming_a_file_is_refused_before_generating(tmp_path, tiny_checkpoint, capsys, monkeypatch):
    import sdxlkit.generate

    def no_generation(*args, **kwargs):
        raise AssertionError("generation started")

    monkeypatch.setattr(sdxlkit.generate, "generate_each", no_generation)
    (tmp_path / "taken").write_text("not a folder")
    for out in (tmp_path / "taken", tmp_path / "taken" / "sub"):
        code, _, err = run_cli(capsys, "run", write_task(tmp_path), "--models", tiny_checkpoint.parent.parent, "--out", out)
        assert code == 1 and f"{tmp_path / 'taken'} is a file, not a folder" in err and err.count("\n") == 1


def test_each_image_is_written_when_done_and_an_interrupt_keeps_it(tmp_path, tiny_checkpoint, capsys, monkeypatch):
    """Also inline outputs: the results finished before Ctrl-C are printed."""
    import sdxlkit.cli

    @contextmanager
    def interrupt_in_image_two():
        def on_step(done, total):
            if done > total // 2:  # image 2 of 2 has begun: image 1 must be on disk already
                assert len(list((tmp_path / "out").glob("*.png"))) == 1
                raise KeyboardInterrupt
        yield on_step

    monkeypatch.setattr(sdxlkit.cli, "_progress", interrupt_in_image_two)
    task = write_task(tmp_path, numberResults=2, outputFormat="PNG")
    code, out, err = run_cli(capsys, "run", task, "--models", tiny_checkpoint.parent.parent, "--out", tmp_path / "out")
    assert code == 130 and "interrupted" in err
    (finished,) = json.loads(out)["data"]  # the finished image's result is answered too
    (written,) = (tmp_path / "out").glob("*")
    assert finished["imageURL"] == written.as_uri()
    assert written.suffix == ".png" and f"wrote {written.as_uri()}" in err
    assert json.loads(read_texts(written.read_bytes())["sdxlkit_task"])["seed"] == 5
    assert Image.open(written).size == (128, 128)


def _out_of_memory_in_image(index: int, count: int):
    """A progress bar that raises CUDA's out-of-memory error once image `index` (from 1) of `count` has begun: what
    the UNet raises on a card the Nth image no longer fits."""
    import torch

    @contextmanager
    def progress():
        def on_step(done, total):
            if done > total * (index - 1) // count:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total "
                                             "capacity of 8.00 GiB of which 1.05 GiB is free.")
        yield on_step
    return progress


def test_running_out_of_memory_in_an_image_keeps_the_images_finished_before(tmp_path, tiny_checkpoint, capsys,
                                                                           monkeypatch):
    """Inline images exist nowhere else: those finished are answered with the error, which is one line."""
    import sdxlkit.cli

    monkeypatch.setattr(sdxlkit.cli, "_progress", _out_of_memory_in_image(3, 3))
    task = write_task(tmp_path, numberResults=3, outputType="base64Data")
    code, out, err = run_cli(capsys, "run", task, "--models", tiny_checkpoint.parent.parent)
    assert code == 1
    answer = json.loads(out)
    assert [r["seed"] for r in answer["data"]] == [5, 6]
    assert all(Image.open(io.BytesIO(base64.b64decode(r["imageBase64Data"]))).size == (128, 128) for r in answer["data"])
    (error,) = answer["errors"]
    assert error["taskUUID"] == UUID and "CUDA out of memory" in error["message"]
    assert "Traceback" not in err
    assert f"error: task {UUID}: CUDA out of memory. Tried to allocate 2.00 GiB" in err and "--lowvram" in err

    monkeypatch.setattr(sdxlkit.cli, "_progress", _out_of_memory_in_image(1, 3))  # nothing finished: the error alone
    code, out, err = run_cli(capsys, "run", task, "--models", tiny_checkpoint.parent.parent)
    assert code == 1 and out == ""
    assert err.startswith("error: CUDA out of memory. Tried to allocate 2.00 GiB") and err.count("\n") == 1


def _sdxlkit(*argv, **popen):
    import subprocess
    import sys
    from pathlib import Path

    return subprocess.Popen([sys.executable, "-m", "sdxlkit", *map(str, argv)], cwd=Path(__file__).resolve().parent.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def test_ctrl_c_and_a_closed_pipe_are_quiet(tmp_path, tiny_checkpoint):
    import signal

    task = write_task(tmp_path, numberResults=2, steps=40, outputFormat="PNG")
    run = _sdxlkit("run", task, "--models", tiny_checkpoint.parent.parent, "--out", tmp_path / "out")
    while "wrote " not in (line := run.stderr.readline()) and line:
        pass  # (the progress bar shares the line, before a carriage return)
    run.send_signal(signal.SIGINT)  # Ctrl-C while image 2 is sampling
    rest = run.stderr.read()
    assert run.wait(timeout=60) == 130
    assert "Traceback" not in rest and "interrupted: the images finished are kept" in rest
    (kept,) = (tmp_path / "out").glob("*")
    assert line.split("wrote ")[1].strip() == kept.as_uri() and Image.open(kept).size == (128, 128)

    for argv, codes in ((["convert", "example_tasks/txt2img.task.json", "--to", "workflow"], {141}),
                        (["--help"], {0, 141})):  # argparse itself drops a help text it cannot write
        piped = _sdxlkit(*argv)
        piped.stdout.close()  # `| head` that has read enough
        assert piped.stderr.read() == "" and piped.wait(timeout=60) in codes


# --- command line ---

def test_version_verbose_anywhere_and_helpful_help(tmp_path, capsys, monkeypatch):
    from sdxlkit import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"sdxlkit {__version__}"
    task = write_task(tmp_path)
    assert run_cli(capsys, "validate", task, "-v")[0] == 0
    assert run_cli(capsys, "-v", "validate", task)[0] == 0
    monkeypatch.setenv("SDXLKIT_MODELS", "/srv/sdxl_models")
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "$SDXLKIT_MODELS (/srv/sdxl_models)" in help_text
    assert "an image saved by sdxlkit" in help_text


def test_convert_needs_no_input_dir_without_images_and_refuses_what_validate_refuses(tmp_path, capsys):
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    code, out, err = run_cli(capsys, "convert", root / "example_api" / "txt2img.api.json", "--to", "task")
    assert code == 0, err
    twin = json.loads((root / "example_tasks" / "txt2img.task.json").read_text())
    assert json.loads(out)["positivePrompt"] == twin["positivePrompt"]
    code, _, err = run_cli(capsys, "convert", root / "example_api" / "img2img.api.json", "--to", "task")
    assert code == 1 and "--input-dir" in err

    task = write_task(tmp_path, scheduler="IPNDMScheduler", lora=[{"model": "style", "transformer": "high"}],
                      inputs={"seedImage": "missing.png"})
    code_v, _, err_v = run_cli(capsys, "validate", task)
    assert "(3 problem(s))" in err_v
    for target in ("api", "workflow"):
        code, out, err = run_cli(capsys, "convert", task, "--to", target)
        assert (code, out, err) == (code_v, "", err_v) and code == 2


def test_the_version_is_the_packages():
    import re
    from pathlib import Path

    from sdxlkit import __version__

    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert re.search(r'^version = "([^"]+)"', pyproject, re.MULTILINE)[1] == __version__


def test_compile_and_lowvram_together_are_refused_before_anything_loads(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:  # argparse's own refusal
        main(["demo", "--compile", "--lowvram", "--out", str(tmp_path)])
    code, err = exit_.value.code, capsys.readouterr().err
    assert code == 2 and "--lowvram: not allowed with argument --compile" in err and not any(tmp_path.iterdir())


def test_the_cli_and_the_model_spec_import_without_torch_or_diffusers():
    """validate starts without them, and the Loader node's module registers before they are needed."""
    code = ("import sys; sys.modules['torch'] = None; sys.modules['diffusers'] = None\n"
            "import sdxlkit.cli, sdxlkit.runner, sdxlkit.loading.loader\n"
            "sdxlkit.loading.loader.ModelSpec('model.safetensors', memory='lowvram')\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_an_image_of_a_task_with_relative_image_paths_runs_again_from_anywhere(tmp_path, tiny_checkpoint, capsys,
                                                                                 monkeypatch):
    folder = tmp_path / "job"
    folder.mkdir()
    Image.new("RGB", (128, 128), (200, 30, 30)).save(folder / "seed.png")
    task = write_task(folder, inputs={"seedImage": "seed.png"}, strength=0.7, outputFormat="PNG")
    models = tiny_checkpoint.parent.parent
    code, out, err = run_cli(capsys, "run", task, "--models", models, "--out", tmp_path / "first")
    assert code == 0, err
    first = Path(json.loads(out)["data"][0]["imageURL"].removeprefix("file://"))
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "run", first, "--models", models, "--out", tmp_path / "again")
    assert code == 0, err
    again = Path(json.loads(out)["data"][0]["imageURL"].removeprefix("file://"))
    assert list(Image.open(first).getdata()) == list(Image.open(again).getdata())
    embedded = json.loads(read_texts(first.read_bytes())["sdxlkit_task"])
    assert embedded["inputs"]["seedImage"] == str((folder / "seed.png").resolve())
