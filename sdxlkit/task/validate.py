"""Validation of imageInference tasks: the schema's rules plus the cross-field rules it cannot express.

Every problem is reported at once, each with its JSON path and what is allowed there.
"""

from __future__ import annotations

import difflib
import json
from functools import lru_cache
from typing import Any, Iterable

from ..errors import Problem, TaskValidationError
from .finite import finite_message, non_finite
from .schema import local_schema

_STEP_PAIRS = (("startStep", "startStepPercentage"), ("endStep", "endStepPercentage"))
_CACHE_PAIRS = (("cacheStartStep", "cacheStartStepPercentage"), ("cacheEndStep", "cacheEndStepPercentage"))


def _ecma_anchored(node: Any) -> Any:
    """The schema with each pattern's final `$` as `\\Z`: in JSON Schema's regexes (ECMA-262) `$` matches only at the
    end, where Python's also matches before a final newline ("<uuid>\\n" would pass)."""
    if isinstance(node, dict):
        out = {k: _ecma_anchored(v) for k, v in node.items()}
        pattern = node.get("pattern")
        if isinstance(pattern, str) and pattern.endswith("$") and not pattern.endswith("\\$"):
            out["pattern"] = pattern[:-1] + "\\Z"
        return out
    return [_ecma_anchored(v) for v in node] if isinstance(node, list) else node


@lru_cache(maxsize=1)
def _validator():
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_ecma_anchored(local_schema()))


def _branches(schema: dict) -> list[dict]:
    return [schema, *(b for key in ("oneOf", "anyOf", "allOf") for b in schema.get(key, ()) if isinstance(b, dict))]


def whole_numbers_as_int(value: Any, schema: dict | None = None) -> Any:
    """`value` with every whole-number float where the schema wants an integer (JSON Schema counts 2.0 as an
    integer) turned into an int, so the engine gets the integers it counts and indexes with."""
    schema = local_schema() if schema is None else schema
    branches = _branches(schema)
    if isinstance(value, float) and value.is_integer() and any(b.get("type") == "integer" for b in branches):
        return int(value)
    if isinstance(value, dict):
        fields: dict = {}
        for branch in branches:
            for name, sub in branch.get("properties", {}).items():
                fields.setdefault(name, sub)
        return {k: whole_numbers_as_int(v, fields[k]) if k in fields else v for k, v in value.items()}
    if isinstance(value, list):
        items = next((b["items"] for b in branches if isinstance(b.get("items"), dict)), None)
        return [whole_numbers_as_int(v, items) for v in value] if items is not None else value
    return value


def _json_path(parts: Iterable[Any], root: str = "$") -> str:
    out = root
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def describe_allowed(schema: dict) -> str:
    """Human description of what a sub-schema allows, e.g. "an integer in 128..2048, a multiple of 8"."""
    if "const" in schema:
        return f"exactly {_show(schema['const'])}"
    if "enum" in schema:
        values = schema["enum"]
        shown = ", ".join(_show(v) for v in values[:12]) + (f", ... ({len(values)} values)" if len(values) > 12 else "")
        return f"one of {shown}"
    for key in ("oneOf", "anyOf"):
        if key in schema and "type" not in schema:
            return " or ".join(describe_allowed(s) for s in schema[key])
    kind = schema.get("type")
    noun = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
            "object": "an object", "array": "an array"}.get(kind, "a value")
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if lo is not None and hi is not None:
        noun += f" in {lo}..{hi}"
    elif lo is not None:
        noun += f" >= {lo}"
    elif hi is not None:
        noun += f" <= {hi}"
    if "multipleOf" in schema:
        noun += f", a multiple of {schema['multipleOf']}"
    if kind == "string":
        lo, hi = schema.get("minLength"), schema.get("maxLength")
        if lo is not None and hi is not None:
            noun += f" of {lo}..{hi} characters"
        elif lo is not None:
            noun += f" of at least {lo} character(s)"
        if "pattern" in schema and schema.get("format") == "uuid":
            noun += " holding a UUID v4"
    if kind == "array":
        lo, hi = schema.get("minItems"), schema.get("maxItems")
        if lo is not None or hi is not None:
            noun += f" of {lo or 0}..{hi if hi is not None else 'any'} items"
    if kind == "object" and "properties" in schema:
        noun += " with fields " + ", ".join(schema["properties"])
    return noun


