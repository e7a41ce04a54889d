"""Protocol-level fakes of third parties (started by fixtures)."""
