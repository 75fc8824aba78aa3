"""SMS signature, opt-out wording and segment counting (3GPP TS 23.038/23.040, Chinese carrier rules)."""

from __future__ import annotations

import random

import pytest

from channels.base import Failed
from channels.sms_text import GSM7_BASIC, SegmentInfo, SmsTextOptions, compose, count_segments, prepare

ALERT = "【昌乐县政府】重污染天气橙色预警：明起三天减少户外活动。回TD退订"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", SegmentInfo("gsm7", 1, 0, 0)),
        ("a" * 160, SegmentInfo("gsm7", 1, 160, 160)),
        ("a" * 161, SegmentInfo("gsm7", 2, 161, 161)),
        ("a" * 306, SegmentInfo("gsm7", 2, 306, 306)),
        ("a" * 307, SegmentInfo("gsm7", 3, 307, 307)),
        ("€" * 80, SegmentInfo("gsm7", 1, 80, 160)),  # extension characters cost two septets
        ("€" * 81, SegmentInfo("gsm7", 2, 81, 162)),
        ("a" * 152 + "€" + "a" * 152, SegmentInfo("gsm7", 3, 305, 306)),  # the escape pair is not split
        ("a" * 160 + "€", SegmentInfo("gsm7", 2, 161, 162)),
        ("Water outage: Bldg 3, Sat 9-12 {ok}", SegmentInfo("gsm7", 1, 35, 37)),
        ("警" * 70, SegmentInfo("ucs2", 1, 70, 70)),
        ("警" * 71, SegmentInfo("ucs2", 2, 71, 71)),
        ("警" * 134, SegmentInfo("ucs2", 2, 134, 134)),
        ("警" * 135, SegmentInfo("ucs2", 3, 135, 135)),
        ("a" * 69 + "ç", SegmentInfo("ucs2", 1, 70, 70)),  # ç is not GSM 03.38 (Ç is): the whole text is UCS-2
        ("😀" * 35, SegmentInfo("ucs2", 1, 35, 70)),  # outside the BMP: a surrogate pair each
        ("a" * 66 + "😀" + "a" * 66, SegmentInfo("ucs2", 3, 133, 134)),  # nor is a surrogate pair
        (ALERT, SegmentInfo("ucs2", 1, 33, 33)),
        ("警" + "€" * 69, SegmentInfo("ucs2", 1, 70, 70)),  # in UCS-2 an extension character is one unit
        ("€" * 68 + "😀" + "警", SegmentInfo("ucs2", 2, 70, 71)),
    ],
)
def test_count_segments(text: str, expected: SegmentInfo) -> None:
    assert count_segments(text) == expected


def reference_count(text: str) -> SegmentInfo:
    """Character by character, as the standard describes it."""
    extension = "\f^{}\\[~]|€"
    gsm7 = GSM7_BASIC + extension
    if all(c in gsm7 for c in text):
        encoding, costs, single, per_part = "gsm7", [2 if c in extension else 1 for c in text], 160, 153
    else:
        encoding, costs, single, per_part = "ucs2", [2 if ord(c) > 0xFFFF else 1 for c in text], 70, 67
    segments, used = 1, 0
    for cost in costs:
        if used + cost > per_part:
            segments, used = segments + 1, 0
        used += cost
    units = sum(costs)
    return SegmentInfo(encoding, 1 if units <= single else segments, len(text), units)  # type: ignore[arg-type]


def test_count_segments_matches_the_character_by_character_count() -> None:
    rng = random.Random(4)
    alphabets = ["aZ0 ,.", "aZ0€^{", "警告a€", "警😀a", "a😀"]
    for _ in range(2000):
        alphabet = rng.choice(alphabets)
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 400)))
        assert count_segments(text) == reference_count(text), text


@pytest.mark.parametrize(
    ("text", "signature", "unsubscribe", "expected"),
    [
        ("重污染天气橙色预警：明起三天减少户外活动。", "昌乐县政府", "回TD退订", ALERT),
        (ALERT, "昌乐县政府", "回TD退订", ALERT),  # already signed and worded: unchanged
        ("  明天停水。 ", "昌乐县政府", None, "【昌乐县政府】明天停水。"),
        ("【生态环境分局】明天停水。", "昌乐县政府", None, "【昌乐县政府】【生态环境分局】明天停水。"),
        ("明天停水。", None, "拒收请回复R", "明天停水。拒收请回复R"),
        ("明天停水。", None, None, "明天停水。"),
    ],
)
def test_compose(text: str, signature: str | None, unsubscribe: str | None, expected: str) -> None:
    assert compose(text, signature, unsubscribe) == expected


@pytest.mark.parametrize(
    ("value", "accepted"),
    [("昌乐县政府", "昌乐县政府"), ("【昌乐县政府】", "昌乐县政府"), (" 昌乐县政府 ", "昌乐县政府"), ("县", None),
     ("昌乐 县政府", None), ("一" * 17, None)],
)
def test_signature_option(value: str, accepted: str | None) -> None:
    if accepted is None:
        with pytest.raises(ValueError, match="signature"):
            SmsTextOptions(signature=value)
    else:
        assert SmsTextOptions(signature=value).signature == accepted


def test_prepare_refuses_texts_over_max_segments() -> None:
    options = SmsTextOptions(signature="昌乐县政府", unsubscribe_text="回TD退订", max_segments=1)
    assert prepare("重污染天气橙色预警：明起三天减少户外活动。", options) == ALERT
    too_long = prepare("警" * 60, options)  # 7 + 60 + 5 = 72 characters: two parts
    assert too_long == Failed("too-long", "72 characters need 2 parts (max 1)")
