"""soundmark: self-hosted music recognition with an AudD-compatible API."""

__version__ = "0.1.0"
