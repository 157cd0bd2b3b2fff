"""Synthetic music for the out-of-the-box demo catalog and for tests: no user audio needed."""
