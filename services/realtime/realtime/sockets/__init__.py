"""The Socket.IO side of realtime, its second entry point beside routes/: ``server`` (the python-socketio server:
namespace checks at connect time, emits through the Redis manager, dispatch to the registered handlers), the
handlers of the room namespaces (``rooms``) and of the crew app's ``/mobile`` (``mobile``), and ``emitter``, what
those handlers (and realtime.events) need of the server. Only realtime.app imports ``server``; it hands the
server to the handlers, so nothing else does (tests/test_realtime_imports.py)."""
