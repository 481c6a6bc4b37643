import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdxlkit.errors import TaskValidationError
from sdxlkit.task import schema
from sdxlkit.task.model import Task, parse_tasks

UUID = "5f0c1b2a-3d4e-4f60-8a7b-9c0d1e2f3a4b"
MINIMAL = {"taskType": "imageInference", "taskUUID": UUID, "model": "civitai:101055@128078",
           "positivePrompt": "a cat", "width": 1024, "height": 1024}
FULL = MINIMAL | {
    "outputType": "dataURI", "outputFormat": "PNG", "outputQuality": 90, "deliveryMethod": "sync", "includeCost": True,
    "numberResults": 2, "negativePrompt": "blurry", "seed": 2**63 - 2, "steps": 50, "scheduler": "DPM++ 2M Karras",
    "CFGScale": 7.5, "strength": 0.5, "clipSkip": 2, "promptWeighting": "sdEmbeds", "maskMargin": 64,
    "inputs": {"seedImage": "a.png", "maskImage": "m.png"}, "vae": "sdxl_vae.safetensors",
    "lora": [{"model": "civitai:1@2", "weight": -4}], "acceleratorOptions": {"deepCache": True, "cacheStartStep": 2, "cacheEndStep": 40},
    "controlNet": [{"model": "runware:20@1", "guideImage": "g.png", "startStepPercentage": 10, "endStepPercentage": 90, "controlMode": "prompt"}],
    "hiresFix": True, "photoMaker": {"images": ["p.png"], "strength": 20, "style": "Cinematic"},
}


def problems_of(task):
    with pytest.raises(TaskValidationError) as info:
        parse_tasks(task)
    return info.value.problems


def test_valid_examples_pass():
    assert [t.data for t in parse_tasks(MINIMAL)] == [MINIMAL]
    assert len(parse_tasks([MINIMAL, FULL | {"taskUUID": "6f0c1b2a-3d4e-4f60-8a7b-9c0d1e2f3a4b"}])) == 2
    outpaint = MINIMAL | {"inputs": {"seedImage": "x"}, "outpaint": {"left": 64, "blur": 8}}
    assert parse_tasks(outpaint)[0].get("outpaint.blur") == 8


def test_defaults_come_from_schema_and_are_not_written():
    task = Task(MINIMAL)
    assert task.get("steps") == schema.default("steps") == 30
    assert task.get("outputFormat") == "JPG" and task.get("numberResults") == 1
    assert task.get("CFGScale") == 7.0  # no schema default: documented local default
    assert "steps" not in json.loads(task.to_json())


