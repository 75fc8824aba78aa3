"""A delivery process for the crash tests: ``python -m tests.engine.crash_worker DB_URL LOG_PATH [OPTIONS]``.

Runs a real Engine (two workers unless told otherwise) with a RecordingChannel that appends every message
it is handed to LOG_PATH, until the test kills it. OPTIONS is a JSON object: ``engine`` settings that
replace those of ``ENGINE``, and ``channel`` options of the RecordingChannel.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from notifier.config import Settings
from notifier.engine import Engine
from notifier.store import Store, open_database
from notifier.testing import RecordingChannel

ENGINE = {"workers": 2, "batch_size": 100, "lease_seconds": 5, "poll_interval": 0.05}


def crash_settings(db_url: str, **engine: Any) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": db_url},
            "engine": {**ENGINE, **engine},
            "channels": {"sms": {"kind": "sms", "type": "recording"}},
        }
    )


async def main(db_url: str, log_path: str, options: dict[str, Any]) -> None:
    db = await open_database(db_url)
    channel = RecordingChannel("sms", log_path=log_path, max_batch=100, **options.get("channel", {}))
    engine = Engine(Store(db), crash_settings(db_url, **options.get("engine", {})), {"sms": channel})
    await engine.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}))
