//! SQLite and PostgreSQL storage for Strongroom (being built).
