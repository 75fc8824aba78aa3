"""A delivery process for the crash test: ``python -m tests.engine.crash_worker DB_URL LOG_PATH``.

Runs a real Engine (two workers) with a RecordingChannel that appends every message it is handed
to LOG_PATH, until the test kills it.
"""

from __future__ import annotations

import asyncio
import sys

from notifier.config import Settings
from notifier.engine import Engine
from notifier.store import Store, open_database
from notifier.testing import RecordingChannel

ENGINE = {"workers": 2, "batch_size": 100, "lease_seconds": 5, "poll_interval": 0.05}


def crash_settings(db_url: str) -> Settings:
    return Settings.model_validate(
        {"database": {"url": db_url}, "engine": ENGINE, "channels": {"sms": {"kind": "sms", "type": "recording"}}}
    )


async def main(db_url: str, log_path: str) -> None:
    db = await open_database(db_url)
    channel = RecordingChannel("sms", log_path=log_path, max_batch=100)
    engine = Engine(Store(db), crash_settings(db_url), {"sms": channel})
    await engine.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
