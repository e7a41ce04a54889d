"""HTTP controllers of the realtime service (served by Litestar next to the Socket.IO endpoint), one module per
URL area."""

from realtime.routes.namespaces import NamespaceController
from realtime.routes.realtime_api import RealtimeApiController

CONTROLLERS = [NamespaceController, RealtimeApiController]
