"""servicekit.serve, the one-process runner every service uses: SIGTERM drains in-flight requests and runs the
lifespan shutdown before exiting 0; an app that cannot start exits 1; no worker process is spawned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from deploy.local import free_port, wait_http
from tests.instances import descendants

APP = """
import asyncio, os, pathlib

MARK = pathlib.Path(os.environ["SERVE_TEST_MARK"])


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if os.environ.get("SERVE_TEST_FAIL"):
                    await send({"type": "lifespan.startup.failed", "message": "no database"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                MARK.write_text("shutdown ran")
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/slow":
        MARK.write_text("in flight")
        await asyncio.sleep(1.5)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": scope["path"].encode()})
"""


def start(tmp_path: Path, port: int, **env: str) -> subprocess.Popen[bytes]:
    (tmp_path / "serve_test_app.py").write_text(APP, encoding="utf-8")
    environ = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               "SERVE_TEST_MARK": str(tmp_path / "mark"), **env}  # fmt: skip
    argv = [sys.executable, "-m", "servicekit.serve", "serve_test_app:app", "--port", str(port), "--no-ws"]
    return subprocess.Popen(argv, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # noqa: S603


def test_sigterm_finishes_the_request_in_flight_then_runs_the_shutdown(tmp_path: Path) -> None:
    port = free_port()
    process = start(tmp_path, port)
    try:
        wait_http(f"http://127.0.0.1:{port}/ready", 20, process)
        assert descendants(process.pid) == []  # one process: no supervisor, no worker
        answers: list[httpx.Response] = []
        client = httpx.Client(timeout=10)
        slow = threading.Thread(target=lambda: answers.append(client.get(f"http://127.0.0.1:{port}/slow")))
        slow.start()
        deadline = time.monotonic() + 5
        while not (tmp_path / "mark").exists() and time.monotonic() < deadline:  # the request is in the app
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        slow.join(10)
        assert [(a.status_code, a.text) for a in answers] == [(200, "/slow")]
        client.close()
        assert process.wait(10) == 0
        assert (tmp_path / "mark").read_text() == "shutdown ran"
    finally:
        process.kill()


def test_an_app_that_cannot_start_exits_non_zero(tmp_path: Path) -> None:
    process = start(tmp_path, free_port(), SERVE_TEST_FAIL="1")
    try:
        assert process.wait(20) == 1
    finally:
        process.kill()
