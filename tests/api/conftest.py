"""Fixtures for the API tests: live servers, a file server, an SDK transport (see live_server.py)."""

from live_server import file_server, sdk_http, server, strict_server

__all__ = ["file_server", "sdk_http", "server", "strict_server"]
