"""Store backends: select (which backend a `database` setting names), sqlite (SqliteStore)
with sqlite_schema (its migrations), postgres (PostgresStore) with postgres_schema.

Each backend alone imports its driver (sqlite3; psycopg and psycopg_pool). May import
monitor.model, monitor.state, monitor.errors and monitor.ports.
"""
