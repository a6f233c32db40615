"""Alembic migrations of the booking store on PostgreSQL (see env.py)."""
