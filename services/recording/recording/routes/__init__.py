"""HTTP controllers of the recording service, one module per URL area: /webhook, /record/*, /test/mp4/queue,
/upload/* and the static media paths."""

from typing import Any

from recording.routes.media import static_handlers
from recording.routes.queue import EncodeQueueController
from recording.routes.records import RecordController
from recording.routes.uploads import build_controllers
from recording.routes.webhooks import WebhookController

# The controllers no setting shapes; route_handlers() adds the upload controller, whose body limits are settings
# (Litestar fixes a handler's request_max_body_size when it is declared), and the static media routes.
CONTROLLERS = [WebhookController, RecordController, EncodeQueueController]


def route_handlers(*, file_size_limit: int, video_size_limit: int) -> list[Any]:
    """Every handler of the service, for its ServiceSpec."""
    return [
        *CONTROLLERS,
        *build_controllers(file_size_limit=file_size_limit, video_size_limit=video_size_limit),
        *static_handlers(),
    ]
