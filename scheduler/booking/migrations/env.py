"""Alembic environment of the booking store's PostgreSQL schema (run by scheduler.booking.pg).

The caller hands over an open SQLAlchemy connection inside a transaction
(``config.attributes["connection"]``); migrations run on it, so a failed migration leaves the
database as it was (PostgreSQL's DDL is transactional).
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached when run by hand without a connection
    raise RuntimeError("run the booking migrations through `stagectl book setup --db URL` "
                       "or `stagectl desk serve`, which pass a connection")
context.configure(connection=connection, target_metadata=None, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
