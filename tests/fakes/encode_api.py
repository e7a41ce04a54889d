"""A fake of the encode API: ``POST /record/encode`` JSON ``{"recordId": <int>, "hls": true}`` -> 200
``{"status": "OK"}``; anything else -> 400.

It runs in a background thread with its own event loop. Test controls: :attr:`fail_next` (answer the next N
requests with :attr:`fail_status`, e.g. 503 to make the job retry, 400 to make it give up), :meth:`fail_record`
(the same for one recordId only, so jobs of other tests are unaffected), :attr:`requests`
(every request body seen, accepted or not, in order), :attr:`accepted`, :meth:`reset`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from deploy.local import free_port


@dataclass
class FakeEncodeApi:
    port: int = 0
    fail_next: int = 0
    fail_status: int = 503
    failures: dict[int, list[int]] = field(default_factory=dict)  # recordId -> [remaining, status]
    requests: list[Any] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeEncodeApi:
        self.port = self.port or free_port()
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self._serve())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-encode-api", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/record/encode", self._encode)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    def fail_record(self, record_id: int, times: int, status: int = 503) -> None:
        self.failures[record_id] = [times, status]

    def reset(self) -> None:
        self.fail_next, self.fail_status = 0, 503
        self.failures.clear()
        self.requests.clear()
        self.accepted.clear()

    def requests_for(self, record_id: int) -> list[Any]:
        return [r for r in list(self.requests) if isinstance(r, dict) and r.get("recordId") == record_id]

    async def _encode(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError:
            self.requests.append(None)
            return web.json_response({"status": "FAIL", "message": "invalid JSON"}, status=400)
        self.requests.append(body)
        rule = self.failures.get(body.get("recordId")) if isinstance(body, dict) else None
        if rule and rule[0] > 0:
            rule[0] -= 1
            return web.json_response({"status": "FAIL", "message": "injected failure"}, status=rule[1])
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.json_response({"status": "FAIL", "message": "injected failure"}, status=self.fail_status)
        if not isinstance(body, dict) or not isinstance(body.get("recordId"), int) or body.get("hls") is not True:
            return web.json_response({"status": "FAIL", "message": "recordId and hls required"}, status=400)
        self.accepted.append(body)
        return web.json_response({"status": "OK"})
