"""SMS parts, in general, against a second reading of 3GPP TS 23.038/23.040 written here from the tables.

GSM 7-bit default alphabet (23.038 §6.2.1) and its extension table (§6.2.1.1, reached by ESC: two septets):
a message of such characters fits 160 septets, or 153 per part when concatenated (the 6-octet UDH takes 7
septets); anything else is UCS-2: 70 UTF-16 code units, 67 per part. An escape pair or a surrogate pair is
never split between parts.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from channels.sms_text import compose, count_segments
from tests.properties import BOUNDED

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)  # the 128 code points of the default alphabet, row by row
GSM_EXTENSION = "\f^{}\\[~]|€"
assert len(GSM_BASIC) == 128


def reference_parts(text: str) -> tuple[str, int]:
    if all(char in GSM_BASIC or char in GSM_EXTENSION for char in text):
        costs = [2 if char in GSM_EXTENSION else 1 for char in text]
        single, per_part, encoding = 160, 153, "gsm7"
    else:
        costs = [len(char.encode("utf-16-be")) // 2 for char in text]
        single, per_part, encoding = 70, 67, "ucs2"
    if sum(costs) <= single:
        return encoding, 1
    parts, used = 1, 0
    for cost in costs:
        if used + cost > per_part:
            parts, used = parts + 1, 0
        used += cost
    return encoding, parts


gsm_text = st.text(alphabet=GSM_BASIC + GSM_EXTENSION, max_size=700)
any_text = st.text(st.characters(codec="utf-8"), max_size=400)
mixed_text = st.one_of(gsm_text, any_text, st.text(alphabet=GSM_BASIC + "昌乐县空气😀", max_size=400))


@BOUNDED
@given(text=mixed_text)
def test_parts_match_the_published_rules(text: str) -> None:
    info = count_segments(text)
    assert (info.encoding, info.segments) == reference_parts(text)
    assert info.chars == len(text)


@BOUNDED
@given(text=mixed_text)
def test_the_parts_hold_the_whole_text_and_no_part_more_than_its_limit(text: str) -> None:
    info = count_segments(text)
    single, per_part = (160, 153) if info.encoding == "gsm7" else (70, 67)
    if info.segments == 1:
        assert info.units <= single
    else:
        assert info.units > single
        assert info.units <= info.segments * per_part
        assert info.segments <= -(-info.units // (per_part - 1))  # a kept pair wastes at most one unit a part


@BOUNDED
@given(text=mixed_text, more=st.text(st.characters(codec="utf-8"), min_size=1, max_size=20))
def test_a_longer_text_never_takes_fewer_parts(text: str, more: str) -> None:
    assert count_segments(text + more).segments >= count_segments(text).segments


@BOUNDED
@given(text=any_text, char=st.characters(codec="utf-8").filter(lambda c: c not in GSM_BASIC + GSM_EXTENSION))
def test_one_character_outside_the_gsm_alphabet_makes_it_ucs2(text: str, char: str) -> None:
    assert count_segments(text + char).encoding == "ucs2"


@BOUNDED
@given(
    text=mixed_text,
    signature=st.text(alphabet="昌乐县政府ABCabc", min_size=2, max_size=16),
    opt_out=st.sampled_from([None, "回TD退订", "拒收请回复R", "Reply STOP"]),
)
def test_signing_and_the_opt_out_wording_are_added_once(text: str, signature: str, opt_out: str | None) -> None:
    once = compose(text, signature, opt_out)
    assert once.startswith(f"【{signature}】")
    assert opt_out is None or once.endswith(opt_out)
    assert compose(once, signature, opt_out) == once
