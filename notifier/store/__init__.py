"""Storage: a Database (SQLite now, PostgreSQL later) and the Store repository on top of it."""

from notifier.store.database import Database
from notifier.store.repository import Store, open_database

__all__ = ["Database", "Store", "open_database"]
