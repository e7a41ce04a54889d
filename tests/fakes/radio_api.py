"""A fake of the third-party radio location API: GET /Device, /Device/<id>, /Location, /Location/<radioNo>
behind HTTP Basic auth, answering ``{"status":"1","message":"Success","resultData":...}``.

It runs in a background thread with its own event loop (so the session fixture can start it). Test controls
are plain attributes / method calls: :attr:`devices` and :attr:`locations` (the data, keyed by id / radioNo),
:meth:`override` (answer one path with a given status and raw body), :attr:`delay` (seconds before answering),
:attr:`mode` (``"ok"``, ``"down"`` = HTTP 503, ``"garbage"`` = 200 with a non-JSON body, ``"drop"`` = close
the connection without an answer), :attr:`calls` (path and Authorization header of every request), :meth:`reset`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from deploy.local import free_port

USERNAME = "radio-user"
PASSWORD = "radio-pass:42"


@dataclass
class Call:
    path: str
    authorization: str | None


@dataclass
class FakeRadioApi:
    username: str = USERNAME
    password: str = PASSWORD
    port: int = 0
    delay: float = 0.0
    mode: str = "ok"
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    locations: dict[str, dict[str, Any]] = field(default_factory=dict)
    overrides: dict[str, tuple[int, str]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    # ---- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> FakeRadioApi:
        self.port = self.port or free_port()
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self._serve())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup() if self._runner else asyncio.sleep(0))
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-radio-api", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/api/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    # ---- test controls ------------------------------------------------------------------------------------
    def reset(self) -> None:
        self.delay, self.mode = 0.0, "ok"
        self.devices.clear()
        self.locations.clear()
        self.overrides.clear()
        self.calls.clear()

    def override(self, path: str, status: int, body: Any) -> None:
        """Answer ``path`` (e.g. ``/Device``) with ``status`` and ``body`` (JSON-encoded unless a str)."""
        self.overrides[path] = (status, body if isinstance(body, str) else json.dumps(body))

    @property
    def expected_authorization(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

    # ---- HTTP ---------------------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        auth = request.headers.get("Authorization")
        self.calls.append(Call(path, auth))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.mode == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if self.mode == "down":
            return web.Response(status=503, text="Service Unavailable")
        if self.mode == "garbage":
            return web.Response(status=200, text="<html>maintenance</html>", content_type="text/html")
        if auth != self.expected_authorization:
            return web.json_response({"status": "0", "message": "Unauthorized"}, status=401)
        if path in self.overrides:
            status, text = self.overrides[path]
            return web.Response(status=status, text=text, content_type="application/json")
        parts = [p for p in path.split("/") if p]
        if parts == ["Device"]:
            return self._ok(list(self.devices.values()))
        if parts == ["Location"]:
            return self._ok(list(self.locations.values()))
        if len(parts) == 2 and parts[0] == "Device":
            return self._ok(self.devices.get(parts[1]))
        if len(parts) == 2 and parts[0] == "Location":
            return self._ok(self.locations.get(parts[1]))
        return web.json_response({"status": "0", "message": "Not Found"}, status=404)

    @staticmethod
    def _ok(result: Any) -> web.Response:
        return web.json_response({"status": "1", "message": "Success", "resultData": result})
