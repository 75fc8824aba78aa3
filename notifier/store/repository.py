"""The Store: the repository the engine, API and CLI use; SQL runs through a Database."""

from __future__ import annotations

from notifier.store.api_keys import KEY_PREFIX, ApiKeyRepository, hash_secret
from notifier.store.areas import AreaDeliveryRepository
from notifier.store.database import Database
from notifier.store.deliveries import DeliveryRepository
from notifier.store.hook_nonces import HookNonceRepository
from notifier.store.notices import NoticeRepository
from notifier.store.subscription_requests import SubscriptionRequestRepository

__all__ = ["KEY_PREFIX", "Store", "hash_secret", "open_database"]


class Store(
    NoticeRepository,
    DeliveryRepository,
    AreaDeliveryRepository,
    SubscriptionRequestRepository,
    ApiKeyRepository,
    HookNonceRepository,
):
    def __init__(self, db: Database) -> None:
        self.db = db


async def open_database(url: str) -> Database:
    """Connect to the database a ``[database] url`` names."""
    if url.startswith("sqlite:///"):
        from notifier.store.sqlite import SqliteDatabase

        db: Database = SqliteDatabase(url.removeprefix("sqlite:///"))
    else:
        raise NotImplementedError("PostgreSQL support arrives with the scale-out issue; use sqlite:/// for now")
    await db.connect()
    return db
