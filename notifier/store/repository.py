"""The Store: the repository the engine, API and CLI use; SQL runs through a Database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from notifier.domain.errors import ConfigError
from notifier.store.api_keys import KEY_PREFIX, ApiKeyRepository, hash_secret
from notifier.store.areas import AreaDeliveryRepository
from notifier.store.cap import CapRepository
from notifier.store.channel_stats import ChannelStatsRepository
from notifier.store.confirmations import ConfirmationRepository
from notifier.store.database import Database
from notifier.store.deliveries import DeliveryRepository
from notifier.store.direct_messages import DirectMessageRepository
from notifier.store.feedback import FeedbackRepository
from notifier.store.follow import FollowRepository
from notifier.store.hook_nonces import HookNonceRepository
from notifier.store.notices import NoticeRepository
from notifier.store.public import PublicRepository
from notifier.store.recurring import RecurringRepository
from notifier.store.reports import ReportRepository
from notifier.store.rosters import RosterRepository
from notifier.store.shared_limits import SharedLimitRepository
from notifier.store.staff import StaffRepository
from notifier.store.subscription_requests import SubscriptionRequestRepository
from notifier.store.templates import TemplateRepository

__all__ = ["KEY_PREFIX", "Store", "hash_secret", "open_database"]


class Store(
    PublicRepository,
    CapRepository,
    NoticeRepository,
    DeliveryRepository,
    AreaDeliveryRepository,
    SubscriptionRequestRepository,
    DirectMessageRepository,
    ApiKeyRepository,
    HookNonceRepository,
    StaffRepository,
    TemplateRepository,
    FollowRepository,
    RosterRepository,
    ChannelStatsRepository,
    ConfirmationRepository,
    FeedbackRepository,
    ReportRepository,
    SharedLimitRepository,
    RecurringRepository,
):
    def __init__(self, db: Database) -> None:
        self.db = db


DATABASE_SETTING = "[database] url (NOTIFIER_DATABASE__URL)"


async def open_database(url: str) -> Database:
    """Connect to the database a ``[database] url`` names.

    ConfigError naming the setting, in one line, when the URL cannot give a database: a scheme this version
    does not serve, an empty path, a directory that does not exist or cannot be written. The URL itself is
    not repeated (a PostgreSQL one may carry a password); a SQLite path is.
    """
    if url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            f"{DATABASE_SETTING}: PostgreSQL is planned but not supported in this version; use sqlite:///path.db"
        )
    if not url.startswith("sqlite:///"):
        raise ConfigError(f"{DATABASE_SETTING}: expected sqlite:///path.db")
    path = url.removeprefix("sqlite:///")
    if not path:
        raise ConfigError(f"{DATABASE_SETTING}: the path after sqlite:/// is empty; expected sqlite:///path.db")
    from notifier.store.sqlite import SqliteDatabase

    directory = Path(path).parent
    if path != ":memory:" and not directory.is_dir():
        raise ConfigError(f"{DATABASE_SETTING}: the directory {directory} of {path} does not exist")
    db: Database = SqliteDatabase(path)
    try:
        await db.connect()
    except (sqlite3.Error, OSError) as exc:
        await db.close()
        raise ConfigError(f"{DATABASE_SETTING}: cannot open or write the SQLite database {path}: {exc}") from None
    return db
