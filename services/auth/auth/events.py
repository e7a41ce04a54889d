"""Auth publishes no events; it asks link (password check) and conference (participant token) over NATS:
``contracts.link.RPC_LINK_VERIFY_PASSWORD`` and ``contracts.conference.RPC_PARTICIPANT_TOKEN``."""
