"""Link's rules, free of I/O (no database, bus, Redis, HTTP or web framework), one module per topic:
``links`` (IDs, room names, tenant domains and URLs, expiry, the user agent, IDEMS links), ``passwords``,
``sms`` (which SMS a link sends, mobile numbers), ``positions`` (a room's ``positionUser`` list), ``history`` (the
SMS-link history's paging and the socket ``queue`` search), ``detail`` (GET /link/getdetail's one-hop answer:
the room reply and the participant token link signs itself) and ``rows`` (rows as the original's JSON showed
them)."""

from link.domain import detail, history, links, passwords, positions, rows, sms

__all__ = ["detail", "history", "links", "passwords", "positions", "rows", "sms"]
