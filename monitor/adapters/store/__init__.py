"""Store backends: sqlite (SqliteStore) and sqlite_schema (its migrations); later PostgreSQL."""
