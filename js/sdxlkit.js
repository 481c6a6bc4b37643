// sdxlkit frontend extension: export the graph as imageInference task JSON, import task JSON as a graph.
// The conversion runs in Python behind POST /sdxlkit/v1/convert; this file only calls it.
import { errorText, mayBeTaskFile, parseTaskText, taskFileName, taskText } from "./lib/tasks.js";

const { app } = window.comfyAPI.app;
const { api } = window.comfyAPI.api;

const SETTING = {
  destination: "sdxlkit.Export.Destination",
  images: "sdxlkit.Export.Images",
};

function toast(severity, summary, detail) {
  app.extensionManager.toast.add({ severity, summary, detail, life: severity === "error" ? 8000 : 3000 });
}

async function convert(body) {
  const response = await api.fetchApi("/sdxlkit/v1/convert", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(errorText(data));
  return data;
}

async function serverConfig() {
  const response = await api.fetchApi("/sdxlkit/v1/status");
  return response.ok ? response.json() : null;
}

function serverSettingText() {
  const text = Object.assign(document.createElement("span"), { textContent: "..." });
  serverConfig()
    .then((config) => {
      text.textContent = !config ? "unknown (the server did not answer)"
        : `${config.outbound ? "on" : "off"}; private addresses ${config.outboundPrivate ? "allowed" : "refused"}; `
          + `at most ${config.maxTasks} tasks and ${config.maxBodyMB} MiB per request`;
    })
    .catch(() => { text.textContent = "unknown (the server did not answer)"; });
  return text;
}

function download(text, name) {
  const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
  const link = Object.assign(document.createElement("a"), { href: url, download: name });
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

async function exportTasks() {
  try {
    const { workflow, output } = await app.graphToPrompt();
    const { tasks } = await convert({ to: "task", workflow, prompt: output, images: app.extensionManager.setting.get(SETTING.images) });
    const text = taskText(tasks);
    if (app.extensionManager.setting.get(SETTING.destination) === "clipboard") {
      await navigator.clipboard.writeText(text);
      toast("success", "Task JSON copied", `${tasks.length} task(s) on the clipboard`);
    } else {
      download(text, taskFileName(tasks));
    }
  } catch (error) {
    toast("error", "Cannot export task JSON", error.message);
  }
}

async function importTasks(tasks) {
  try {
    const { workflow } = await convert({ to: "workflow", tasks });
    await app.loadGraphData(workflow);
    toast("success", "Task JSON imported", `${Array.isArray(tasks) ? tasks.length : 1} task(s) as a graph`);
  } catch (error) {
    toast("error", "Cannot import task JSON", error.message);
  }
}

async function importText(text, source) {
  const tasks = parseTaskText(text);
  if (!tasks) {
    toast("error", "Not task JSON", `${source} holds no imageInference task (an object or array with taskType "imageInference")`);
    return;
  }
  await importTasks(tasks);
}

function pickFile() {
  const input = Object.assign(document.createElement("input"), { type: "file", accept: ".json,application/json" });
  input.onchange = async () => input.files[0] && importText(await input.files[0].text(), input.files[0].name);
  input.click();
}

// Dropped task files: claimed before the app's own drop handler (which would call them "not a workflow");
// any other JSON goes back to the app unchanged.
function onDrop(event) {
  const files = event.dataTransfer?.files;
  if (files?.length !== 1 || !mayBeTaskFile(files[0])) return;
  event.preventDefault();
  event.stopImmediatePropagation();
  files[0].text().then((text) => {
    const tasks = parseTaskText(text);
    return tasks ? importTasks(tasks) : app.handleFile(files[0]);
  });
}

app.registerExtension({
  name: "sdxlkit.Tasks",
  settings: [
    { id: SETTING.destination, name: "Export task JSON to", type: "combo", options: ["download", "clipboard"], defaultValue: "download", category: ["sdxlkit", "Export", "Destination"] },
    { id: SETTING.images, name: "Images in exported tasks", type: "combo", options: ["data_uri", "file"], defaultValue: "data_uri", category: ["sdxlkit", "Export", "Images"], tooltip: "data_uri: PNG data URIs (self-contained); file: names of files in ComfyUI's input folder" },
    // Shown, never stored: only the server's operator sets these (SDXLKIT_OUTBOUND, SDXLKIT_OUTBOUND_PRIVATE or the
    // pack's sdxlkit.json), so no client can turn sending results to URLs on.
    { id: "sdxlkit.Outbound.Server", name: "Sending results to webhookURL / uploadEndpoint (set on the server)", type: serverSettingText, defaultValue: "", category: ["sdxlkit", "Outbound", "Server"] },
  ],
  commands: [
    { id: "sdxlkit.ExportTaskJSON", label: "Export task JSON", icon: "pi pi-download", function: exportTasks },
    { id: "sdxlkit.ImportTaskJSON", label: "Import task JSON...", icon: "pi pi-upload", function: pickFile },
    { id: "sdxlkit.PasteTaskJSON", label: "Import task JSON from clipboard", icon: "pi pi-clipboard", function: async () => importText(await navigator.clipboard.readText(), "The clipboard") },
  ],
  menuCommands: [{ path: ["Extensions", "sdxlkit"], commands: ["sdxlkit.ExportTaskJSON", "sdxlkit.ImportTaskJSON", "sdxlkit.PasteTaskJSON"] }],
  getCanvasMenuItems() {
    return [null, { content: "Export task JSON", callback: exportTasks }, { content: "Import task JSON...", callback: pickFile }];
  },
  setup() {
    document.addEventListener("drop", onDrop, true);
  },
});
