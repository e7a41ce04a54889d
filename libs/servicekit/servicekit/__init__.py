"""Shared building blocks every service of the suite needs, and nothing more."""
