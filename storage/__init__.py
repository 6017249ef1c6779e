"""Persistence: SQLAlchemy 2 async models, the hot queries, Alembic migrations."""
