"""Rules of the telemetry service, free of I/O, one module per topic: ``radio`` (the radio proxy's cache),
``tasks`` (car tasks and positions), ``statistics`` (the /stats/* queries and read model values)."""
