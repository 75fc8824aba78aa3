"""The Store: the repository the engine, API and CLI use; SQL runs through a Database."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

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
CONNECT_SECONDS = 10.0


async def open_database(url: str, *, pool_size: int = 10) -> Database:
    """Connect to the database a ``[database] url`` names.

    ConfigError naming the setting, in one line, when the URL cannot give a database: a scheme this version
    does not serve, an empty path, a directory that does not exist or cannot be written, a PostgreSQL server
    that does not answer, refuses the login or has no such database. The URL itself is not repeated (a
    PostgreSQL one may carry a password); a SQLite path is, and a PostgreSQL host, port and database name.
    """
    if url.startswith(("postgresql://", "postgres://")):
        return await open_postgres(url, pool_size)
    if not url.startswith("sqlite:///"):
        raise ConfigError(f"{DATABASE_SETTING}: expected sqlite:///path.db or postgresql://user@host/database")
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


async def open_postgres(url: str, pool_size: int = 10) -> Database:
    """A connected PostgreSQL database, or ConfigError in one line without the URL's password."""
    import asyncpg

    from notifier.store.postgres import PostgresDatabase

    try:
        parts = urlsplit(url)
        where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}/{parts.path.lstrip('/') or parts.username}"
    except ValueError:
        raise ConfigError(f"{DATABASE_SETTING}: not a valid postgresql:// URL") from None
    db = PostgresDatabase(url, min_size=min(2, pool_size), max_size=pool_size)
    try:
        await asyncio.wait_for(db.connect(), CONNECT_SECONDS)
    except asyncpg.InvalidCatalogNameError:
        problem = "the database does not exist"
    except asyncpg.InvalidAuthorizationSpecificationError:
        problem = "the server refused the login (user or password)"
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        problem = f"the server refused the connection ({type(exc).__name__})"
    except TimeoutError:
        problem = f"no answer within {CONNECT_SECONDS:g} s"
    except OSError as exc:
        problem = f"cannot reach the server ({exc.strerror or type(exc).__name__})"
    except ValueError:
        problem = "not a valid postgresql:// URL"
    else:
        return db
    await db.close()
    raise ConfigError(f"{DATABASE_SETTING}: cannot open the PostgreSQL database {where}: {problem}")
