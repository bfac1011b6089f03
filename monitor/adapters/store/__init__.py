"""Store backends: select (which backend a `database` setting names), sqlite (SqliteStore)
with sqlite_connection (its shared connection and run lock), sqlite_schema (its migrations)
and sqlite_views (the dashboard's reads), postgres (PostgresStore) with postgres_schema and
postgres_cluster (leases, claims, instances), copy (`monitor store copy`), guard (`guarded`:
database faults as StoreErrors, for both).

Each backend alone imports its driver (sqlite3; psycopg and psycopg_pool). May import
monitor.model, monitor.state, monitor.errors and monitor.ports; never the other adapters, the
service, daemon or cli.
"""
