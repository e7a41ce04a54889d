"""The conference service's storage: SQL on its own tables (outbox rows are written by ``events`` through
``servicekit.bus.add_event`` in the same transactions), always parameterised, one module per topic."""

from conference.repository import cases, chat, nodes, notifications, participants, pictures, rooms

__all__ = ["cases", "chat", "nodes", "notifications", "participants", "pictures", "rooms"]