def close_matches(value: str, allowed: list) -> list[str]:
    """Allowed strings that `value` probably meant: same letters in another case first, then near spellings."""
    by_lower = {a.lower(): a for a in allowed if isinstance(a, str)}
    if value.lower() in by_lower:
        return [by_lower[value.lower()]]
    return [by_lower[m] for m in difflib.get_close_matches(value.lower(), list(by_lower), n=3, cutoff=0.75)]


def _problem_from_error(error, root: str) -> list[Problem]:
    path = _json_path(error.absolute_path, root)
    kind = error.validator
    if kind == "anyOf" and error.context and all(e.validator == "required" for e in error.context):
        needed = [e.message.split("'")[1] for e in error.context]
        return [Problem(path, "needs at least one of " + ", ".join(needed))]
    if kind in ("oneOf", "anyOf") and error.context:
        # Report the problems of the alternative the value was meant for (the one whose type/const matched).
        by_branch: dict[int, list] = {}
        for sub in error.context:
            by_branch.setdefault(sub.schema_path[0], []).append(sub)
        fitting = [errs for errs in by_branch.values()
                   if not any(e.validator in ("type", "const") and not e.relative_path for e in errs)]
        if len(fitting) == 1:
            return [p for sub in fitting[0] for p in _problem_from_error(sub, root)]
        return [Problem(path, f"got {_show(error.instance)}; allowed: {describe_allowed(error.schema)}")]
    if kind == "additionalProperties":
        allowed = ", ".join(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return [Problem(_json_path([*error.absolute_path, name], root), f"unknown field {name!r}; allowed fields: {allowed}")
                for name in extra]
    if kind == "required":
        name = error.message.split("'")[1]
        return [Problem(_json_path([*error.absolute_path, name], root), "is required")]
    if kind == "dependentRequired":
        return [Problem(path, error.message.replace("is a dependency of", "is required when setting"))]
    if kind == "not":
        if not isinstance(error.instance, dict):
            return []  # the type error of the same value is reported on its own
        present = [k for k in error.validator_value.get("required", []) if k in error.instance]
        return [Problem(path, f"set only one of {' or '.join(present)}: they are two ways to say the same thing")]
    if kind == "enum" and isinstance(error.instance, str) and (near := close_matches(error.instance, error.validator_value)):
        return [Problem(path, f"got {_show(error.instance)}; did you mean {' or '.join(map(_show, near))}? "
                              f"(one of {len(error.validator_value)} values; case matters)")]
    if kind == "allOf":
        return [p for sub in error.context for p in _problem_from_error(sub, root)]
    return [Problem(path, f"got {_show(error.instance)}; allowed: {describe_allowed(error.schema)}")]


def _schema_problems(task: Any, root: str) -> list[Problem]:
    errors = sorted(_validator().iter_errors(task), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    problems: list[Problem] = []
    for error in errors:
        for problem in _problem_from_error(error, root):
            if problem not in problems:
                problems.append(problem)
    return problems


def _number(value: Any) -> float | None:
    """The value if it is a number (type errors are reported by the schema check), else None."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _window_problems(obj: dict, path: str, steps: int, start_key: str, end_key: str, pct: tuple[str, str]) -> list[Problem]:
    """start < end, end <= steps, for a pair of absolute steps or a pair of percentages (or one of each)."""
    problems = []
    start, end, start_pct, end_pct = (_number(obj.get(k)) for k in (start_key, end_key, *pct))
    start_abs = start if start is not None else (None if start_pct is None else steps * start_pct / 100)
    end_abs = end if end is not None else (None if end_pct is None else steps * end_pct / 100)
    if end is not None and end > steps:
        problems.append(Problem(f"{path}.{end_key}", f"got {end}; must be <= steps ({steps})"))
    if start is not None and start >= steps:
        problems.append(Problem(f"{path}.{start_key}", f"got {start}; must be < steps ({steps})"))
    if start_abs is not None and end_abs is not None and start_abs >= end_abs:
        s_name = start_key if start is not None else pct[0]
        e_name = end_key if end is not None else pct[1]
        problems.append(Problem(f"{path}.{e_name}", f"must be after {s_name} (got start {obj.get(s_name)}, end {obj.get(e_name)})"))
    return problems


def _refiner_problems(task: dict, refiner: dict, path: str, steps: int, has_seed: bool) -> list[Problem]:
    """The refiner takes over after the base's first step and before the last step (see sdxlkit.refiner.switch)."""
    from ..refiner.switch import DEFAULT_SWITCH_PERCENT, first_step, switch_step

    start, percent = _number(refiner.get("startStep")), _number(refiner.get("startStepPercentage"))
    if (refiner.get("startStep") is not None and start is None) or (refiner.get("startStepPercentage") is not None and percent is None):
        return []  # type errors are the schema check's
    name = "startStep" if start is not None else "startStepPercentage"
    switch = switch_step(steps, start, percent)
    given = {"startStep": f"got {start}", "startStepPercentage": f"got {percent} (step {switch} of {steps})"}[name]
    if start is None and percent is None:
        given = f"not set, so the default {DEFAULT_SWITCH_PERCENT} (step {switch} of {steps})"
    strength = _number(task.get("strength", 1.0 if "outpaint" in task else local_schema()["properties"]["strength"]["default"]))
    first = first_step(steps, strength if has_seed and strength is not None else None)
    if steps - first < 2:
        return [Problem(path, f"the base model and the refiner need a step each, but the task runs {steps - first} "
                              f"step(s): raise steps{' or strength' if first else ''}")]
    if switch >= steps:
        return [Problem(f"{path}.{name}", f"{given}; the refiner must take over before the last step: "
                        f"must be < steps ({steps})")]
    if switch <= first:
        runs = f" (img2img at strength {strength} runs steps {first}..{steps - 1} of {steps})" if first else ""
        return [Problem(f"{path}.{name}", f"{given}, so the base model would run no step{runs}; "
                        f"the refiner must take over after step {first}")]
    return []


def _cross_field_problems(task: dict, root: str) -> list[Problem]:
    problems: list[Problem] = []
    steps = task.get("steps", local_schema()["properties"]["steps"]["default"])
    inputs = task.get("inputs") if isinstance(task.get("inputs"), dict) else {}
    if not isinstance(steps, int) or isinstance(steps, bool):
        return problems
    accel = task.get("acceleratorOptions")
    if isinstance(accel, dict):
        problems += _window_problems(accel, f"{root}.acceleratorOptions", steps, "cacheStartStep", "cacheEndStep",
                                     ("cacheStartStepPercentage", "cacheEndStepPercentage"))
    control_nets = task.get("controlNet") if isinstance(task.get("controlNet"), list) else []
    for i, cn in enumerate(control_nets):
        if isinstance(cn, dict):
            problems += _window_problems(cn, f"{root}.controlNet[{i}]", steps, "startStep", "endStep",
                                         ("startStepPercentage", "endStepPercentage"))
    problems += _seed_problems(task, root)
    refiner = task.get("refiner")
    if isinstance(refiner, dict):
        problems += _refiner_problems(task, refiner, f"{root}.refiner", steps, "seedImage" in inputs)
    if "maskMargin" in task and "maskImage" not in inputs:
        problems.append(Problem(f"{root}.maskMargin", "applies only to inpainting: set inputs.maskImage too, or remove maskMargin"))
    if "strength" in task and "seedImage" not in inputs:
        problems.append(Problem(f"{root}.strength", "applies only to img2img/inpaint/outpaint: set inputs.seedImage too, or remove strength"))
    if "outpaint" in task and "seedImage" not in inputs:
        problems.append(Problem(f"{root}.outpaint", "extends inputs.seedImage: set inputs.seedImage too"))
    if "outpaint" in task and "maskImage" in inputs:
        problems.append(Problem(f"{root}.inputs.maskImage", "cannot be combined with outpaint, which builds its own mask"))
    if "outpaint" in task and "hiresFix" in task:
        problems.append(Problem(f"{root}.hiresFix", "cannot be combined with outpaint (the outpaint canvas is the seed "
                                "image's size, it cannot be generated smaller first); remove one of them"))
    return problems + _inpaint_size_problems(task, root)


def _seed_problems(task: dict, root: str) -> list[Problem]:
    """Image i of numberResults takes seed + i, which must stay a seed the format allows (a saved image re-runs)."""
    seed, count = _number(task.get("seed")), _number(task.get("numberResults", 1))
    most = local_schema()["properties"]["seed"]["maximum"]
    if seed is None or count is None or seed + count - 1 <= most:
        return []
    return [Problem(f"{root}.seed", f"got {seed}; with numberResults {count} the images take seeds {seed}.."
                                    f"{seed + count - 1}, above the largest seed {most}: use a seed <= {most - count + 1}")]


INPAINT_SIZE_RANGE = (64, 2048)


def _inpaint_size_problems(task: dict, root: str) -> list[Problem]:
    """ultralytics.inpaintSize: the schema gives no bounds; the face crop is an SDXL pass, so SDXL's sizes apply."""
    faces = task.get("ultralytics")
    size = faces.get("inpaintSize") if isinstance(faces, dict) else None
    if _number(size) is None:
        return []
    low, high = INPAINT_SIZE_RANGE
    if not (low <= size <= high and size % 8 == 0):
        return [Problem(f"{root}.ultralytics.inpaintSize", f"got {size}; allowed: a multiple of 8 from {low} to {high}")]
    return []


def _checked(task: Any, root: str) -> tuple[dict | None, list[Problem]]:
    """The task with whole-number floats as integers (whole_numbers_as_int), None when it has problems; and its
    problems (the cross-field rules read the integers)."""
    problems = [Problem(path, finite_message(number)) for path, number in non_finite(task, root)]
    problems += [p for p in _schema_problems(task, root) if p.path not in {q.path for q in problems}]
    if not isinstance(task, dict):
        return None, problems
    task = whole_numbers_as_int(task)
    problems += _cross_field_problems(task, root)
    return (None if problems else task), problems


def task_problems(task: Any, root: str = "$") -> list[Problem]:
    return _checked(task, root)[1]


def checked_tasks(data: Any) -> tuple[list[dict | None], list[Problem]]:
    """An object (one task) or an array of tasks: each task with whole-number floats as integers, None where it has
    problems, and the problems of all tasks together."""
    if isinstance(data, dict):
        checked, problems = _checked(data, "$")
        return [checked], problems
    if not isinstance(data, list) or not data:
        return [], [Problem("$", "must be a task object or a non-empty array of task objects")]
    tasks, problems = [], []
    for i, task in enumerate(data):
        checked, found = _checked(task, f"$[{i}]")
        tasks.append(checked)
        problems += found
    uuids = [t["taskUUID"] for t in data if isinstance(t, dict) and isinstance(t.get("taskUUID"), str)]
    for dup in sorted({u for u in uuids if uuids.count(u) > 1}):
        problems.append(Problem("$", f"taskUUID {dup} is used by more than one task; each task needs its own"))
    return tasks, problems


def validate_tasks(data: Any) -> list[dict]:
    """An object (one task) or an array of tasks; returns the list. Problems of all tasks are reported together."""
    tasks, problems = checked_tasks(data)
    if problems:
        raise TaskValidationError(problems)
    return tasks
