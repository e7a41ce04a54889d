"""The static media paths (the original's express.static mounts of the media directory: /logo, /videos, /images,
/thumbnails, /files, /record), served inline but never as a page of our origin."""

from __future__ import annotations

import mimetypes
from typing import Any

from litestar import Response, get
from litestar.response import File

from recording.repository.media import STATIC, MediaDir
from servicekit.web import Runtime, fail

_STATIC_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # Uploaded content never runs as a page of our origin (an uploaded HTML or SVG opened directly).
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox"
    ),
}


def static_handlers() -> list[Any]:
    handlers = []
    for prefix in STATIC:

        def make(prefix: str) -> Any:
            @get(
                f"{prefix}/{{path:path}}",
                name=f"static{prefix.replace('/', '_')}",
                summary=f"Media files under {prefix}",
                tags=["media"],
            )
            async def serve(path: str, runtime: Runtime) -> Response:
                media: MediaDir = runtime.extras["media"]
                target = media.resolve(prefix, path)
                if target is None:
                    raise fail("Not Found", 404)
                media_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
                return File(
                    path=target,
                    media_type=media_type,
                    content_disposition_type="inline",
                    filename=target.name,
                    headers=_STATIC_HEADERS,
                )

            return serve

        handlers.append(make(prefix))
    return handlers
