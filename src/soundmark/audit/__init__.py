"""Audit a music folder or a catalog for duplicates and near-duplicates, adding nothing to any store."""
