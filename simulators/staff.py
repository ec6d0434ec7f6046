"""Operators and the night patrol, simulated through the HTTP API with set delay
distributions, so the answer-time KPIs and the escalations move as they would."""

from __future__ import annotations

import heapq
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from simulators.scenario import Staff

log = logging.getLogger(__name__)


@dataclass(order=True)
class _Job:
    at: float
    seq: int
    method: str = field(compare=False)
    path: str = field(compare=False)
    body: dict[str, Any] | None = field(compare=False, default=None)
    who: str = field(compare=False, default="operator")


class StaffSimulator:
    """Polls the queue and the escalations once a second and acts after drawn delays."""

    def __init__(
        self,
        *,
        api_url: str,
        operator_headers: dict[str, str],
        patrol_headers: dict[str, str],
        staff: Staff,
        seed: int,
        speed: float = 1.0,
    ) -> None:
        self._client = httpx.Client(base_url=api_url, timeout=10)
        self._headers = {"operator": operator_headers, "patrol": patrol_headers}
        self._staff = staff
        self._rng = random.Random(seed)
        self._speed = speed
        self._jobs: list[_Job] = []
        self._seq = 0
        self._planned: set[tuple[str, str]] = set()
        self._last_poll = 0.0
        self.done = {"answer": 0, "resolve": 0, "escalate": 0, "ack": 0, "arrive": 0, "complete": 0}

    def close(self) -> None:
        self._client.close()

    def _plan(
        self,
        key: tuple[str, str],
        delay_s: float,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        who: str = "operator",
    ) -> None:
        if key in self._planned:
            return
        self._planned.add(key)
        self._seq += 1
        heapq.heappush(
            self._jobs,
            _Job(time.monotonic() + delay_s / self._speed, self._seq, method, path, body, who),
        )

    def tick(self) -> None:
        now = time.monotonic()
        if now - self._last_poll >= 1.0:
            self._last_poll = now
            try:
                self._poll()
            except httpx.HTTPError as exc:
                log.warning("staff: the API did not answer (%s)", exc)
        while self._jobs and self._jobs[0].at <= now:
            job = heapq.heappop(self._jobs)
            try:
                response = self._client.request(
                    job.method, job.path, json=job.body, headers=self._headers[job.who]
                )
            except httpx.HTTPError as exc:
                log.warning("staff: %s %s failed (%s)", job.method, job.path, exc)
                continue
            if response.is_success:
                self.done[job.path.rsplit("/", 1)[-1]] += 1

    def _poll(self) -> None:
        s, rng = self._staff, self._rng
        alarms = self._client.get("/api/v1/alarms", headers=self._headers["operator"]).json()
        for a in alarms:
            base = f"/api/v1/alarms/{a['alarm_id']}"
            if a["state"] == "raised":
                self._plan(
                    (a["alarm_id"], "answer"), s.answer_delay.sample(rng), "POST", f"{base}/answer"
                )
            elif a["state"] == "answered":
                if rng.random() < s.escalate_p and a["kind"].startswith("alarm."):
                    self._plan(
                        (a["alarm_id"], "close"),
                        5,
                        "POST",
                        f"{base}/escalate",
                        {"reason": "no contact over the speaker"},
                    )
                else:
                    self._plan(
                        (a["alarm_id"], "close"),
                        s.resolve_delay.sample(rng),
                        "POST",
                        f"{base}/resolve",
                        {"outcome": "help_by_phone", "note": "called back, all well"},
                    )
            elif a["state"] == "escalated":
                self._plan(
                    (a["alarm_id"], "resolve"),
                    s.resolve_delay.sample(rng) * 3,
                    "POST",
                    f"{base}/resolve",
                    {"outcome": "visit", "note": "patrol visited"},
                )
        escalations = self._client.get(
            "/api/v1/escalations", headers=self._headers["patrol"]
        ).json()
        for e in escalations:
            base = f"/api/v1/escalations/{e['escalation_id']}"
            step = {
                "open": ("ack", s.ack_delay),
                "acknowledged": ("arrive", s.arrive_delay),
                "arrived": ("complete", s.complete_delay),
            }[e["state"]]
            body = {"outcome": "visited; all well"} if step[0] == "complete" else None
            self._plan(
                (e["escalation_id"], step[0]),
                step[1].sample(rng),
                "POST",
                f"{base}/{step[0]}",
                body,
                who="patrol",
            )
