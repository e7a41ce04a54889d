"""The link service: links to rooms, their usage log and tenants (``/link/*``)."""
