"""A synthetic county on the real map: residents spread over the demo county's 392 villages.

The areas are the demo's divisions file (昌乐县, its 8 towns and 392 villages). Residents are generated
(``+86138`` numbers, ``openid`` and ``example.org`` addresses, never real people's data), each in one
village, villages of uneven size (weights drawn uniformly from 0.3 to 1.7). Contact coverage follows
an assumed age mix, since who has which address depends mostly on age:

    group                  share   phone   WeChat (of those with a phone)   e-mail
    ---------------------  -----   -----   ------------------------------   ------
    under 65               80 %    97 %    72 %                             12 %
    65 and over            20 %    75 %    33 %                             1 %

Why these shares: about a fifth of a rural Shandong county's people are 65 or over; nearly every adult
under 65 carries a mobile phone, while a quarter of the elderly have none of their own (or none on
record); only residents who followed the county's official account and registered have a WeChat
address here, and that is far fewer among the elderly; few rural residents read e-mail. WeChat needs
a phone number, so nobody has WeChat without a phone. Overall that makes about 92 % with a phone,
63 % with WeChat, 10 % with e-mail and 7 % with no address at all (mostly elderly): those are reached
only by the notice board. Each resident's channel order is WeChat, SMS, e-mail (the API's default).
The draw is seeded, so every run has the same county.
"""

from __future__ import annotations

import csv
import json
import random
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

DIVISIONS = Path(__file__).resolve().parents[1] / "notifier" / "demo" / "data" / "changle-divisions.csv"
COUNTY = "370725"
TOPIC, DEPARTMENT = "weather", "emergency"
ELDERLY_SHARE = 0.20
COVERAGE = {  # (phone, WeChat among those with a phone, e-mail)
    "under 65": (0.97, 0.72, 0.12),
    "65 and over": (0.75, 0.33, 0.01),
}
CHUNK = 20_000


@dataclass(frozen=True)
class Resident:
    id: int
    village: str
    phone: str | None
    wechat: str | None
    email: str | None

    @property
    def addresses(self) -> list[str]:
        return [a for a in (self.phone, self.wechat, self.email) if a is not None]

    @property
    def channels(self) -> list[str]:
        kinds = [("wechat", self.wechat), ("sms", self.phone), ("email", self.email)]
        return [kind for kind, address in kinds if address is not None]


def divisions(town: str | None = None) -> list[dict[str, str]]:
    """The demo county's rows (code, name, level, parent); only the county, ``town`` and its villages
    when a town is given."""
    with DIVISIONS.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if town is None:
        return rows
    return [row for row in rows if row["code"] in (COUNTY, town) or row["parent"] == town]


def residents(count: int, villages: list[str], seed: int = 8) -> list[Resident]:
    """``count`` residents over ``villages`` with the coverage above; ids from 1."""
    rng = random.Random(seed)
    weights = [rng.uniform(0.3, 1.7) for _ in villages]
    homes = rng.choices(villages, weights=weights, k=count)
    people = []
    for i, village in enumerate(homes, start=1):
        phone_share, wechat_share, email_share = COVERAGE["65 and over" if rng.random() < ELDERLY_SHARE else "under 65"]
        has_phone = rng.random() < phone_share
        has_wechat = has_phone and rng.random() < wechat_share
        has_email = rng.random() < email_share
        people.append(
            Resident(
                id=i,
                village=village,
                phone=f"+86138{i:08d}" if has_phone else None,
                wechat=f"openid{i:010d}" if has_wechat else None,
                email=f"r{i}@example.org" if has_email else None,
            )
        )
    return people


def populate(path: Path, people: list[Resident], areas: list[dict[str, str]]) -> None:
    """Write the areas, the alert's topic and department, and the residents into a migrated database."""
    stamp = datetime.now(UTC).isoformat()
    conn = sqlite3.connect(path)
    try:
        conn.executemany(
            "INSERT OR IGNORE INTO areas (code, name, level, parent) VALUES (?, ?, ?, ?)",
            [(a["code"], a["name"], a["level"], None if a["level"] == "county" else a["parent"]) for a in areas],
        )
        conn.execute("INSERT OR IGNORE INTO topics (code, name) VALUES (?, '天气预警')", (TOPIC,))
        conn.execute("INSERT OR IGNORE INTO departments (code, name) VALUES (?, '昌乐县应急管理局')", (DEPARTMENT,))
        for start in range(0, len(people), CHUNK):
            rows = [
                (p.id, f"居民{p.id}", p.phone, p.email, p.wechat, p.village, json.dumps(p.channels), stamp)
                for p in people[start : start + CHUNK]
            ]
            conn.executemany(
                "INSERT INTO subscribers (id, name, phone, email, wechat_openid, area_code, channels, consent_source,"
                " consent_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'synthetic', ?8, ?8, ?8)",
                rows,
            )
            conn.commit()
    finally:
        conn.close()


def coverage(people: list[Resident]) -> dict[str, float]:
    """The shares drawn, in percent: the params that say what county was simulated."""
    n = len(people) or 1
    return {
        "phone_pct": round(100 * sum(p.phone is not None for p in people) / n, 1),
        "wechat_pct": round(100 * sum(p.wechat is not None for p in people) / n, 1),
        "email_pct": round(100 * sum(p.email is not None for p in people) / n, 1),
        "no_address_pct": round(100 * sum(not p.addresses for p in people) / n, 1),
    }
