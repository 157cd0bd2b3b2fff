"""The catalog: track metadata, external ids, and the store's bookkeeping tables (SQLite)."""
