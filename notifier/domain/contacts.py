"""Validation and normalisation of residents' contact points and area codes."""

from __future__ import annotations

import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import PhoneNumberType

from notifier.domain.enums import AreaLevel

_AREA_CODE = re.compile(r"[0-9]{6}|[0-9]{9}|[0-9]{12}")
_SMS_CAPABLE = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


def normalise_phone(raw: str) -> str:
    """Return the number in E.164 (``+8613800138000``) or raise ValueError.

    Numbers without a country prefix are read as mainland China numbers; mainland numbers must be
    valid mobile numbers, since the phone field is what SMS is sent to.
    """
    text = raw.strip()
    if not text:
        raise ValueError("phone number is empty")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number (mainland mobile numbers have 11 digits starting 13-19)")
    if number.country_code == 86 and phonenumbers.number_type(number) not in _SMS_CAPABLE:
        raise ValueError("not a mainland mobile number: SMS needs a mobile number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str) -> str:
    """Return the address with its domain lower-cased, or raise ValueError (syntax only, no DNS)."""
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None
    return result.normalized


def area_level(code: str) -> AreaLevel:
    """The level of an administrative-division code by its length (6 county, 9 town, 12 village)."""
    if not _AREA_CODE.fullmatch(code):
        raise ValueError("an area code has 6 (county), 9 (town) or 12 (village) digits")
    return {6: AreaLevel.COUNTY, 9: AreaLevel.TOWN, 12: AreaLevel.VILLAGE}[len(code)]


def parent_code(code: str) -> str | None:
    """The code one level up that a code's prefix names (None for a county)."""
    level = area_level(code)
    if level is AreaLevel.VILLAGE:
        return code[:9]
    if level is AreaLevel.TOWN:
        return code[:6]
    return None


def mask_phone(e164: str) -> str:
    """A phone number fit for logs: ``+86138****8000``."""
    if len(e164) < 8:
        return "****"
    return e164[:-8] + "****" + e164[-4:]


def mask_email(address: str) -> str:
    """An e-mail address fit for the audit log: the first character of the mailbox and the domain
    (``l***@example.org``)."""
    mailbox, at, domain = address.rpartition("@")
    if not at:
        return mask_identifier(address)
    return (mailbox[:1] or "*") + "***@" + domain


def mask_identifier(value: str) -> str:
    """An account id (WeChat openid, WeCom userid, a roster's external id): its first and last two characters."""
    if len(value) <= 4:
        return "*" * len(value)
    return value[:2] + "***" + value[-2:]
