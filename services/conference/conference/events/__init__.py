"""Everything of conference that crosses NATS or runs in the background, one module per topic:

* ``rooms``: the request/reply calls on rooms, participant tokens and cases (``rooms.Conference``), the RoomChanged
  events every room change publishes (``publish_room_detail``) and the room writes of the routes.
* ``participants``: PARTICIPANT_SAVED after every room_user write (``publish_room_user``), the user and track writes
  of the routes, and the LiveKit participant calls realtime forwards from room sockets.
* ``presence``: the room_user writes of realtime's sockets and their chat history.
* ``chat``: chat messages stored for realtime; ``notifications``: notification writes and the SSE hub.
* ``cases``: case writes and their events; ``node_credentials``: LiveKit node credentials for recording.
* ``link``: what conference asks link.
* ``consumers``: the events of other services conference applies; ``jobs``: the periodic sweeps.
* ``rebuild``: the snapshot others rebuild their read models from, and the rebuild of conference's own.
"""

from __future__ import annotations

from conference.events import chat, consumers, jobs, node_credentials, participants, presence, rebuild, rooms
from servicekit.web import Runtime

__all__ = ["consumers", "jobs", "rebuild", "serve_requests"]


async def serve_requests(runtime: Runtime, conference: rooms.Conference) -> None:
    """Answer every request/reply subject conference serves."""
    await rooms.serve_requests(runtime, conference)
    await chat.serve_requests(runtime)  # chat messages sent over Socket.IO (rpc.conference.chat.store)
    # room_user writes of realtime's sockets (rpc.conference.presence.*)
    await presence.serve_requests(runtime, conference)
    # LiveKit calls of realtime's room sockets: get-user-list, track-muted-unmuted
    await participants.serve_requests(runtime, conference.nodes)
    # LiveKit node credentials for recording's webhook checks and egress calls (core NATS only: secrets)
    await node_credentials.serve_requests(runtime, conference.nodes)