VIOLATIONS = [
    ({"width": 1020}, "$.width", "multiple of 8"),
    ({"width": 120}, "$.width", "128..2048"),
    ({"height": 2056}, "$.height", "128..2048"),
    ({"steps": 0}, "$.steps", "1..50"),
    ({"steps": 51}, "$.steps", "1..50"),
    ({"seed": 2**63}, "$.seed", "0..9223372036854775807"),
    ({"seed": -1}, "$.seed", "0..9223372036854775807"),
    ({"CFGScale": 31}, "$.CFGScale", "0..30"),
    ({"clipSkip": 5}, "$.clipSkip", "0..4"),
    ({"numberResults": 21}, "$.numberResults", "1..20"),
    ({"outputQuality": 19}, "$.outputQuality", "20..99"),
    ({"positivePrompt": "a"}, "$.positivePrompt", "2..3000"),
    ({"positivePrompt": "a" * 3001}, "$.positivePrompt", "2..3000"),
    ({"scheduler": "Euler Fast"}, "$.scheduler", "75 values"),
    ({"outputFormat": "GIF"}, "$.outputFormat", "JPG"),
    ({"promptWeighting": "a1111"}, "$.promptWeighting", "compel"),
    ({"taskUUID": "not-a-uuid"}, "$.taskUUID", "UUID v4"),
    ({"taskType": "imageUpscale"}, "$.taskType", "imageInference"),
    ({"bogus": 1}, "$.bogus", "unknown field"),
    ({"inputs": {"maskImage": "m.png"}}, "$.inputs", "seedImage"),
    ({"inputs": {"seedImage": "s.png", "extra": "x"}}, "$.inputs.extra", "unknown field"),
    ({"strength": 0.5}, "$.strength", "seedImage"),
    ({"inputs": {"seedImage": "s", "maskImage": "m"}, "maskMargin": 16}, "$.maskMargin", "32..128"),
    ({"maskMargin": 64}, "$.maskMargin", "maskImage"),
    ({"inputs": {"seedImage": "s"}, "outpaint": {"top": 65}}, "$.outpaint.top", "multiple of 64"),
    ({"inputs": {"seedImage": "s"}, "outpaint": {"blur": 4}}, "$.outpaint", "at least one of top"),
    ({"inputs": {"seedImage": "s"}, "outpaint": {"top": 64, "blur": 33}}, "$.outpaint.blur", "0..32"),
    ({"lora": [{"model": "x", "weight": 4.5}]}, "$.lora[0].weight", "-4..4"),
    ({"lora": [{"weight": 1}]}, "$.lora[0].model", "required"),
    ({"controlNet": [{"model": "runware:20@1", "guideImage": "g", "startStep": 3, "startStepPercentage": 5}]},
     "$.controlNet[0]", "startStep or startStepPercentage"),
    ({"controlNet": [{"model": "runware:20@1", "guideImage": "g", "startStep": 10, "endStep": 5}]},
     "$.controlNet[0].endStep", "after startStep"),
    ({"steps": 20, "controlNet": [{"model": "runware:20@1", "guideImage": "g", "endStep": 25}]},
     "$.controlNet[0].endStep", "<= steps (20)"),
    ({"steps": 20, "acceleratorOptions": {"cacheEndStep": 30}}, "$.acceleratorOptions.cacheEndStep", "<= steps (20)"),
    ({"acceleratorOptions": {"cacheStartStepPercentage": 50, "cacheEndStepPercentage": 40}},
     "$.acceleratorOptions.cacheEndStepPercentage", "after cacheStartStepPercentage"),
    ({"hiresFix": {"model": "runware:504@1", "steps": 0}}, "$.hiresFix.steps", ">= 1"),
    ({"hiresFix": False}, "$.hiresFix", "exactly true"),
    ({"photoMaker": {"images": []}}, "$.photoMaker.images", "1..4 items"),
    ({"CFGScale": True}, "$.CFGScale", "a number"),
    ({"width": 1024.5}, "$.width", "an integer"),
]


@pytest.mark.parametrize("change,path,allowed", VIOLATIONS, ids=[v[1] + ":" + v[2] for v in VIOLATIONS])
def test_each_violation_names_field_and_allowed_range(change, path, allowed):
    problems = problems_of(MINIMAL | change)
    assert any(p.path == path and allowed in p.message for p in problems), problems


def test_missing_required_fields_are_each_named():
    paths = {p.path for p in problems_of({"taskType": "imageInference"})}
    assert {"$.taskUUID", "$.model", "$.positivePrompt", "$.width", "$.height"} <= paths


def test_all_problems_reported_at_once_with_array_index():
    tasks = [MINIMAL, MINIMAL | {"taskUUID": "6f0c1b2a-3d4e-4f60-8a7b-9c0d1e2f3a4b", "width": 7, "steps": 99}]
    paths = {p.path for p in problems_of(tasks)}
    assert {"$[1].width", "$[1].steps"} <= paths


def test_duplicate_task_uuids_rejected():
    assert any("more than one task" in p.message for p in problems_of([MINIMAL, MINIMAL]))


def test_top_level_must_be_task_or_nonempty_array():
    for value in ([], 3, "task", None):
        assert problems_of(value)[0].path == "$"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
