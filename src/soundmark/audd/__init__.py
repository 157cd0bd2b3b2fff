"""The AudD wire format, transport-agnostic: the one table of error codes (errors.py), the typed
parameter layer every method's parameters go through (typed.py), the response models of every
answer (models.py, with the provider blocks typed in blocks.py), provider metadata blocks
(metadata.py), the one presenter from a match, a segment or a stream play to those models
(presenter.py), and the OpenAPI fragments generated from the models (schema.py). HTTP-specific
parts (base URL, operator contact, routes) stay in ``api/``."""
