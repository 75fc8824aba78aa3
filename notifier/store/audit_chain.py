"""The audit log's hash chain: the canonical form of an entry, its hash, and the walk that verifies them.

Each entry stores ``prev_hash`` (the ``hash`` of the entry before it; :data:`GENESIS` for the first) and
``hash``, the lower-case hexadecimal SHA-256 of the entry's canonical form. The canonical form is the UTF-8
encoding of the JSON array::

    [id, at, actor, action, object_type, object_id, detail, prev_hash]

with the values exactly as stored (``id`` an integer; ``object_id`` a string or null; ``detail`` the stored JSON
text as one string, not re-parsed), written without whitespace between tokens (``,`` and ``:`` only), with
non-ASCII characters as themselves, and only ``"``, ``\\`` and the control characters U+0000-U+001F escaped
(``\\b \\t \\n \\f \\r``, the others as ``\\u00xx`` in lower-case hex). That is Python's
``json.dumps(values, ensure_ascii=False, separators=(",", ":"))`` and SQLite's ``json_array(...)`` byte for
byte, so the chain can be recomputed without this code (docs/audit.md).

Ids are consecutive from 1: a missing id is a gap, whatever the hashes say.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from notifier.domain.contacts import mask_email, mask_identifier, mask_phone

GENESIS = "0" * 64
CHAIN_FIELDS = ("id", "at", "actor", "action", "object_type", "object_id", "detail", "prev_hash")


def canonical(entry: Mapping[str, Any]) -> bytes:
    """The bytes an entry's hash is taken over (see the module docstring)."""
    values = [entry[name] for name in CHAIN_FIELDS]
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def entry_hash(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


def sha256_hex(text: str | None) -> str | None:
    """SHA-256 of a text's UTF-8 bytes, for SQL (the migration that chains rows written before the chain)."""
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- personal fields ------------------------------------------------------------------------------

def mask_name(name: str) -> str:
    """A resident's name as the audit log keeps it: the surname and the last character (``张*丰``, ``张*``)."""
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_phone_short(phone: str) -> str:
    """First three and last four digits of the national number: ``138****8000``."""
    return mask_phone(phone).removeprefix("+86")


IDENTIFIERS = frozenset({"wechat_openid", "wecom_userid", "external_id", "openid", "userid"})


def mask_detail(object_type: str, value: Any) -> Any:
    """``detail`` with personal fields masked wherever they are nested (in ``before`` and ``after`` too): every
    ``phone``, ``email`` and account id (``wechat_openid``, ``wecom_userid``, ``external_id``) and, for a
    resident, ``name`` (the names of areas, topics and groups are not personal)."""
    if isinstance(value, Mapping):
        masked: dict[str, Any] = {}
        for key, item in value.items():
            if key == "phone" and isinstance(item, str):
                masked[key] = mask_phone_short(item)
            elif key == "email" and isinstance(item, str):
                masked[key] = mask_email(item)
            elif key in IDENTIFIERS and isinstance(item, str):
                masked[key] = mask_identifier(item)
            elif key == "name" and object_type == "subscriber" and isinstance(item, str):
                masked[key] = mask_name(item)
            else:
                masked[key] = mask_detail(object_type, item)
        return masked
    if isinstance(value, list | tuple):
        return [mask_detail(object_type, item) for item in value]
    return value


# --- verification ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChainBreak:
    """The first entry where the chain does not hold."""

    id: int
    at: str
    problem: str  # "gap", "previous-hash mismatch" or "hash mismatch"
    detail: str

    def __str__(self) -> str:
        return f"audit entry {self.id} (at {self.at}): {self.problem}: {self.detail}"


@dataclass(frozen=True)
class ChainResult:
    count: int
    head: str  # the last entry's hash (GENESIS for an empty log): keep it elsewhere to detect a cut tail
    broken: ChainBreak | None


def check_entry(row: Mapping[str, Any], previous: Mapping[str, Any] | None) -> ChainBreak | None:
    expected_id = 1 if previous is None else previous["id"] + 1
    if row["id"] != expected_id:
        missing = f"{expected_id}" if row["id"] == expected_id + 1 else f"{expected_id}-{row['id'] - 1}"
        return ChainBreak(row["id"], row["at"], "gap", f"entry {missing} is missing")
    expected_prev = GENESIS if previous is None else previous["hash"]
    if row["prev_hash"] != expected_prev:
        return ChainBreak(
            row["id"], row["at"], "previous-hash mismatch",
            f"prev_hash {row['prev_hash']} but the entry before hashes to {expected_prev}",
        )  # fmt: skip
    computed = entry_hash(row)
    if row["hash"] != computed:
        return ChainBreak(row["id"], row["at"], "hash mismatch", f"stored {row['hash']}, computed {computed}")
    return None


async def verify_pages(pages: AsyncIterator[list[dict[str, Any]]]) -> ChainResult:
    """Walk the entries page by page (in id order), stopping at the first break."""
    previous: dict[str, Any] | None = None
    count = 0
    async for rows in pages:
        for row in rows:
            broken = check_entry(row, previous)
            if broken is not None:
                return ChainResult(count, previous["hash"] if previous else GENESIS, broken)
            previous = row
            count += 1
    return ChainResult(count, previous["hash"] if previous else GENESIS, None)
