"""The AudD wire format, transport-agnostic: provider metadata blocks (metadata.py) and the one
presenter from a match to AudD's result objects (presenter.py). HTTP-specific parts (base URL,
operator contact) stay in ``api/``."""
