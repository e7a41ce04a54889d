"""Faults under load (``just chaos``): see tests/chaos/run.py."""
