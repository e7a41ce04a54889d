"""Conference service: rooms, users in rooms, LiveKit nodes and participant tokens."""
