"""Alembic environment: the engine comes from `haishin.store.engine.migrate`."""

from __future__ import annotations

from alembic import context

from haishin.store.schema import metadata

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
