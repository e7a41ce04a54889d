"""A fake of the SMS gateway's HTTP API: POST <any path> with form fields src/dst/message and ``x-api-key``.

It runs in a background thread (its own asyncio loop) on a free port. It records every attempt and every
accepted message, and can be told, per destination number, to fail the next N requests:

* ``status``: answer that HTTP status (e.g. 500 or 400) without accepting the message;
* ``drop``: read the request, then close the connection without an answer (message not accepted);
* ``lost``: accept the message, then close the connection without an answer (the answer is lost).

An accepted message carrying an ``Idempotency-Key`` already accepted is not delivered again (as a gateway
honouring that header would). Control over HTTP on the same port:
``POST /_control`` JSON ``{"dst": "...", "fail": N, "mode": "status"|"drop"|"lost", "status": 500}``,
``GET /_log`` -> ``{"attempts": [...], "delivered": [...]}``, ``POST /_reset``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_KEY = "fake-sms-key-4f1c9a"


@dataclass
class _Rule:
    fail: int
    mode: str = "status"
    status: int = 500


@dataclass
class SmsGateway:
    api_key: str = API_KEY
    port: int = 0
    attempts: list[dict[str, Any]] = field(default_factory=list)
    delivered: list[dict[str, Any]] = field(default_factory=list)
    rules: dict[str, _Rule] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.AbstractServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/sms/send"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> SmsGateway:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-sms-gateway", daemon=True)
        self._thread.start()
        ready.wait(5)
        return self

    def stop(self) -> None:
        if self._loop and self._server:
            self._loop.call_soon_threadsafe(self._server.close)
            self._loop.call_soon_threadsafe(self._loop.stop)

    # ---- HTTP ---------------------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {
                    k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                keep = await self._route(method, urlsplit(target).path, headers, body, writer)
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, status: int, payload: Any) -> bool:
        data = json.dumps(payload).encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(data)}\r\n\r\n".encode()
            + data
        )
        await writer.drain()
        return True

    async def _route(
        self, method: str, path: str, headers: dict[str, str], body: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        if path == "/_control" and method == "POST":
            spec = json.loads(body or b"{}")
            self.rules[spec["dst"]] = _Rule(int(spec["fail"]), spec.get("mode", "status"), int(spec.get("status", 500)))
            return await self._reply(writer, 200, {"ok": True})
        if path == "/_log":
            return await self._reply(writer, 200, {"attempts": self.attempts, "delivered": self.delivered})
        if path == "/_reset" and method == "POST":
            self.attempts.clear()
            self.delivered.clear()
            self.rules.clear()
            return await self._reply(writer, 200, {"ok": True})
        if method != "POST":
            return await self._reply(writer, 405, {"error": "method"})
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
        attempt = {
            "src": form.get("src"),
            "dst": form.get("dst"),
            "message": form.get("message"),
            "api_key": headers.get("x-api-key"),
            "idempotency_key": headers.get("idempotency-key"),
            "content_type": headers.get("content-type"),
        }
        self.attempts.append(attempt)
        if headers.get("x-api-key") != self.api_key:
            return await self._reply(writer, 401, {"error": "bad api key"})
        rule = self.rules.get(attempt["dst"] or "")
        if rule and rule.fail > 0:
            rule.fail -= 1
            if rule.mode == "drop":
                return False
            if rule.mode == "status":
                return await self._reply(writer, rule.status, {"error": "injected"})
            self._deliver(attempt)  # "lost": accepted, answer never sent
            return False
        self._deliver(attempt)
        return await self._reply(writer, 200, {"status": "OK", "id": len(self.delivered)})

    def _deliver(self, attempt: dict[str, Any]) -> None:
        key = attempt["idempotency_key"]
        if key and any(d["idempotency_key"] == key for d in self.delivered):
            return
        self.delivered.append(attempt)


def start_link_replica(suite: Any, name: str, **env: str) -> tuple[str, Any]:
    """Another link process on the suite's database, Redis and NATS (a second replica) with ``env`` overrides;
    returns its base URL and the process (stop it with ``terminate()``). Logs go to ``<run_dir>/<name>.log``."""
    import subprocess
    import sys

    from deploy.local import free_port, wait_http

    port = free_port()
    argv = [
        sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--loop", "uvloop", "--log-level", "warning", "--no-ws", "link.app:app",
    ]  # fmt: skip
    log = open(suite.local.run_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
    process = subprocess.Popen(  # noqa: S603 - fixed argv
        argv, env={**suite.local.service_env("link"), **env}, stdout=log, stderr=subprocess.STDOUT
    )
    wait_http(f"http://127.0.0.1:{port}/ready", 30.0, process)
    return f"http://127.0.0.1:{port}", process
