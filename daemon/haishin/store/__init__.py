"""Storage (SQLAlchemy Core): the inbound spool, subscribers, confirmations, the outbound
queue. It imports nothing of the daemon, so the CLI can use it alone."""

from .engine import create_engine, migrate, open_store, sqlite_url
from .spool import put

__all__ = ["create_engine", "migrate", "open_store", "put", "sqlite_url"]
