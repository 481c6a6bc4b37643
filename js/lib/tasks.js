// Pure helpers of the sdxlkit extension (no DOM, no app): recognising task files, naming them, reading errors.
// Loaded by the frontend like every .js under js/, so this file has no side effects.

export const TASK_TYPE = "imageInference";

/** A task object, or a non-empty array of task objects, of the imageInference format. */
export function isTaskDocument(value) {
  const isTask = (item) => item !== null && typeof item === "object" && !Array.isArray(item) && item.taskType === TASK_TYPE;
  return Array.isArray(value) ? value.length > 0 && value.every(isTask) : isTask(value);
}

/** The tasks in a JSON text, or null when the text is not task JSON (then the file is someone else's). */
export function parseTaskText(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  return isTaskDocument(value) ? value : null;
}

/** File name for exported tasks: task-<first 8 characters of the first taskUUID>.json. */
export function taskFileName(tasks) {
  const first = Array.isArray(tasks) ? tasks[0] : tasks;
  const id = typeof first?.taskUUID === "string" && first.taskUUID ? first.taskUUID.slice(0, 8) : "export";
  return `task-${id}.json`;
}

/** The text to save: one task as an object, several as an array, indented. */
export function taskText(tasks) {
  return JSON.stringify(tasks.length === 1 ? tasks[0] : tasks, null, 2);
}

/** A readable message from the API's error shape {"errors": [{message, parameter}]} or anything else. */
export function errorText(body, fallback = "the conversion failed") {
  const errors = body && Array.isArray(body.errors) ? body.errors : [];
  if (!errors.length) return typeof body?.error === "string" ? body.error : fallback;
  return errors.map((e) => (e.parameter && !String(e.message).startsWith(e.parameter) ? `${e.parameter}: ${e.message}` : e.message)).join("\n");
}

/** Whether a dropped file may be task JSON (decided by name and type before reading it). */
export function mayBeTaskFile(file) {
  return Boolean(file) && (file.type === "application/json" || /\.json$/i.test(file.name ?? ""));
}
