"""Load on the headless task route: 50 concurrent clients post 200 small async tasks (128x128, 3 steps) to a real
ComfyUI, a quarter of them are cancelled from ComfyUI's queue (POST /queue {"delete": [...]}) while pending, and every
task is polled until it ends. Prints how many ended in each state (all must end), the server's RSS before and
after, and the route's live watchers afterwards (must be 0).

    python bench/route_load.py --comfyui /opt/comfy/ComfyUI [--python /opt/comfy/venv/bin/python]
    python bench/route_load.py --url http://127.0.0.1:8188 --pid <server pid> --model <checkpoint name>

With --comfyui it starts its own server (127.0.0.1, a free port, a temporary --base-directory) on a tiny
random-weight model and stops it afterwards. The tasks differ only in taskUUID, so after the first run ComfyUI's cache
serves the sampling and each prompt re-runs only the Save node (which writes the task's own file): this measures the
route, its watchers and the queue, not the sampler. --distinct-seeds gives every task its own seed (every task
samples; minutes on a busy CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _call(url: str, body=None, timeout: float = 60):
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read()
            return response.status, json.loads(data) if data else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _start_server(comfyui: str, python: str, base: Path) -> tuple[subprocess.Popen, str]:
    from sdxlkit.tiny import build_tiny_components, write_single_file

    (base / "custom_nodes").mkdir(parents=True)
    (base / "custom_nodes" / "sdxlkit").symlink_to(ROOT)
    write_single_file(build_tiny_components("tiny", seed=0), base / "models" / "checkpoints" / "tiny-sdxl.safetensors")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(base / "server.log", "w")
    process = subprocess.Popen([python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
                                "--disable-auto-launch", "--base-directory", str(base)],
                               cwd=comfyui, stdout=log, stderr=subprocess.STDOUT, env=os.environ | {"HF_HUB_OFFLINE": "1"})
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if process.poll() is not None:
            raise SystemExit("ComfyUI exited:\n" + (base / "server.log").read_text()[-3000:])
        try:
            if _call(url + "/sdxlkit/v1/status", timeout=5)[0] == 200:
                return process, url
        except OSError:
            time.sleep(1)
    raise SystemExit("ComfyUI did not answer in 300 s")


def run(url: str, pid: int, model: str, clients: int, tasks: int, cancel_share: float, distinct_seeds: bool) -> int:
    def task(uuid_: str, seed: int) -> dict:
        return {"taskType": "imageInference", "taskUUID": uuid_, "model": model, "positivePrompt": "a lighthouse at dusk",
                "width": 128, "height": 128, "steps": 3, "seed": seed, "deliveryMethod": "async",
                "outputType": "base64Data", "outputFormat": "PNG"}

    # one warm-up task, so the model is loaded before RSS is measured
    _call(url + "/sdxlkit/v1", [task(str(uuid.uuid4()), 0) | {"deliveryMethod": "sync"}], timeout=900)
    rss_before = _rss_mib(pid)
    uuids = [str(uuid.uuid4()) for _ in range(tasks)]
    per_client = [uuids[i::clients] for i in range(clients)]
    refused = []
    started = time.monotonic()

    def client(mine: list[str]) -> None:
        for uuid_ in mine:
            status, body = _call(url + "/sdxlkit/v1", [task(uuid_, uuids.index(uuid_) + 1 if distinct_seeds else 0)])
            if status != 200:
                refused.append((uuid_, status, body))

    # a longer task first keeps ComfyUI's worker busy while the clients post, so the cancelled quarter is still pending
    blocker = str(uuid.uuid4())
    _call(url + "/sdxlkit/v1", [task(blocker, 12345) | {"width": 256, "height": 256, "steps": 12}])
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, per_client))
    posted = time.monotonic() - started
    to_cancel = set(uuids[::int(round(1 / cancel_share))]) if cancel_share else set()
    queued = _call(url + "/queue")[1]["queue_pending"]
    cancelled_ids = [item[1] for item in queued if item[3].get("sdxlkit_task_uuid") in to_cancel]
    _call(url + "/queue", {"delete": cancelled_ids})
    uuids.append(blocker)
    states: dict[str, int] = {}
    pending = set(uuids) - {u for u, _, _ in refused}
    deadline = time.monotonic() + 900
    while pending and time.monotonic() < deadline:
        batch = list(pending)[:100]  # a request takes at most 100 tasks, polls included
        _, body = _call(url + "/sdxlkit/v1", [{"taskType": "getResponse", "taskUUID": u} for u in batch])
        finished = [(d["taskUUID"], d["status"]) for d in body.get("data", []) if d["status"] != "processing"]
        finished += [(e["taskUUID"], e["code"]) for e in body.get("errors", [])]
        for uuid_, state in dict(finished).items():  # a task of several images answers once per image
            states[state] = states.get(state, 0) + 1
            pending.discard(uuid_)
        time.sleep(1)
    ended = time.monotonic() - started
    status = _call(url + "/sdxlkit/v1/status")[1]
    rss_after = _rss_mib(pid)
    print(f"tasks posted: {tasks} by {clients} clients in {posted:.1f} s (+1 longer task first); "
          f"refused at admission: {len(refused)}")
    print(f"prompts deleted from ComfyUI's queue while pending: {len(cancelled_ids)} (a quarter: {len(to_cancel)})")
    print("final states: " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())) + f"; still processing: {len(pending)}")
    print(f"all ended after {ended:.1f} s")
    print(f"server RSS: {rss_before:.0f} MiB before, {rss_after:.0f} MiB after")
    print(f"live watchers after: {status['watchers']} (waiting prompts {status['waitingPrompts']}, "
          f"inline images held {status['inlineImages']})")
    for item in refused[:5]:
        print("refused:", item)
    return 0 if not pending and status["watchers"] == 0 and status["waitingPrompts"] == 0 and not refused else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comfyui", help="a ComfyUI checkout: start a server of it with the pack")
    parser.add_argument("--python", default=None, help="its interpreter (default: <comfyui>/../venv/bin/python)")
    parser.add_argument("--url", help="a running server with the pack instead")
    parser.add_argument("--pid", type=int, help="that server's process id (for its RSS)")
    parser.add_argument("--model", default="tiny-sdxl.safetensors")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--cancel", type=float, default=0.25)
    parser.add_argument("--distinct-seeds", action="store_true")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so a stopped run still stops its server
    if args.url:
        raise SystemExit(run(args.url, args.pid or 0, args.model, args.clients, args.tasks, args.cancel, args.distinct_seeds))
    if not args.comfyui:
        parser.error("give --comfyui PATH or --url URL --pid PID")
    python = args.python or str(Path(args.comfyui).parent / "venv" / "bin" / "python")
    with tempfile.TemporaryDirectory(prefix="sdxlkit-load-") as base:
        process, url = _start_server(args.comfyui, python, Path(base))
        try:
            code = run(url, process.pid, args.model, args.clients, args.tasks, args.cancel, args.distinct_seeds)
        finally:
            process.terminate()
            process.wait(timeout=60)
    raise SystemExit(code)


if __name__ == "__main__":
    main()
