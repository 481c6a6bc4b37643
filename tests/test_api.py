"""The headless route's logic without a server: error shapes, admission before queueing, outbound URL policy, jobs."""

import base64
import os
from pathlib import Path

import pytest

from sdxlkit.api.errors import error_response
from sdxlkit.api.jobs import Jobs, response_for
from sdxlkit.api.outbound import OutboundPolicy, check_outbound
from sdxlkit.api.service import TaskRefused, admit, confine_images, engine_view, read_request, results
from sdxlkit.errors import ImageInputError, ModelNotFound, SdxlKitError, TaskValidationError
from sdxlkit.runnable import check_runnable
from sdxlkit.task.model import Task

ROOT = Path(__file__).resolve().parent.parent / "example_workflows" / "input"  # stands for ComfyUI's input folder
UUIDS = ["1e4a0b2c-3d4e-4f60-8a7b-9c0d1e2f3a4b", "2e4a0b2c-3d4e-4f60-8a7b-9c0d1e2f3a4b"]


def task(i=0, **fields):
    return {"taskType": "imageInference", "taskUUID": UUIDS[i], "model": "civitai:101055@128078",
            "positivePrompt": "a small boat", "width": 512, "height": 512} | fields


def test_validation_errors_name_the_task_and_the_parameter():
    with pytest.raises(TaskValidationError) as info:
        admit([task(0), task(1, width=100, lora=[{"model": "x", "weight": 9}])], lambda t: None, OutboundPolicy(), ROOT)
    body, status = error_response(info.value, [task(0), task(1)])
    assert status == 400
    by_parameter = {e["parameter"]: e for e in body["errors"]}
    assert set(by_parameter) == {"width", "lora[0].weight"}
    assert all(e["taskUUID"] == UUIDS[1] and e["code"] == "invalidParameter" and e["taskType"] == "imageInference"
               for e in body["errors"])
    assert "128..2048" in by_parameter["width"]["message"] and "-4..4" in by_parameter["lora[0].weight"]["message"]


def test_a_task_the_engine_refuses_is_refused_before_any_is_queued():
    checked = []

    def check(t):
        checked.append(t.uuid)
        if t.uuid == UUIDS[1]:
            raise ModelNotFound("model 'x' not found")

    with pytest.raises(TaskRefused) as info:
        admit([task(0), task(1)], check, OutboundPolicy(), ROOT)
    assert checked == UUIDS and info.value.task_uuid == UUIDS[1]
    body, status = error_response(info.value.error, task_uuid=info.value.task_uuid)
    assert status == 400 and body["errors"][0]["code"] == "modelNotFound" and body["errors"][0]["taskUUID"] == UUIDS[1]


def test_admitted_tasks_get_a_seed_and_the_engine_sees_no_delivery_fields():
    seen = []
    (entry,) = admit([task(0, deliveryMethod="async", outputType="base64Data", includeCost=True)], seen.append, OutboundPolicy(), ROOT)
    admitted = entry.task
    assert isinstance(admitted.data["seed"], int) and 0 <= admitted.data["seed"] < 2**32
    assert not {"deliveryMethod", "outputType", "includeCost"} & set(seen[0].data)
    assert set(engine_view(admitted).data) == set(admitted.data) - {"deliveryMethod", "outputType", "includeCost"}
    (kept,) = admit([task(0, seed=5)], lambda t: None, OutboundPolicy(), ROOT)
    assert kept.task.data["seed"] == 5


def test_unsupported_fields_and_internal_errors_have_their_own_codes():
    with pytest.raises(TaskValidationError) as info:
        check_runnable(Task(task(1, ttl=60, scheduler="IPNDMScheduler")), {})
    body, status = error_response(info.value, [task(0), task(1)], task_uuid=UUIDS[1])
    by_parameter = {e["parameter"]: e for e in body["errors"]}
    assert status == 400 and set(by_parameter) == {"ttl", "scheduler"}
    assert by_parameter["ttl"]["code"] == "unsupportedParameter" and by_parameter["scheduler"]["code"] == "unsupportedScheduler"
    assert {e["taskUUID"] for e in body["errors"]} == {UUIDS[1]}  # the task checked, in a request of two
    body, status = error_response(RuntimeError("CUDA out of memory"), task_uuid=UUIDS[0])
    assert status == 500 and body["errors"][0]["code"] == "internalError"


@pytest.mark.parametrize("url,policy,reason", [
    ("https://example.com/hook", OutboundPolicy(), "off on this server"),
    ("ftp://93.184.216.34/x", OutboundPolicy(enabled=True), r"not an http\(s\) URL"),
    ("http://127.0.0.1:8188/hook", OutboundPolicy(enabled=True), "loopback or private"),
    ("http://[::1]/hook", OutboundPolicy(enabled=True), "loopback or private"),
    ("http://10.1.2.3/hook", OutboundPolicy(enabled=True), "loopback or private"),
    ("http://169.254.169.254/latest/meta-data", OutboundPolicy(enabled=True), "loopback or private"),
    ("http://localhost:9/hook", OutboundPolicy(enabled=True), "loopback or private"),
])
def test_outbound_urls_are_refused_unless_enabled_and_public(url, policy, reason):
    with pytest.raises(TaskValidationError, match=reason) as info:
        check_outbound(url, "webhookURL", policy)
    assert info.value.problems[0].path == "$.webhookURL"


def test_outbound_urls_allowed_by_policy():
    assert check_outbound("https://93.184.216.34/hook", "webhookURL", OutboundPolicy(enabled=True))
    assert check_outbound("http://127.0.0.1:9/hook", "uploadEndpoint", OutboundPolicy(enabled=True, allow_private=True))


