"""A real `streamsr serve` for the web app's tests: the command in its own process, on a free
loopback port, spoken to over HTTP with the standard library."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote


class Server:
    """`streamsr serve --root ROOT --port 0 ARGS...`, started and stopped by the test."""

    def __init__(self, root: Path, *args: str) -> None:
        self.root, self.args = root, args
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self.port = 0
        self.output: list[str] = []

    def start(self, timeout: float = 90.0) -> Server:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamsr", "serve", "--root", str(self.root), "--port", "0", *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        seen = ""
        # The command prints its address once the port listens (Ray, when it runs jobs, may speak first).
        while (line := self.process.stdout.readline()) and time.monotonic() < deadline:
            seen += line
            if found := re.search(r"http://127\.0\.0\.1:(\d+)/\S*", line):
                self.url, self.port = found[0], int(found[1])
                # Keep reading what it says, so that a full pipe never blocks it.
                threading.Thread(target=self.output.extend, args=(self.process.stdout,), daemon=True).start()
                return self
        self.process.kill()
        raise AssertionError(f"streamsr serve did not start: {seen}{self.process.stdout.read()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()

    def request(self, method: str, path: str, body: bytes | Any = None, *, headers: dict[str, str] | None = None,
                timeout: float = 120.0) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body); a dict or list body goes as JSON."""
        headers = dict(headers or {})
        if body is not None and not isinstance(body, bytes | bytearray):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def json(self, method: str, path: str, body: Any = None, *, status: int = 200, **kw: Any) -> Any:
        code, _, data = self.request(method, path, body, **kw)
        assert code == status, f"{method} {path}: {code} {data[:300]!r}"
        return json.loads(data)

    def upload(self, path: Path, name: str | None = None) -> dict[str, Any]:
        return self.json("PUT", f"/api/files/{quote(name or path.name, safe='')}", path.read_bytes(), status=201)

    def events(self, job_id: str, timeout: float = 300.0) -> Iterator[dict[str, Any]]:
        """The job's Server-Sent Events, as the page's EventSource reads them, until the stream ends."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request("GET", f"/api/events?job={job_id}")
            response = connection.getresponse()
            assert response.status == 200
            assert response.getheader("content-type", "").startswith("text/event-stream")
            event = ""
            for raw in response:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "job":
                    yield json.loads(line[6:])
        finally:
            connection.close()

    def wait(self, job_id: str, until: Any, timeout: float = 300.0, **kw: Any) -> dict[str, Any]:
        """Poll the job until `until(job)` holds."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.json("GET", f"/api/jobs/{job_id}", **kw)
            if until(job):
                return job
            assert time.monotonic() < deadline, f"job {job_id} stayed {job['state']} at {job['frames']} frames"
            time.sleep(0.1)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()
