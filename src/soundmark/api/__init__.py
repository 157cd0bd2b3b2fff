"""The AudD-compatible HTTP API."""