def test_admit_checks_outbound_fields_with_the_policy():
    with pytest.raises(TaskRefused) as info:
        admit([task(0, webhookURL="http://127.0.0.1/x")], lambda t: None, OutboundPolicy(enabled=True), ROOT)
    assert info.value.task_uuid == UUIDS[0] and "private" in str(info.value)


def test_requests_split_into_tasks_and_polls():
    parsed = read_request([task(0), {"taskType": "getResponse", "taskUUID": UUIDS[1]}], 100)
    assert [t["taskUUID"] for t in parsed.tasks] == [UUIDS[0]] and parsed.polls == [UUIDS[1]]
    assert read_request(task(0), 100).tasks == [task(0)]
    for bad in ([], [1, 2], "text", [{"taskType": "getResponse"}]):
        with pytest.raises(SdxlKitError):
            read_request(bad, 100)


def test_results_follow_output_type_and_seed_order():
    from sdxlkit.task.model import Task

    images = [(b"\x89PNG first", "http://host/view?filename=a.png"), (b"\x89PNG second", "http://host/view?filename=b.png")]
    urls = results(Task(task(0, seed=7)), images)
    assert [r["seed"] for r in urls] == [7, 8] and [r["imageURL"] for r in urls] == [u for _, u in images]
    inline = results(Task(task(0, seed=7, outputType="base64Data", includeCost=True)), images)
    assert base64.b64decode(inline[1]["imageBase64Data"]) == b"\x89PNG second" and inline[0]["cost"] == 0
    uri = results(Task(task(0, seed=7, outputType="dataURI", outputFormat="PNG")), images)
    assert uri[0]["imageDataURI"].startswith("data:image/png;base64,")
    assert len({r["imageUUID"] for r in urls + inline}) == 4


def test_jobs_report_processing_success_error_and_unknown():
    jobs = Jobs()
    jobs.start(UUIDS[0], "p1")
    assert response_for(jobs.get(UUIDS[0]), UUIDS[0]) == (
        {"data": [{"taskType": "imageInference", "taskUUID": UUIDS[0], "status": "processing"}]}, 200)
    jobs.finish(UUIDS[0], [{"taskUUID": UUIDS[0], "seed": 1}])
    assert response_for(jobs.get(UUIDS[0]), UUIDS[0])[0]["data"][0]["status"] == "success"
    jobs.start(UUIDS[1], "p2")
    jobs.fail(UUIDS[1], [{"code": "internalError"}])
    assert response_for(jobs.get(UUIDS[1]), UUIDS[1]) == ({"errors": [{"code": "internalError"}]}, 200)
    assert response_for(None, "nope")[1] == 404
    assert not jobs.active(UUIDS[0])


def test_requests_may_name_image_files_only_inside_the_input_folder(tmp_path):
    from sdxlkit.task.model import Task

    root = tmp_path / "input"
    root.mkdir()
    (root / "harbor.png").write_bytes((ROOT / "harbor.png").read_bytes())
    secret = tmp_path / "secret.png"
    secret.write_bytes((ROOT / "harbor_mask.png").read_bytes())
    (root / "link.png").symlink_to(secret)  # a link inside the folder to a file outside it
    b64 = base64.b64encode((ROOT / "harbor_mask.png").read_bytes()).decode()
    confined = confine_images(Task(task(0, inputs={"seedImage": str(root / "harbor.png"), "maskImage": b64})), root)
    assert confined.data["inputs"] == {"seedImage": "harbor.png", "maskImage": "data:image/png;base64," + b64}
    messages = set()
    for ref in (str(secret), os.path.relpath(secret, root), f"file://{secret}", "link.png", str(tmp_path / "missing.png"),
                "../missing.png", "/etc/passwd"):
        with pytest.raises(TaskValidationError, match="not a file in ComfyUI's input folder") as info:
            confine_images(Task(task(0, controlNet=[{"model": "c", "guideImage": ref}])), root)
        assert info.value.problems[0].path == "$.controlNet[0].guideImage"
        messages.add(info.value.problems[0].message)
        with pytest.raises(TaskValidationError, match="not a file in ComfyUI's input folder") as info:
            confine_images(Task(task(0, photoMaker={"images": ["harbor.png", ref]})), root)
        assert info.value.problems[0].path == "$.photoMaker.images[1]"
    assert len(messages) == 1  # existing and missing files outside the folder are refused with the same words
    adapters = [{"model": "runware:55@1", "guideImages": ["harbor.png", b64]},
                {"model": "runware:55@2", "guideImages": [str(root / "harbor.png"), str(secret)]}]
    with pytest.raises(TaskValidationError, match="not a file in ComfyUI's input folder") as info:
        confine_images(Task(task(0, ipAdapters=adapters)), root)
    assert [p.path for p in info.value.problems] == ["$.ipAdapters[1].guideImages[1]"]
    adapters[1]["guideImages"].pop()
    confined = confine_images(Task(task(0, ipAdapters=adapters)), root)
    assert [a["guideImages"] for a in confined.data["ipAdapters"]] == [["harbor.png", "data:image/png;base64," + b64],
                                                                       ["harbor.png"]]
    assert adapters[1]["guideImages"] == [str(root / "harbor.png")]  # the request itself is left as it was


def test_image_errors_name_the_field_and_a_single_task():
    body, status = error_response(ImageInputError("inputs.seedImage: not a data URI, base64 image or existing file"), task(0))
    assert status == 400 and body["errors"][0]["parameter"] == "inputs.seedImage" and body["errors"][0]["taskUUID"] == UUIDS[0]
