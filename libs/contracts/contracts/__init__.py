"""What the services exchange over NATS: event and request/reply schemas (versioned msgspec structs).

Subjects of events: ``<service>.<entity>.<verb>`` on JetStream (one stream per publishing service).
Subjects of requests: ``rpc.<service>.<entity>.<verb>`` (core NATS, never captured by a stream).
Field names follow the original wire names (``linkID``, ``room``...) so mapping to Socket.IO emits is direct.

One module per publishing service: ``contracts.<service>`` holds the subjects of the events ``<service>``
publishes, the request subjects it serves, and the msgspec structs of their payloads and requests (with the
reply shapes in comments), and nothing of another service. A struct used by several services' subjects lives
with the service whose subject it was made for (e.g. ``contracts.conference.RoomQuery``, also the request of
``rpc.link.link.position_group``, ``rpc.recording.room.toggle`` and ``rpc.telemetry.car.newest``); the others
import it from there. A service publishes and serves only the subjects of its own module, and consumes or asks
those of the others (tests/platform/test_contracts.py checks both). auth and realtime publish no events and serve no
requests (they only ask and consume), so they have no module. The envelope (``Event``, ``new_event``,
``RpcReply``) is mechanics and lives in ``servicekit.bus``.
"""
