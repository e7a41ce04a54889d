"""GET /user/log: the statistics' track_published log of a patient's mobile, as GET /stats/user (the original's
statistics.controller mounted it here too)."""

from __future__ import annotations

from litestar import Controller, Request, Response, get

from servicekit.web import Runtime
from telemetry.routes.stats import track_logs


class UserLogController(Controller):
    path = "/user"
    tags = ["stats"]

    @get("/log")
    async def user_log(self, request: Request, runtime: Runtime) -> Response:
        """Same as GET /stats/user."""
        return await track_logs(request, runtime)
