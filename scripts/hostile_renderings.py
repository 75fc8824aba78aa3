"""What one hostile request costs in template renderings: wall time, processor time, and how long the event
loop stops answering meanwhile.

``python scripts/hostile_renderings.py [--languages N]`` starts the API on 127.0.0.1 over a fresh SQLite file
and sends, as an approver, then as an issuer:

1. a template save whose every slot (``--languages`` languages, every slot) works up to the bound of one
   rendering (``template_sandbox``: ``isalpha`` over a 98,000-character text in a loop);
2. a notice preview using a saved template that is light with its fields' samples and heavy with the notice's
   data (``{% if mode == "heavy" %}``), over every channel kind the server serves, in every language.

Meanwhile a second client asks ``GET /healthz`` every 20 ms; ``loop_stall_s`` is its slowest answer. One JSON
line per request: status, wall seconds, the process's processor seconds, the slowest health answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from notifier.api import create_app
from notifier.config import Settings
from notifier.domain.enums import Role
from notifier.domain.templates import HTML_SLOTS, TEXT_SLOTS
from notifier.store import Store, open_database
from tests.conftest import TOWN_A, seed_catalog

HEAVY = "{% set s = 'a' * 98000 %}{% for i in range(20000) %}{{ '' if s.isalpha() else '' }}{% endfor %}"
LANGUAGES = ["zh", "en", "bo", "ug", "mn", "ko", "ja", "fr", "de", "es"]
KINDS = ["sms", "wechat", "wecom", "email"]


def _health(base: str, stop: threading.Event, worst: list[float]) -> None:
    """In a thread of its own: the server's event loop cannot hold it up."""
    while not stop.wait(0.02):
        started = time.perf_counter()
        with urllib.request.urlopen(base + "/healthz", timeout=300) as response:
            response.read()
        worst[0] = max(worst[0], time.perf_counter() - started)


async def _measured(label: str, base: str, key: str, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    worst, stop = [0.0], threading.Event()
    health = threading.Thread(target=_health, args=(base, stop, worst))
    health.start()
    async with aiohttp.ClientSession() as client:
        cpu, wall = time.process_time(), time.perf_counter()
        async with client.request(method, base + path, json=body, headers={"Authorization": f"Bearer {key}"}) as r:
            status, answer = r.status, await r.text()
        result = {
            "request": label,
            "status": status,
            "wall_s": round(time.perf_counter() - wall, 2),
            "cpu_s": round(time.process_time() - cpu, 2),
        }
    stop.set()
    await asyncio.to_thread(health.join)
    result["loop_stall_s"] = round(worst[0], 2)
    result["answer"] = answer[:300]
    return result


async def main(languages: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        outbox = {"type": "outbox", "root": str(Path(folder) / "outbox")}
        settings = Settings.model_validate(
            {
                "database": {"url": f"sqlite:///{folder}/hostile.db"},
                "channels": {kind: {"kind": kind, **outbox} for kind in KINDS},
            }
        )
        db = await open_database(settings.database.url)
        await db.migrate()
        store = Store(db)
        await seed_catalog(store)
        _, approver = await store.create_api_key(department="environment", role=Role.APPROVER, name="a", actor="b")
        _, issuer = await store.create_api_key(department="environment", role=Role.ISSUER, name="i", actor="b")
        server = TestServer(create_app(settings, store=store), host="127.0.0.1", port=0)
        await server.start_server()
        base = str(server.make_url("")).rstrip("/")
        slots = [*TEXT_SLOTS, *HTML_SLOTS]
        texts = {language: dict.fromkeys(slots, HEAVY) for language in LANGUAGES[:languages]}
        save = {"name": "hostile-save", "texts": texts}
        print(
            json.dumps(
                await _measured(
                    f"POST /templates: {languages} languages x {len(slots)} slots at the bound",
                    base,
                    approver,
                    "POST",
                    "/api/v1/templates",
                    save,
                )
            )
        )
        switched = (
            "{% set s = 'a' * (98000 if mode == 'heavy' else 1) %}{% for i in range(20000 if mode == 'heavy' else 1) %}"
            "{{ '' if s.isalpha() else '' }}{% endfor %}{{ title }}"
        )
        light = {
            "name": "hostile-data",
            "fields": [{"name": "mode", "sample": "light"}],
            "texts": {language: dict.fromkeys(slots, switched) for language in LANGUAGES[:languages]},
        }
        async with aiohttp.ClientSession() as client:
            async with client.post(
                base + "/api/v1/templates", json=light, headers={"Authorization": f"Bearer {approver}"}
            ) as response:
                assert response.status == 201, await response.text()
        notice = {
            "topic": "air-quality",
            "title": "t",
            "template": "hostile-data",
            "data": {"mode": "heavy"},
            "target": {"areas": [TOWN_A]},
            "channels": KINDS,
        }
        print(
            json.dumps(
                await _measured(
                    f"POST /notice-preview: {len(KINDS)} kinds x {languages} languages at the bound",
                    base,
                    issuer,
                    "POST",
                    "/api/v1/notice-preview",
                    notice,
                )
            )
        )
        await server.close()
        await db.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--languages", type=int, default=10, choices=range(1, 11), metavar="1-10")
    asyncio.run(main(parser.parse_args().languages))
