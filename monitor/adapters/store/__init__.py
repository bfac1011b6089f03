"""Store backends, each implementing monitor.ports.Store: sqlite (SqliteStore) and
sqlite_schema (its migrations and column encodings); later PostgreSQL.

The only importers of their database drivers (sqlite3). May import monitor.model,
monitor.state and monitor.errors; never the other adapters, the service, daemon or cli.
"""
