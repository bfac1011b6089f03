"""The store contract: one suite every store backend passes (SQLite and PostgreSQL today)."""
