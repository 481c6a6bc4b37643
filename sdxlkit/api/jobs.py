"""Tasks queued through the headless route, by taskUUID, for `getResponse` polling (deliveryMethod async)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

KEEP_FINISHED_SECONDS = 3600


@dataclass
class Job:
    task_uuid: str
    prompt_id: str
    status: str = "processing"  # processing | success | error
    data: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    finished_at: float | None = None


class Jobs:
    def __init__(self, keep_seconds: float = KEEP_FINISHED_SECONDS):
        self.keep_seconds = keep_seconds
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, task_uuid: str, prompt_id: str) -> Job:
        with self._lock:
            self._prune()
            job = self._jobs[task_uuid] = Job(task_uuid, prompt_id)
            return job

    def finish(self, task_uuid: str, data: list[dict]) -> None:
        self._end(task_uuid, "success", data=data)

    def fail(self, task_uuid: str, errors: list[dict]) -> None:
        self._end(task_uuid, "error", errors=errors)

    def _end(self, task_uuid: str, status: str, **values) -> None:
        with self._lock:
            job = self._jobs[task_uuid]
            job.status, job.finished_at = status, time.monotonic()
            for key, value in values.items():
                setattr(job, key, value)

    def get(self, task_uuid: str) -> Job | None:
        with self._lock:
            return self._jobs.get(task_uuid)

    def active(self, task_uuid: str) -> bool:
        job = self.get(task_uuid)
        return job is not None and job.status == "processing"

    def counts(self) -> dict[str, int]:
        """How many jobs are in each status."""
        with self._lock:
            out: dict[str, int] = {}
            for job in self._jobs.values():
                out[job.status] = out.get(job.status, 0) + 1
            return out

    def _prune(self) -> None:
        now = time.monotonic()
        for uuid in [u for u, j in self._jobs.items() if j.finished_at and now - j.finished_at > self.keep_seconds]:
            del self._jobs[uuid]


def response_for(job: Job | None, task_uuid: str) -> tuple[dict, int]:
    """The getResponse answer for one task: its images once done, its status while running, or its errors."""
    if job is None:
        return {"errors": [{"code": "taskNotFound", "message": f"no task {task_uuid} was queued here (or it expired)",
                            "parameter": "taskUUID", "taskType": "getResponse", "taskUUID": task_uuid}]}, 404
    if job.status == "processing":
        return {"data": [{"taskType": "imageInference", "taskUUID": task_uuid, "status": "processing"}]}, 200
    if job.status == "error":
        return {"errors": job.errors}, 200
    return {"data": [item | {"status": "success"} for item in job.data]}, 200