field_names = st.sampled_from(sorted(schema.local_schema()["properties"]) + ["unknownField"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_fuzz_arbitrary_json_raises_only_validation_errors(value):
    try:
        parse_tasks(value)
    except TaskValidationError as exc:
        assert exc.problems and all(p.path.startswith("$") for p in exc.problems)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(field_names, json_values, max_size=4))
def test_fuzz_near_valid_tasks_raise_only_validation_errors(changes):
    task = copy.deepcopy(FULL) | changes
    try:
        parse_tasks(task)
    except TaskValidationError as exc:
        assert exc.problems and all(p.message for p in exc.problems)


@pytest.mark.parametrize(("fields", "path"), [
    ({"numberResults": 2.0}, "numberResults"), ({"seed": 5.0}, "seed"), ({"outputQuality": 95.0}, "outputQuality"),
    ({"clipSkip": 1.0}, "clipSkip"),
    ({"inputs": {"seedImage": "s.png"}, "outpaint": {"right": 64.0}}, "outpaint.right"),
    ({"steps": 4, "controlNet": [{"model": "m", "guideImage": "g.png", "startStep": 0.0, "endStep": 3}]},
     "controlNet.0.startStep"),
    ({"steps": 4, "acceleratorOptions": {"deepCache": True, "cacheEndStep": 2.0}}, "acceleratorOptions.cacheEndStep"),
    ({"refiner": {"model": "r", "startStepPercentage": 50.0}}, "refiner.startStepPercentage"),
    ({"hiresFix": {"model": "runware:504@1", "steps": 3.0}}, "hiresFix.steps")])
def test_whole_number_floats_where_integers_go_become_integers(fields, path):
    """JSON Schema counts 2.0 as an integer; the engine counts, seeds and indexes with these fields."""
    (parsed,) = parse_tasks(MINIMAL | fields)
    value = parsed.data
    for part in path.split("."):
        value = value[int(part) if part.isdigit() else part]
    assert type(value) is int


def test_fractions_where_integers_go_are_still_refused():
    assert [p.path for p in problems_of(MINIMAL | {"numberResults": 2.5})] == ["$.numberResults"]


def test_a_task_uuid_with_a_final_newline_is_refused():
    """The schema's pattern ends in `$`, which in JSON Schema's regexes matches only at the very end."""
    assert [p.path for p in problems_of(MINIMAL | {"taskUUID": UUID + "\n"})] == ["$.taskUUID"]


def test_task_uuids_of_the_wrong_type_are_type_errors_not_a_crash():
    problems = problems_of([MINIMAL | {"taskUUID": ["a"]}, MINIMAL | {"taskUUID": ["a"]}])
    assert [p.path for p in problems] == ["$[0].taskUUID", "$[1].taskUUID"]


def test_the_seeds_of_every_result_must_be_seeds_the_format_allows():
    most = 2**63 - 1
    assert parse_tasks(MINIMAL | {"seed": most - 2, "numberResults": 3})
    (problem,) = problems_of(MINIMAL | {"seed": most - 1, "numberResults": 3})
    assert problem.path == "$.seed" and f"use a seed <= {most - 2}" in problem.message


def test_a_one_of_object_missing_a_field_names_the_field():
    assert [(p.path, p.message) for p in problems_of(MINIMAL | {"hiresFix": {"steps": 5}})] == [
        ("$.hiresFix.model", "is required")]


def test_refiner_switch_messages_say_what_the_task_set():
    (default,) = problems_of(MINIMAL | {"steps": 10, "refiner": {"model": "r"}, "inputs": {"seedImage": "s.png"},
                                         "strength": 0.2})
    assert default.path == "$.refiner.startStepPercentage"
    assert default.message.startswith("not set, so the default 80 (step 8 of 10), so the base model would run no step")
    (too_few,) = problems_of(MINIMAL | {"steps": 1, "refiner": {"model": "r"}})
    assert too_few.path == "$.refiner" and "need a step each, but the task runs 1 step(s)" in too_few.message
