"""One process sending one message through a WeChat or WeCom alias whose token cache is the database's:
``python -m tests.scale.token_sender DB_URL CHANNELS_JSON RECIPIENT``.

The channels are built as the service builds them (``load_channels`` with ``DatabaseTokenCaches``). The
process opens them, writes ``ready`` on stdout, waits for a line on stdin (so the test can start several
at the same moment), sends one message through the only alias and writes the result's class name.
"""

from __future__ import annotations

import asyncio
import json
import sys

from channels import load_channels
from channels.base import OutboundMessage
from notifier.config import Settings
from notifier.engine.context import new_worker_id
from notifier.engine.shared_tokens import DatabaseTokenCaches
from notifier.store import Store, open_database


async def main(db_url: str, channels: str, recipient: str) -> None:
    db = await open_database(db_url)
    settings = Settings.model_validate({"database": {"url": db_url}, "channels": json.loads(channels)})
    adapters = load_channels(settings, {"token_caches": DatabaseTokenCaches(Store(db), new_worker_id())})
    [(alias, adapter)] = adapters.items()
    await adapter.open()
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    message = OutboundMessage(
        delivery_id=1, notice_id=1, channel=settings.channels[alias].kind.value, alias=alias, recipient=recipient,
        text="明日8时至20时有暴雨,请减少外出", subject="暴雨蓝色预警", idempotency_key=f"n1-{recipient}",
    )
    [result] = await adapter.send([message])
    print(type(result).__name__, flush=True)
    await adapter.close()
    await db.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
