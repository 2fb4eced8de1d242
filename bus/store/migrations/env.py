"""Alembic environment: migrations run on a connection handed over by `Store.migrate`."""

from alembic import context

from bus.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `dematbus migrate` (bus.store.db.Store.migrate)")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
