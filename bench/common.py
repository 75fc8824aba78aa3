"""What every benchmark shares: a fresh migrated database, a result record, peak memory."""

from __future__ import annotations

import json
import resource
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from notifier.config import Settings
from notifier.store import Store, open_database


@dataclass
class Result:
    name: str
    value: float
    unit: str
    baseline: float
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return round(self.value / self.baseline, 3) if self.baseline else 0.0

    def as_json(self) -> str:
        data = {
            "name": self.name,
            "value": round(self.value, 3),
            "unit": self.unit,
            "baseline": round(self.baseline, 3),
            "ratio": self.ratio,
            "params": self.params,
        }
        return json.dumps(data, ensure_ascii=False)

    def emit(self) -> Result:
        print(self.as_json(), flush=True)
        return self


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def bench_settings(path: Path, **engine: Any) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": f"sqlite:///{path}"},
            "engine": {"poll_interval": 0.02, **engine},
            "channels": {
                "sms": {"kind": "sms", "type": "outbox"},
                "email": {"kind": "email", "type": "outbox"},
                "wechat": {"kind": "wechat", "type": "outbox"},
            },
        }
    )


async def open_store(settings: Settings) -> Store:
    db = await open_database(settings.database.url)
    await db.migrate()
    return Store(db)
