"""Relief rosters: upload (matching each row to a resident), read, erase; the rows a notice's texts use.

Matching (``create_roster``): each row's identifying cell is normalised (a phone to E.164, an id as written),
then looked up among residents not erased in one join. A row that identifies nobody, or the same resident as
an earlier row, is kept with its reason and left out of every notice. With ``direct``, an unmatched row with a
valid mobile number in its phone column is sent to that number: a statutory notice to a beneficiary, kept as
a contact whose consent basis is ``statutory`` (``subscribers.consent_basis``), never a subscription: no
notice but one targeting a roster of it reaches such a contact.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from notifier.domain.contacts import normalise_phone
from notifier.domain.enums import Role
from notifier.domain.errors import Conflict, NotFound
from notifier.domain.models import ApiKeyInfo
from notifier.domain.text import ascii_digits
from notifier.store.audit import AuditRepository
from notifier.store.common import dumps, now_iso
from notifier.store.database import Row
from subscribers.roster_rows import KEY_HEADERS, RosterTable, key_column, name_column

STATUTORY = "statutory"


def key_value(key: str, cell: str) -> tuple[str | None, str | None]:
    """(normalised identifying value, None) or (None, the reason the row cannot be matched)."""
    if not cell:
        return None, f"empty {key}"
    if key == "phone":
        try:
            return normalise_phone(cell), None
        except ValueError:
            return None, "not a valid mobile phone number"
    if key == "resident_id" and not (ascii_digits(cell) and len(cell) <= 18):
        return None, "resident_id is not a number"
    return cell, None


def direct_phone(columns: list[str], cells: Mapping[str, str]) -> str | None:
    """The row's mobile number in E.164, from its first phone column, or None."""
    for header in KEY_HEADERS["phone"]:
        if header in columns and cells.get(header):
            try:
                return normalise_phone(cells[header])
            except ValueError:
                return None
    return None


