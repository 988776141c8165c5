"""The locustfile of perf.latency_budget's distributed mode: run by Locust's own processes
(`locust -f <this file> --master|--worker`), never imported by pytest-prodready (importing
Locust monkey-patches a process for gevent).

How a run goes (locustrun.py starts it):
- The master reads the measurement from the JSON file named by PRODREADY_LOCUST_SPEC and,
  at test start (after every expected worker reported ready, before any user is spawned),
  sends it to the workers as a custom message: a worker on another machine needs only this
  file and the master's address, no spec file of its own.
- Each worker takes its share of the requests by its worker index (shares add up to the
  exact total; a worker beyond the expected count takes none), sends them with Locust's
  HttpSession (no redirects followed, no cookie jar, no proxies from the environment, the
  body read up to a bound), and keeps one raw sample per request: its sequence number, the
  time to the response headers (requests' `elapsed`, the in-process client's measure), the
  status, the error. Its first requests, its share of the warm-up, are marked as such.
- When a worker's last request is answered it sends its raw samples to the master, which
  appends them to the samples file and, once every worker has reported, quits the run.
  Percentiles are computed from those raw samples by the parent, never from Locust's
  rounded response-time buckets.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
from typing import Any

import gevent
from locust import HttpUser, constant, events, task
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

SPEC_MESSAGE = "prodready_spec"
SAMPLES_MESSAGE = "prodready_samples"

spec: dict[str, Any] = {}
state: dict[str, Any] = {"issued": 0, "done": 0, "samples": [], "reported": False, "received": 0}


def share(total: int, workers: int, index: int) -> int:
    """Worker `index`'s part of `total`: the parts of indexes 0..workers-1 sum to total."""
    if index < 0 or index >= workers:
        return 0
    return total // workers + (1 if index < total % workers else 0)


def _on_init(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        with open(os.environ["PRODREADY_LOCUST_SPEC"], encoding="utf-8") as handle:
            spec.update(json.load(handle))
        runner.register_message(SAMPLES_MESSAGE, _on_samples)
    elif isinstance(runner, WorkerRunner):
        runner.register_message(SPEC_MESSAGE, _on_spec)


def _on_test_start(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, MasterRunner):
        environment.runner.send_message(SPEC_MESSAGE, spec)


events.init.add_listener(_on_init)  # type: ignore[no-untyped-call]  # Locust's EventHook
events.test_start.add_listener(_on_test_start)  # type: ignore[no-untyped-call]


def _on_spec(environment: Any, msg: Any, **_: Any) -> None:
    spec.update(msg.data)


def _on_samples(environment: Any, msg: Any, **_: Any) -> None:
    with open(spec["samples_path"], "a", encoding="utf-8") as out:
        out.write(json.dumps(msg.data) + "\n")
    state["received"] += 1
    if state["received"] >= spec["workers"]:
        gevent.spawn(environment.runner.quit)


def _report(runner: Any) -> None:
    if not state["reported"]:
        state["reported"] = True
        runner.send_message(SAMPLES_MESSAGE, {"index": runner.worker_index, "samples": state["samples"]})


class ProdreadyLatency(HttpUser):
    """One in-flight request at a time per user, no think time: the concurrency is the
    number of users, as in the in-process mode."""

    wait_time = constant(0)
    host = "http://127.0.0.1"  # unused: every request carries the absolute URL of the spec

    def on_start(self) -> None:
        self.client.trust_env = False
        self.client.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        while not spec:  # the spec message precedes the spawn message on the same socket
            gevent.sleep(0.01)

    @task
    def measure(self) -> None:
        runner = self.environment.runner
        index = runner.worker_index
        quota = share(int(spec["total"]), int(spec["workers"]), index)
        if state["issued"] >= quota:
            if state["done"] >= quota:
                _report(runner)
            raise StopUser()
        state["issued"] += 1
        seq = state["issued"]
        warm = seq <= share(int(spec["warmup"]), int(spec["workers"]), index)
        headers = {**spec["headers"], spec["seq_header"]: f"{spec['run']}.{index}.{seq}"}
        response = self.client.request(
            spec["method"], spec["url"], name=spec["endpoint"], headers=headers,
            data=spec["body"].encode() or None, allow_redirects=False, stream=True,
            timeout=float(spec["timeout_s"]), verify=spec["verify"])
        status = int(response.status_code or 0)
        elapsed_ms = response.elapsed.total_seconds() * 1000 if status else None
        error = "" if status else str(response.error)[:200]
        if status:
            try:
                response.raw.read(int(spec["max_body_bytes"]))
            except Exception as exc:  # a broken body is the target's error, not ours
                error = f"reading the body failed: {type(exc).__name__}"
            finally:
                response.close()
        state["samples"].append([seq, warm, elapsed_ms, status or None, error])
        state["done"] += 1
        if state["done"] >= quota:
            _report(runner)
