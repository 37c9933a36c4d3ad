"""The sandbox Zendesk's bulk-job queue: jobs move queued -> working -> completed after a
delay and are applied in submission order when they complete; at most
`max_jobs_in_flight` may be queued or running (more get 429 TooManyJobs, as in Zendesk)."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connector_pipeline.sandbox.zendesk_errors import SandboxInvalid, not_found


@dataclass
class Job:
    id: str
    job_type: str
    verb: str
    apply: Callable[[], list[dict[str, Any]]]
    total: int
    submitted: float
    due: float
    status: str = "queued"
    results: list[dict[str, Any]] | None = None
    completed_at: float | None = None


class JobQueue:
    def __init__(
        self,
        lock: threading.RLock,
        clock: Callable[[], float],
        url: Callable[[str], str],
        rng: random.Random,
    ) -> None:
        self.lock = lock
        self.clock = clock
        self.url = url
        self.random = rng
        self.jobs: dict[str, Job] = {}
        self.order: list[str] = []
        self.max_in_flight_seen = 0

    def advance(self) -> None:
        """Complete, in submission order, every job whose delay has passed. Called before
        anything is read, so effects appear exactly when the job reports completed."""
        with self.lock:
            now = time.monotonic()
            for job_id in self.order:
                job = self.jobs[job_id]
                if job.status == "completed":
                    continue
                if job.due > now:
                    break
                job.results = job.apply()
                job.status = "completed"
                job.completed_at = self.clock()

    def in_flight(self) -> list[str]:
        with self.lock:
            self.advance()
            return [j for j in self.order if self.jobs[j].status != "completed"]

    def submit(
        self,
        job_type: str,
        verb: str,
        total: int,
        apply: Callable[[], list[dict[str, Any]]],
        *,
        delay_s: float,
        max_in_flight: int,
    ) -> dict[str, Any]:
        with self.lock:
            in_flight = self.in_flight()
            if len(in_flight) >= max_in_flight:
                first_due = self.jobs[in_flight[0]].due - time.monotonic()
                raise SandboxInvalid(
                    429,
                    {
                        "error": "TooManyJobs",
                        "description": f"Too many {job_type.replace(' ', '')} jobs are currently"
                        " queued or running. Try again later.",
                        "current_job_ids": in_flight,
                    },
                    {
                        "Retry-After": str(max(math.ceil(first_due), 1)),
                        "zendesk-ratelimit-inflight-jobs": (
                            f"total={max_in_flight}; remaining=0; resets=60"
                        ),
                    },
                )
            job_id = f"V3-{self.random.getrandbits(128):032x}"
            now = time.monotonic()
            self.jobs[job_id] = Job(job_id, job_type, verb, apply, total, now, now + delay_s)
            self.order.append(job_id)
            self.max_in_flight_seen = max(self.max_in_flight_seen, len(in_flight) + 1)
            return self.view(job_id, delay_s)

    def view(self, job_id: str, delay_s: float) -> dict[str, Any]:
        with self.lock:
            self.advance()
            job = self.jobs.get(job_id)
            if job is None:
                raise not_found()
            status, progress, message, results = job.status, None, None, None
            if job.status == "completed":
                progress, results = job.total, job.results
                finished = time.gmtime(job.completed_at or 0)
                message = f"Completed at {time.strftime('%Y-%m-%d %H:%M:%S +0000', finished)}"
            else:
                elapsed = time.monotonic() - job.submitted
                delay = max(delay_s, 1e-9)
                if elapsed >= delay * 0.3:
                    status = "working"
                    progress = min(int(job.total * elapsed / delay), job.total)
                    message = f"{job.verb} organization #{progress}"
            return {
                "id": job.id,
                "job_type": job.job_type,
                "url": self.url(f"job_statuses/{job.id}"),
                "total": job.total,
                "progress": progress,
                "status": status,
                "message": message,
                "results": results,
            }