class RosterRepository(AuditRepository):
    async def create_roster(
        self, *, department: str, name: str, key: str, table: RosterTable, direct: bool, actor: str
    ) -> int:
        """Store a roster and match its rows; its id (read the report with ``roster_report``)."""
        column = key_column(table.columns, key)
        async with self.db.transaction():
            row = await self.db.fetch_one(
                "insert_roster",
                {
                    "department": department,
                    "name": name,
                    "key": key,
                    "columns": dumps(table.columns),
                    "rows": len(table.rows),
                    "direct": direct,
                    "created_by": actor,
                    "now": now_iso(),
                },
            )
            assert row is not None
            roster_id = int(row["id"])
            reasons: dict[int, str] = {}
            inserts = []
            for number, cells in table.rows:
                value, reason = key_value(key, cells.get(column, ""))
                if reason:
                    reasons[number] = reason
                inserts.append(
                    {
                        "roster_id": roster_id,
                        "row_no": number,
                        "key_value": value,
                        "cells": dumps(cells),
                        "reason": None,
                    }
                )
            await self.db.execute_many("insert_roster_row", inserts)
            matches = await self._match(roster_id, key, reasons)
            if direct:
                await self._direct_contacts(roster_id, table, matches, reasons, actor)
            updates = [
                {
                    "roster_id": roster_id,
                    "row_no": number,
                    "subscriber_id": matches.get(number),
                    "reason": reasons.get(number),
                }
                for number, _ in table.rows
            ]
            await self.db.execute_many("set_roster_row_match", updates)
            await self.db.execute("set_roster_matched", {"id": roster_id, "matched": len(matches)})
            await self.audit(
                actor,
                "roster.upload",
                "roster",
                roster_id,
                {
                    "department": department,
                    "rows": len(table.rows),
                    "matched": len(matches),
                    "key": key,
                    "direct": direct,
                },
            )
        return roster_id

    async def _match(self, roster_id: int, key: str, reasons: dict[int, str]) -> dict[int, int]:
        """Row number -> resident id; rows matching nobody or a resident already matched get a reason."""
        found = await self.db.fetch_all(f"roster_matches_{key}", {"roster_id": roster_id})
        matches: dict[int, int] = {}
        first_row: dict[int, int] = {}
        for hit in found:
            number, subscriber = int(hit["row_no"]), int(hit["subscriber_id"])
            if subscriber in first_row:
                reasons[number] = f"same resident as row {first_row[subscriber]}"
                continue
            first_row[subscriber] = number
            matches[number] = subscriber
        rows = await self.db.fetch_all("list_roster_rows", {"roster_id": roster_id, "after": 0, "limit": 2**62})
        for row in rows:
            number = int(row["row_no"])
            if number not in matches and number not in reasons:
                reasons[number] = f"no resident with this {key}"
        return matches

    async def _direct_contacts(
        self, roster_id: int, table: RosterTable, matches: dict[int, int], reasons: dict[int, str], actor: str
    ) -> None:
        """Unmatched rows with a mobile number become statutory contacts (one per number)."""
        county = await self.db.fetch_value("county_area")
        names = name_column(table.columns)
        now = now_iso()
        taken = set(matches.values())
        for number, cells in table.rows:
            if number in matches:
                continue
            phone = direct_phone(table.columns, cells)
            if phone is None or county is None:
                continue
            existing = await self.db.fetch_value("find_subscriber_by_phone", {"phone": phone})
            if existing is None:
                created = await self.db.fetch_one(
                    "insert_subscriber",
                    {
                        "external_id": None,
                        "name": (cells.get(names) if names else None) or "-",
                        "phone": phone,
                        "email": None,
                        "wechat_openid": None,
                        "wecom_userid": None,
                        "area_code": county,
                        "channels": dumps(["sms"]),
                        "language": "zh",
                        "quiet_start": None,
                        "quiet_end": None,
                        "consent_source": f"statutory notice: roster {roster_id}",
                        "consent_at": now,
                        "now": now,
                    },
                )
                assert created is not None
                existing = int(created["id"])
                await self.db.execute("set_consent_basis", {"id": existing, "basis": STATUTORY})
                await self.audit(
                    actor,
                    "subscriber.create",
                    "subscriber",
                    existing,
                    {"basis": STATUTORY, "roster": roster_id, "phone": phone},
                )
            if int(existing) in taken:
                continue
            taken.add(int(existing))
            matches[number] = int(existing)
            reasons.pop(number, None)

    async def roster_row(self, roster_id: int) -> Row:
        row = await self.db.fetch_one("get_roster", {"id": roster_id})
        if row is None:
            raise NotFound(f"no roster {roster_id}")
        return row

    async def roster_for_key(self, key: ApiKeyInfo, roster_id: int) -> Row:
        """The roster, when the key's department owns it or the key is an admin's; NotFound otherwise (a
        roster of another department is not even said to exist)."""
        row = await self.roster_row(roster_id)
        if key.role != Role.ADMIN and row["department"] != key.department:
            raise NotFound(f"no roster {roster_id}")
        return row

    async def list_rosters(self, department: str | None, limit: int = 100) -> list[Row]:
        """The newest rosters of a department (of every department when None)."""
        return await self.db.fetch_all("list_department_rosters", {"department": department, "limit": limit})

    async def roster_report(self, roster_id: int) -> dict[str, Any]:
        row = await self.roster_row(roster_id)
        unmatched = await self.db.fetch_all("roster_unmatched", {"roster_id": roster_id})
        return {
            "id": roster_id,
            "department": row["department"],
            "name": row["name"],
            "key": row["key"],
            "columns": json.loads(row["columns"]),
            "rows": int(row["rows"]),
            "matched": int(row["matched"]),
            "direct": int(await self.db.fetch_value("roster_direct_count", {"roster_id": roster_id}) or 0),
            "unmatched": [{"row": int(u["row_no"]), "reason": u["reason"]} for u in unmatched],
            "created_at": row["created_at"],
            "erased_at": row["erased_at"],
        }

    async def roster_rows_page(self, roster_id: int, after: int, limit: int) -> list[Row]:
        rows = await self.db.fetch_all("list_roster_rows", {"roster_id": roster_id, "after": after, "limit": limit})
        return [{**row, "cells": json.loads(row["cells"])} for row in rows]

    async def erase_roster(self, roster_id: int, actor: str, *, reason: str) -> bool:
        """Delete a roster's rows and mark it erased, with an audit entry; False when already erased.
        Conflict while a notice that is not finished still uses it."""
        async with self.db.transaction():
            active = await self.db.fetch_all("roster_notices_active", {"roster_id": roster_id})
            if active:
                ids = ", ".join(str(r["id"]) for r in active)
                raise Conflict(f"roster {roster_id} is used by notice {ids}, which has not ended")
            if not await self.db.execute("mark_roster_erased", {"id": roster_id, "now": now_iso()}):
                return False
            await self.db.execute("erase_roster_rows", {"roster_id": roster_id})
            await self.audit(actor, "roster.erase", "roster", roster_id, {"reason": reason})
        return True

    async def rosters_past_retention(self, now: float, limit: int = 50) -> list[Row]:
        return await self.db.fetch_all("rosters_past_retention", {"now": now, "limit": limit})

    async def roster_cells(self, roster_id: int, subscriber_ids: list[int]) -> dict[int, dict[str, str]]:
        """Roster row of each of these residents (by resident id)."""
        rows = await self.db.fetch_all("roster_cells_of", {"roster_id": roster_id, "ids": dumps(subscriber_ids)})
        return {int(r["subscriber_id"]): json.loads(r["cells"]) for r in rows}

    async def roster_subscriber_ids(self, roster_id: int) -> list[int]:
        return [
            int(r["subscriber_id"]) for r in await self.db.fetch_all("roster_subscriber_ids", {"roster_id": roster_id})
        ]

    async def roster_sample_rows(self, roster_id: int) -> list[tuple[int, dict[str, str]]]:
        """(row number, cells) of every row that reaches someone, in row order: the preview's samples."""
        rows = await self.db.fetch_all("roster_sample_cells", {"roster_id": roster_id})
        return [(int(r["row_no"]), json.loads(r["cells"])) for r in rows]

    async def withdraw_ended_publicity(self, today: str, actor: str, limit: int = 100) -> list[int]:
        """Mark the publicity lists whose last day is before ``today`` withdrawn, each with an audit entry."""
        withdrawn = []
        for row in await self.db.fetch_all("publicity_to_withdraw", {"today": today, "limit": limit}):
            async with self.db.transaction():
                if await self.db.execute("withdraw_publicity", {"notice_id": row["notice_id"], "now": now_iso()}):
                    await self.audit(actor, "publicity.withdrawn", "notice", row["notice_id"], {"until": row["until"]})
                    withdrawn.append(int(row["notice_id"]))
        return withdrawn

    async def set_roster_retention(self, department: str, days: int, actor: str) -> None:
        """How many days a department's roster rows are kept after the last notice using them ends."""
        async with self.db.transaction():
            if not await self.db.execute("set_roster_retention", {"department": department, "days": days}):
                raise NotFound(f"no department {department}")
            await self.audit(actor, "department.roster_retention", "department", department, {"days": days})

    async def publicity_rows(self, roster_id: int, area: str | None) -> list[dict[str, Any]]:
        """A publicity list's rows (cells, the matched resident's name, village code and name), of one area
        (a code covers those under it) or of all; rows that reach nobody are not published."""
        rows = await self.db.fetch_all("publicity_rows", {"roster_id": roster_id, "area": area})
        return [{**row, "cells": json.loads(row["cells"])} for row in rows]
