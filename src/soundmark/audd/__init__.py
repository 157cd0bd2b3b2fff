"""The AudD wire format, transport-agnostic: the one table of error codes and the error envelope
(errors.py), the typed parameter layer every method's parameters go through (typed.py), provider
metadata blocks (metadata.py) and the one presenter from a match to AudD's result objects
(presenter.py). HTTP-specific parts (base URL, operator contact) stay in ``api/``."""
