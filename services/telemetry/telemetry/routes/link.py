"""GET /link/list: the statistics' paged SMS links of cases, as GET /stats/summary (the original's
statistics.controller mounted it here too; link's own /link/* routes are link's)."""

from __future__ import annotations

from litestar import Controller, Request, Response, get

from servicekit.web import Runtime
from telemetry.routes.stats import summary


class LinkListController(Controller):
    path = "/link"
    tags = ["stats"]

    @get("/list")
    async def link_list(self, request: Request, runtime: Runtime) -> Response:
        """Same as GET /stats/summary (the original mounted the summary handler here too)."""
        return await summary(request, runtime)
