"""Postgres: the tables, the engine and the unit of work."""
