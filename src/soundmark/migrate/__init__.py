"""``soundmark migrate``: copy an embedded store into PostgreSQL + a Redis Cluster (see ``run.py``)."""

from soundmark.migrate.run import MigrateProgress, MigrateReport, migrate

__all__ = ["MigrateProgress", "MigrateReport", "migrate"]
