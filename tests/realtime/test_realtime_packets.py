"""Realtime's Socket.IO packet class (realtime.sockets.server.JsonPacket): its binary-attachment check gives
python-socketio's answer on any payload, and the pub/sub manager (every emit of every instance) uses it."""

from __future__ import annotations

from typing import Any

import socketio.async_pubsub_manager
import socketio.packet
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.sockets.server import JsonPacket

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
PAYLOADS = st.recursive(
    SCALARS | st.binary(max_size=3),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(PAYLOADS)
def test_the_binary_check_answers_as_python_socketio(payload: Any) -> None:
    assert JsonPacket.data_is_binary(payload) == socketio.packet.Packet.data_is_binary(payload)


def test_a_history_sized_payload_with_bytes_deep_inside_is_binary() -> None:
    rows = [{"status": "UpdateLatLngLinkDetail", "latitude": "13.0", "n": n} for n in range(100)]
    assert JsonPacket.data_is_binary(rows) is False
    rows[57]["data"] = [1, {"file": b"\x89PNG"}]
    assert JsonPacket.data_is_binary(rows) is True


def test_the_pubsub_manager_checks_emits_with_it() -> None:
    assert socketio.async_pubsub_manager.Packet is JsonPacket
