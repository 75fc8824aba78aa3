"""Masking of a publicity list (公示) before anything leaves the service: the printout and the public page show
only what the rules allow.

- names keep the surname and the last character: 王秀英 -> 王*英, 王英 -> 王*; a two-character surname the
  roster names (欧阳, 司马...) is kept whole: 欧阳长英 -> 欧阳*英;
- identity numbers (18 characters, the last a digit or X; or the older 15 digits) keep the first 6 and the
  last 4: 370725199001011234 -> 370725********1234;
- phone numbers keep the first 3 and the last 4 of the national number: 13912345678 -> 139****5678; in free
  text also when written +86 139 1234 5678, 139-1234-5678 or in full-width digits (+86 139****5678), and
  another country's number in international form keeps its first digits and its last 4: +85291234567 ->
  +852****4567 (``mask_phones_in_text``, which the log lines and the channels' error texts go through too).

A cell is masked by its column (a name column: 姓名, name, 户主...; an identity column: 身份证号...; a phone column:
手机号...) and, in any column, by its look (a value shaped like an identity or phone number is masked as one),
so a column the clerk named oddly leaks nothing. A department may ask for stricter masking of a column
(``full``: every character hidden), never for looser.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

NAME_COLUMNS = frozenset({"name", "姓名", "户主", "户主姓名", "申请人", "收款人", "救助对象", "领取人"})
ID_COLUMNS = frozenset({"id_number", "身份证", "身份证号", "身份证号码", "公民身份号码", "证件号码"})
PHONE_COLUMNS = frozenset({"phone", "手机", "手机号", "手机号码", "电话", "联系电话"})
DOUBLE_SURNAMES = frozenset(
    {"欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐", "司徒", "夏侯"}
)
_ID = re.compile(r"[0-9]{17}[0-9Xx]|[0-9]{15}")
_PHONE = re.compile(r"(?:\+?86[ -]?)?(1[3-9][0-9])[ -]?([0-9]{4})[ -]?([0-9]{4})")
# in free text, numbers as people write them: ASCII or full-width digits (a Chinese keyboard's), a mobile
# number with or without +86 / 0086 / 86 before it and with spaces or hyphens between its groups
_D, _X = "[0-9０-９]", "[0-9０-９XxＸｘ]"
_ID_IN_TEXT = re.compile(rf"(?<!{_D})({_D}{{6}})({_D}{{8}}|{_D}{{5}})({_D}{{3}}{_X})(?!{_X})")
_PHONE_IN_TEXT = re.compile(
    rf"(?<!{_D})((?:(?:[+＋]|00|００)?(?:86|８６)[ -]?)?)([1１][3-9３-９]{_D})[ -]?{_D}{{4}}[ -]?({_D}{{4}})(?!{_D})"
)
# any country's number in international form: +, its URL encoding %2B, or 00, then 8 to 15 digits
_INTERNATIONAL_IN_TEXT = re.compile(r"(?:\+|%2B|\b00)[0-9]{8,15}\b", re.IGNORECASE)


def mask_name(name: str) -> str:
    name = name.strip()
    if len(name) <= 1:
        return "*" if name else ""
    keep = 2 if name[:2] in DOUBLE_SURNAMES and len(name) > 2 else 1
    if len(name) == keep + 1:
        return name[:keep] + "*"
    return name[:keep] + "*" * (len(name) - keep - 1) + name[-1]


def mask_id_number(value: str) -> str:
    text = value.strip()
    return text[:6] + "*" * (len(text) - 10) + text[-4:] if len(text) > 10 else "*" * len(text)


def mask_phone(value: str) -> str:
    match = _PHONE.fullmatch(value.strip())
    if match:
        return f"{match.group(1)}****{match.group(3)}"
    digits = re.sub(r"[^0-9]", "", value)
    return digits[:3] + "*" * max(len(digits) - 7, 1) + digits[-4:] if len(digits) > 7 else "*" * len(digits)


def mask_phones_in_text(value: str) -> str:
    """Phone numbers anywhere in a text, masked: mainland mobile numbers however they are written, and
    numbers in international form."""
    value = _INTERNATIONAL_IN_TEXT.sub(_mask_international, value)
    return _PHONE_IN_TEXT.sub(lambda m: f"{m.group(1)}{m.group(2)}****{m.group(3)}", value)


def _mask_international(match: re.Match[str]) -> str:
    number = match.group(0)
    return number[:-8] + "****" + number[-4:] if len(number) >= 10 else "****"


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_BIRTH_DATE = "(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
_ID_18_IN_TEXT = re.compile(rf"(?<![0-9])([0-9]{{6}})({_BIRTH_DATE})([0-9]{{3}}[0-9Xx])(?![0-9Xx])")


def is_identity_number(value: str) -> bool:
    """An 18-character resident identity number whose check character is right (GB 11643, ISO 7064 MOD 11-2)."""
    if not re.fullmatch(r"[0-9]{17}[0-9Xx]", value):
        return False
    total = sum(int(digit) * weight for digit, weight in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == value[17].upper()


def mask_identity_numbers_in_text(value: str) -> str:
    """Resident identity numbers anywhere in a text (a log line, an error text), masked as a publicity list masks
    them: only 18-character ones with a birth date and a right check character, so that the other long numbers
    of a log line (ids, counters) are left alone."""
    return _ID_18_IN_TEXT.sub(
        lambda m: m.group(1) + "*" * 8 + m.group(3) if is_identity_number(m.group(0)) else m.group(0), value
    )


def mask_numbers_in_text(value: str) -> str:
    """Identity and phone numbers anywhere in a free-text cell, masked as such."""
    value = _ID_IN_TEXT.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3)[-4:], value)
    return mask_phones_in_text(value)


def mask_cell(column: str, value: str, stricter: str | None = None) -> str:
    """One published cell; ``stricter`` (``full``) hides every character."""
    if not value:
        return value
    if stricter == "full":
        return "*" * len(value)
    if column in NAME_COLUMNS:
        return mask_name(value)
    if column in ID_COLUMNS or _ID.fullmatch(value.strip()):
        return mask_id_number(value)
    if column in PHONE_COLUMNS or _PHONE.fullmatch(value.strip()):
        return mask_phone(value)
    return mask_numbers_in_text(value)


def mask_row(columns: Sequence[str], row: Mapping[str, str], stricter: Mapping[str, str]) -> list[str]:
    return [mask_cell(column, row.get(column, ""), stricter.get(column)) for column in columns]
