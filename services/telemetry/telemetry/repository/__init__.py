"""Storage of the telemetry service, one module per topic: ``radio`` (the radio proxy's cache), ``tasks`` (car
tasks and their read models), ``data_log`` (the raw webhook log), ``statistics`` (the /stats/* read model)."""
