"""Link's storage, one module per topic, always bound parameters: ``links`` (link_connect, and the Redis
counters of password attempts), ``tenants`` (services), ``usage`` (usage_status_log and its group commit),
``readmodels`` (the read-model tables events keep: getdetail's lookup, the consumers' upserts, the palette),
``history`` (the SMS-link history pages) and ``sms`` (sms_message, the SMS outbox of record). Outbox rows are
written by ``link.events`` through ``servicekit.bus.add_event`` in the same transactions."""

from link.repository import history, links, readmodels, sms, tenants, usage

__all__ = ["history", "links", "readmodels", "sms", "tenants", "usage"]
