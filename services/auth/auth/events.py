"""Auth publishes no events; it asks link (password check) and conference (participant token) over NATS:
``servicekit.events.RPC_LINK_VERIFY_PASSWORD`` and ``RPC_PARTICIPANT_TOKEN``."""
