"""A process that competes for a leadership: ``python -m tests.scale.leader_process DSN NAME``.

It logs to stdout (``engine.leadership``'s lines: "now leads", "stands by", "no longer leads") until it
is killed or its stdin closes.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from notifier.engine.leadership import AdvisoryLockLeader


async def main(dsn: str, name: str) -> None:
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    leader = AdvisoryLockLeader(dsn, name, retry_seconds=0.5)

    async def nothing() -> None:
        return None

    await leader.start(nothing, nothing)
    await asyncio.to_thread(sys.stdin.read)  # until the test closes our stdin
    await leader.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
