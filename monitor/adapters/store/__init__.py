"""Store backends: sqlite (SqliteStore, its schema and migrations); later PostgreSQL."""
