import assert from "node:assert/strict";
import { test } from "node:test";

import { errorText, isTaskDocument, mayBeTaskFile, parseTaskText, taskFileName, taskText } from "../../js/lib/tasks.js";

const task = { taskType: "imageInference", taskUUID: "1e4a0b2c-3d4e-4f60-8a7b-9c0d1e2f3a4b", positivePrompt: "a boat" };

test("task documents are recognised by taskType, alone or in arrays", () => {
  assert.equal(isTaskDocument(task), true);
  assert.equal(isTaskDocument([task, { ...task, taskUUID: "x" }]), true);
  assert.equal(isTaskDocument([]), false);
  assert.equal(isTaskDocument([task, { taskType: "getResponse" }]), false);
  assert.equal(isTaskDocument({ nodes: [], links: [], version: 0.4 }), false);
  assert.equal(isTaskDocument({ 1: { class_type: "SDXLKit_Loader", inputs: {} } }), false);
  assert.equal(isTaskDocument(null), false);
});

test("parseTaskText gives tasks or null, never throws", () => {
  assert.deepEqual(parseTaskText(JSON.stringify(task)), task);
  assert.equal(parseTaskText("{not json"), null);
  assert.equal(parseTaskText(JSON.stringify({ last_node_id: 3, nodes: [] })), null);
});

test("exported files are named after the first task and hold an object for one task", () => {
  assert.equal(taskFileName([task]), "task-1e4a0b2c.json");
  assert.equal(taskFileName([{ taskType: "imageInference" }]), "task-export.json");
  assert.deepEqual(JSON.parse(taskText([task])), task);
  assert.equal(JSON.parse(taskText([task, task])).length, 2);
});

test("error bodies become readable lines naming the parameter once", () => {
  const body = { errors: [{ code: "invalidParameter", message: "width: got 100; allowed: an integer in 128..2048", parameter: "width" },
                          { code: "modelNotFound", message: "model 'x' not found", parameter: null }] };
  assert.equal(errorText(body), "width: got 100; allowed: an integer in 128..2048\nmodel 'x' not found");
  assert.equal(errorText({ errors: [{ message: "must be <= 4", parameter: "lora[0].weight" }] }), "lora[0].weight: must be <= 4");
  assert.equal(errorText({}), "the conversion failed");
});

test("only JSON files are candidates for task import", () => {
  assert.equal(mayBeTaskFile({ name: "task.json", type: "" }), true);
  assert.equal(mayBeTaskFile({ name: "x.bin", type: "application/json" }), true);
  assert.equal(mayBeTaskFile({ name: "image.png", type: "image/png" }), false);
  assert.equal(mayBeTaskFile(undefined), false);
});
